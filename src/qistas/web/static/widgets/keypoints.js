// Keypoints on an image: instances of the spec's skeleton, each keypoint [x, y, v] in the
// image's own pixels (v: 0 left out, 1 hidden, 2 visible). Touch or mouse: tap to place the
// current keypoint (the next one becomes current), drag a point to move it, tap a name in the
// list to make it current, drag the image to pan. Keyboard: N starts an instance, arrows move a
// cursor, Space places the current keypoint there, H places it as hidden, X leaves it out.
import { bidiText, h } from "../dom.js";
import { compare, labelChip, plainKey } from "./common.js";
import { imageView, safeImageUrl, svg } from "./imageview.js";

const HIT = 12; // screen pixels within which a press takes a point

const blank = (n) => Array.from({ length: n }, () => [0, 0, 0]);

function skeletonOf(spec) {
  const index = new Map(spec.keypoints.map((name, i) => [name, i]));
  return (spec.skeleton ?? []).map(([a, b]) => [index.get(a), index.get(b)]);
}

// An instance's lines and points; the current keypoint ringed.
function figure(instance, spec, edges, r, cls, current = -1) {
  const k = instance.keypoints;
  const lines = edges.filter(([a, b]) => k[a][2] > 0 && k[b][2] > 0)
    .map(([a, b]) => svg("line", { class: "bone " + cls, x1: k[a][0], y1: k[a][1], x2: k[b][0], y2: k[b][1], "vector-effect": "non-scaling-stroke" }));
  const dots = k.map(([x, y, v], i) => (v > 0 ? svg("circle", {
    class: `joint lab-${i % 10} ${v === 1 ? "hidden" : ""} ${i === current ? "current" : ""} ${cls}`, cx: x, cy: y, r,
    "vector-effect": "non-scaling-stroke" }) : null));
  return [...lines, ...dots];
}

function centre(instance) {
  const placed = instance.keypoints.filter((p) => p[2] > 0);
  if (!placed.length) return null;
  return [placed.reduce((s, p) => s + p[0], 0) / placed.length, placed.reduce((s, p) => s + p[1], 0) / placed.length];
}

