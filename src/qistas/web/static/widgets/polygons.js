// Polygons on an image, in the image's own pixels. Touch or mouse: tap to add a point (inside a
// polygon, when none is being drawn, to select it), tap the first point to close, drag a point
// to move it, drag the image to pan. Keyboard: arrows move a cursor, Space adds a point there,
// C closes the polygon, Backspace takes the last point back, Escape drops it.
import { h } from "../dom.js";
import { compare, digitOf, labelButtons, labelChip, plainKey } from "./common.js";
import { imageView, safeImageUrl, svg } from "./imageview.js";

const HIT = 12; // screen pixels within which a press takes a point

const labClass = (labels, label) => "lab-" + (Math.max(0, labels.indexOf(label)) % 10);
const flat = (points) => points.map(([x, y]) => `${x},${y}`).join(" ");

function inside(points, x, y) {
  let odd = false;
  for (let i = 0, j = points.length - 1; i < points.length; j = i++) {
    const [xi, yi] = points[i], [xj, yj] = points[j];
    if ((yi > y) !== (yj > y) && x < xi + ((y - yi) * (xj - xi)) / (yj - yi)) odd = !odd;
  }
  return odd;
}

function bounds(points) {
  const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
  return { x: Math.min(...xs), y: Math.min(...ys), w: Math.max(...xs) - Math.min(...xs), h: Math.max(...ys) - Math.min(...ys) };
}

// Bounding-box IoU: the browser's quick stand-in for the server's mask IoU in the reviewer's view.
function boxIou(a, b) {
  const p = bounds(a), q = bounds(b);
  const w = Math.min(p.x + p.w, q.x + q.w) - Math.max(p.x, q.x), hh = Math.min(p.y + p.h, q.y + q.h) - Math.max(p.y, q.y);
  if (w <= 0 || hh <= 0) return 0;
  return (w * hh) / (p.w * p.h + q.w * q.h - w * hh);
}

function shape(polygon, labels, cls, closed = true) {
  const attrs = { class: `poly ${labClass(labels, polygon.label)} ${cls}`, points: flat(polygon.points), "vector-effect": "non-scaling-stroke" };
  return svg(closed ? "polygon" : "polyline", attrs);
}