export default {
  init() { return { instances: [] }; },

  mount(ctx) {
    const { spec, data, t } = ctx;
    const n = spec.keypoints.length;
    const edges = skeletonOf(spec);
    let selected = -1; // the instance being drawn
    let current = 0; // its keypoint to place next
    let cursor = null;
    const status = h("p", { class: "muted small", "aria-live": "polite" });
    const src = safeImageUrl(data[spec.image_field]);
    const iv = imageView({
      src, data, t,
      onReady: () => { cursor = { x: iv.size.w / 2, y: iv.size.h / 2 }; view.render(ctx.get()); },
      onChange: () => view.render(ctx.get()),
      tap: (p) => { cursor = p; placeAt(p, 2); },
      grab: (p) => {
        const state = ctx.get();
        for (let s = 0; s < state.instances.length; s++) {
          const i = state.instances[s].keypoints.findIndex(([x, y, v]) => v > 0 && Math.hypot(x - p.x, y - p.y) <= iv.px(HIT));
          if (i < 0) continue;
          const before = ctx.snapshot();
          return {
            move(q) { const next = ctx.snapshot(); const k = next.instances[s].keypoints[i]; k[0] = q.x; k[1] = q.y; ctx.preview(next); },
            end(q, moved) {
              selected = s; current = i;
              if (!moved) { ctx.preview(before); view.render(before); return; }
              const next = ctx.snapshot(); const k = next.instances[s].keypoints[i]; k[0] = q.x; k[1] = q.y; ctx.commit(before, next);
            },
            cancel() { ctx.preview(before); },
          };
        }
        return null;
      },
    });
    const list = h("ol", { class: "kp-list" });
    const items = spec.keypoints.map((name, i) => {
      const state = h("span", { class: "muted small kp-state" });
      const li = h("li", {}, h("button", { type: "button", class: "ghost kp-name lab-" + (i % 10), dataset: { index: i },
        onclick: () => { current = i; view.render(ctx.get()); } }, h("span", { class: "kp-dot" }), bidiText(name)), " ", state);
      list.append(li);
      return { li, state };
    });
    ctx.root.append(h("div", { class: "content kp-layout" }, src ? iv.root : null, list), status);
    if (!src) status.textContent = t("ws.image_failed");
    iv.img.addEventListener("error", () => { status.textContent = t("ws.image_failed"); });

    // Set the current keypoint of the selected instance (a new one if none) and move on to the
    // next keypoint not yet placed.
    function placeAt(p, v) {
      ctx.update((s) => {
        if (selected < 0 || selected >= s.instances.length) { s.instances.push({ keypoints: blank(n) }); selected = s.instances.length - 1; }
        s.instances[selected].keypoints[current] = v ? [p.x, p.y, v] : [0, 0, 0];
        const k = s.instances[selected].keypoints;
        const ahead = [...Array(n).keys()].map((j) => (current + 1 + j) % n).find((j) => k[j][2] === 0 && j !== current);
        current = ahead ?? Math.min(current + 1, n - 1);
      });
    }

    const view = {
      render(state) {
        if (selected >= state.instances.length) selected = state.instances.length - 1;
        const mine = selected >= 0 ? state.instances[selected].keypoints : null;
        items.forEach(({ li, state: mark }, i) => {
          li.classList.toggle("current", i === current);
          if (i === current) li.setAttribute("aria-current", "step"); else li.removeAttribute("aria-current");
          const v = mine ? mine[i][2] : 0;
          mark.textContent = v === 1 ? t("ws.keypoint_hidden") : v === 0 ? t("ws.keypoint_missing") : "";
        });
        if (!iv.size) return;
        const r = iv.px(5);
        const nodes = state.instances.flatMap((inst, s) => figure(inst, spec, edges, r, s === selected ? "selected" : "", s === selected ? current : -1));
        if (cursor) {
          const c = iv.px(8);
          nodes.push(svg("path", { class: "cursor", d: `M${cursor.x - c},${cursor.y}H${cursor.x + c}M${cursor.x},${cursor.y - c}V${cursor.y + c}`,
            "vector-effect": "non-scaling-stroke" }));
        }
        iv.draw(nodes);
        status.textContent = `${t("ws.instances_count", state.instances.length)} · ${t("ws.keypoint_next", spec.keypoints[current])}`;
      },
      key(ev, state) {
        if (!iv.size) return false;
        if (iv.key(ev)) return true;
        const arrows = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
        if (arrows[ev.key] && plainKey(ev)) {
          const step = iv.px(ev.shiftKey ? 40 : 4);
          const [dx, dy] = arrows[ev.key];
          cursor = { x: Math.max(0, Math.min(iv.size.w, cursor.x + dx * step)), y: Math.max(0, Math.min(iv.size.h, cursor.y + dy * step)) };
          iv.follow(cursor.x, cursor.y);
          view.render(state);
          return true;
        }
        if (!plainKey(ev)) return false;
        if (ev.code === "KeyN" && !ev.shiftKey) {
          ctx.update((s) => { s.instances.push({ keypoints: blank(n) }); selected = s.instances.length - 1; current = 0; });
          return true;
        }
        if (ev.key === " ") { placeAt(cursor, 2); return true; }
        if (ev.code === "KeyH" && !ev.shiftKey) { placeAt(cursor, 1); return true; }
        if (ev.code === "KeyX" && !ev.shiftKey) { if (selected >= 0) placeAt(cursor, 0); else current = (current + 1) % n; view.render(ctx.get()); return true; }
        if (ev.key === "]" || ev.key === "[") { current = (current + (ev.key === "]" ? 1 : n - 1)) % n; view.render(state); return true; }
        if ((ev.key === "}" || ev.key === "{") && state.instances.length) {
          const m = state.instances.length;
          selected = ((selected < 0 ? 0 : selected) + (ev.key === "}" ? 1 : m - 1)) % m;
          current = 0;
          view.render(state); return true;
        }
        if ((ev.key === "Delete" || ev.key === "Backspace") && selected >= 0) {
          const s0 = selected; selected = -1; current = 0;
          ctx.update((s) => { s.instances.splice(s0, 1); });
          return true;
        }
        return false;
      },
    };
    return view;
  },

  state(spec, data, answer) { return { instances: (answer?.instances ?? []).map((i) => ({ keypoints: i.keypoints.map((p) => [...p]) })) }; },

  // The picture with this answer's instances; one whose centre is far from every aggregated
  // instance's is marked, and the aggregated ones it lacks are drawn dashed and listed.
  show(spec, data, answer, reference, t) {
    const instances = answer?.instances ?? [];
    const edges = skeletonOf(spec);
    const src = safeImageUrl(data[spec.image_field]);
    const reach = 0.05 * Math.hypot(Number(data.width) || 1000, Number(data.height) || 1000);
    const same = (a, b) => { const p = centre(a), q = centre(b); return !!p && !!q && Math.hypot(p[0] - q[0], p[1] - q[1]) <= reach; };
    const { marks, missing } = compare(instances, reference?.instances, same);
    const iv = imageView({ src, data, t, tools: false, onReady: () => draw(), onChange: () => draw() });
    const draw = () => iv.draw(instances.flatMap((inst, i) => figure(inst, spec, edges, iv.px(4), marks[i] === "same" ? "" : "diff")),
      missing.flatMap((inst) => figure(inst, spec, edges, iv.px(4), "missing")));
    const label = spec.label ?? "object";
    const chip = (inst, mark) => labelChip(label, [label], mark, t, " ",
      h("span", { class: "muted offsets", dir: "ltr", text: `${inst.keypoints.filter((p) => p[2] > 0).length}/${inst.keypoints.length}` }));
    return h("div", { class: "rv-image" }, src ? iv.root : h("p", { class: "muted small", text: t("ws.image_failed") }),
      h("ul", { class: "span-list" }, instances.map((inst, i) => chip(inst, marks[i])), missing.map((inst) => chip(inst, "missing"))));
  },

  answer(spec, state) {
    const r = (v) => Math.round(v * 10) / 10;
    return { instances: state.instances.filter((i) => i.keypoints.some((p) => p[2] > 0))
      .map((i) => ({ keypoints: i.keypoints.map(([x, y, v]) => (v > 0 ? [r(x), r(y), v] : [0, 0, 0])) })) };
  },

  help(spec, t) {
    return [["N", t("ws.key_kp_new")], ["← ↑ → ↓", t("ws.key_cursor")], ["Space", t("ws.key_kp_place")],
      ["H", t("ws.key_kp_hidden")], ["X", t("ws.key_kp_leave")], ["[ ]", t("ws.key_kp_cycle")],
      ["{ }", t("ws.key_kp_instance")], ["Del", t("ws.key_kp_delete")], ["+ −", t("ws.key_zoom")], ["0", t("ws.key_zoom_fit")]];
  },
};