export default {
  init() { return { polygons: [], open: null }; },

  mount(ctx) {
    const { spec, data, t } = ctx;
    let selected = -1;
    let active = 0; // the label new polygons get
    let cursor = null; // {x, y} in image pixels
    const status = h("p", { class: "muted small", "aria-live": "polite" });
    const src = safeImageUrl(data[spec.image_field]);
    const near = (a, p) => Math.hypot(a[0] - p.x, a[1] - p.y) <= iv.px(HIT);
    const iv = imageView({
      src, data, t,
      onReady: () => { cursor = { x: iv.size.w / 2, y: iv.size.h / 2 }; view.render(ctx.get()); },
      onChange: () => view.render(ctx.get()),
      tap: (p) => {
        const state = ctx.get();
        if (state.open && state.open.points.length >= 3 && near(state.open.points[0], p)) { close(); return; }
        if (!state.open) {
          const hit = state.polygons.findIndex((poly) => inside(poly.points, p.x, p.y));
          if (hit >= 0) { selected = selected === hit ? -1 : hit; view.render(state); return; }
        }
        cursor = p;
        addPoint(p);
      },
      grab: (p) => {
        const state = ctx.get();
        const owners = [];
        if (state.open) owners.push(["open", state.open.points]);
        if (selected >= 0) owners.push([selected, state.polygons[selected].points]);
        for (const [owner, points] of owners) {
          const i = points.findIndex((q) => near(q, p));
          if (i < 0) continue;
          const before = ctx.snapshot();
          const at = (s) => (owner === "open" ? s.open.points : s.polygons[owner].points);
          return {
            move(q) { const next = ctx.snapshot(); at(next)[i] = [q.x, q.y]; ctx.preview(next); },
            end(q, moved) {
              if (!moved) { ctx.preview(before); if (owner === "open" && i === 0 && at(before).length >= 3) close(); return; }
              const next = ctx.snapshot(); at(next)[i] = [q.x, q.y]; ctx.commit(before, next);
            },
            cancel() { ctx.preview(before); },
          };
        }
        return null;
      },
    });
    const { bar, buttons } = labelButtons(spec.labels, (i) => relabel(i));
    ctx.root.append(bar, h("div", { class: "content" }, src ? iv.root : null), status);
    if (!src) status.textContent = t("ws.image_failed");
    iv.img.addEventListener("error", () => { status.textContent = t("ws.image_failed"); });

    function relabel(i) {
      active = i;
      const label = spec.labels[i];
      const state = ctx.get();
      if (state.open) ctx.update((s) => { s.open.label = label; });
      else if (selected >= 0) ctx.update((s) => { s.polygons[selected].label = label; });
      else view.render(state);
    }
    function addPoint(p) {
      ctx.update((s) => {
        if (!s.open) s.open = { points: [], label: spec.labels[active] };
        s.open.points.push([p.x, p.y]);
      });
      selected = -1;
    }
    function close() {
      const state = ctx.get();
      if (!state.open || state.open.points.length < 3) return;
      ctx.update((s) => { s.polygons.push(s.open); s.open = null; selected = s.polygons.length - 1; });
    }

    const view = {
      render(state) {
        buttons.forEach((b, i) => b.setAttribute("aria-pressed", String(i === active)));
        if (!iv.size) return;
        if (selected >= state.polygons.length) selected = state.polygons.length - 1;
        const r = iv.px(5);
        const handles = (points, cls) => points.map(([x, y]) => svg("circle", { class: "vertex " + cls, cx: x, cy: y, r }));
        const nodes = state.polygons.map((p, i) => shape(p, spec.labels, i === selected ? "selected" : ""));
        if (selected >= 0) nodes.push(...handles(state.polygons[selected].points, labClass(spec.labels, state.polygons[selected].label)));
        if (state.open) {
          nodes.push(shape(state.open, spec.labels, "open", false), ...handles(state.open.points, labClass(spec.labels, state.open.label)));
          if (state.open.points.length) nodes[nodes.length - state.open.points.length].classList.add("first");
        }
        if (cursor) {
          const c = iv.px(8);
          nodes.push(svg("path", { class: "cursor", d: `M${cursor.x - c},${cursor.y}H${cursor.x + c}M${cursor.x},${cursor.y - c}V${cursor.y + c}`,
            "vector-effect": "non-scaling-stroke" }));
        }
        iv.draw(nodes);
        status.textContent = state.open ? t("ws.polygon_drawing", state.open.points.length) + " " + (state.open.points.length >= 3 ? "" : t("ws.polygon_open"))
          : t("ws.polygons_count", state.polygons.length);
      },
      key(ev, state) {
        if (!iv.size) return false;
        if (iv.key(ev)) return true;
        const d = digitOf(ev);
        if (d !== null && plainKey(ev) && d >= 1 && d <= Math.min(9, spec.labels.length)) { relabel(d - 1); return true; }
        const arrows = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
        if (arrows[ev.key] && plainKey(ev)) {
          const step = iv.px(ev.shiftKey ? 40 : 4);
          const [dx, dy] = arrows[ev.key];
          cursor = { x: Math.max(0, Math.min(iv.size.w, cursor.x + dx * step)), y: Math.max(0, Math.min(iv.size.h, cursor.y + dy * step)) };
          iv.follow(cursor.x, cursor.y);
          view.render(state);
          return true;
        }
        if (ev.key === " " && plainKey(ev)) { addPoint(cursor); return true; }
        if (ev.code === "KeyC" && plainKey(ev) && !ev.shiftKey) { close(); return true; }
        if (ev.key === "Backspace" && state.open) {
          ctx.update((s) => { s.open.points.pop(); if (!s.open.points.length) s.open = null; });
          return true;
        }
        if (ev.key === "Escape") {
          if (state.open) ctx.update((s) => { s.open = null; });
          else if (selected >= 0) { selected = -1; view.render(state); } else return false;
          return true;
        }
        if ((ev.key === "]" || ev.key === "[") && state.polygons.length && !state.open) {
          const n = state.polygons.length;
          selected = ((selected < 0 ? (ev.key === "]" ? -1 : 0) : selected) + (ev.key === "]" ? 1 : n - 1)) % n;
          view.render(state); return true;
        }
        if ((ev.key === "Delete" || ev.key === "Backspace") && selected >= 0) {
          const i = selected; selected = -1;
          ctx.update((s) => { s.polygons.splice(i, 1); });
          return true;
        }
        return false;
      },
    };
    return view;
  },

  state(spec, data, answer) { return { polygons: (answer?.polygons ?? []).map((p) => ({ points: p.points.map((q) => [...q]), label: p.label })), open: null }; },

  // The picture with this answer's polygons over it; one whose box overlaps no aggregated polygon
  // of its label (by the project's IoU for gold) is marked, and the aggregated ones it lacks are
  // drawn dotted and listed struck through.
  show(spec, data, answer, reference, t) {
    const polygons = answer?.polygons ?? [];
    const least = spec.gold_iou ?? 0.5;
    const { marks, missing } = compare(polygons, reference?.polygons, (a, b) => a.label === b.label && boxIou(a.points, b.points) >= least);
    const src = safeImageUrl(data[spec.image_field]);
    const iv = imageView({ src, data, t, tools: false, onReady: () => draw(), onChange: () => draw() });
    const draw = () => iv.draw(polygons.map((p, i) => shape(p, spec.labels, marks[i] === "same" ? "" : "diff")),
      missing.map((p) => shape(p, spec.labels, "missing")));
    const r = (v) => Math.round(v);
    const chip = (p, mark) => {
      const b = bounds(p.points);
      return labelChip(p.label, spec.labels, mark, t, " ",
        h("span", { class: "muted offsets", dir: "ltr", text: `${r(b.x)},${r(b.y)} ${r(b.w)}×${r(b.h)}` }));
    };
    return h("div", { class: "rv-image" }, src ? iv.root : h("p", { class: "muted small", text: t("ws.image_failed") }),
      h("ul", { class: "span-list" }, polygons.map((p, i) => chip(p, marks[i])), missing.map((p) => chip(p, "missing"))));
  },

  answer(spec, state) {
    const r = (v) => Math.round(v * 10) / 10;
    const all = [...state.polygons];
    if (state.open) {
      if (state.open.points.length < 3) return null; // an unfinished polygon is never dropped silently
      all.push(state.open);
    }
    return { polygons: all.map((p) => ({ points: p.points.map(([x, y]) => [r(x), r(y)]), label: p.label })) };
  },

  help(spec, t) {
    return [["← ↑ → ↓", t("ws.key_cursor")], ["Space", t("ws.key_poly_point")], ["C", t("ws.key_poly_close")],
      ["⌫", t("ws.key_poly_back")], ["Esc", t("ws.key_poly_cancel")], ["1–9", t("ws.key_poly_label")],
      ["[ ]", t("ws.key_poly_cycle")], ["Del", t("ws.key_poly_delete")], ["+ −", t("ws.key_zoom")], ["0", t("ws.key_zoom_fit")]];
  },
};
