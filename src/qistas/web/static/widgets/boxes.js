// Boxes on an image, in the image's own pixels (data.width/height when given, else the
// image's natural size). Mouse: drag on the image to draw, drag a box to move it, drag a
// corner to resize. Keyboard: N adds a box, arrows move it, Ctrl+arrows resize it.
import { bidiText, h } from "../dom.js";
import { compare, digitOf, labelButtons, labelChip, plainKey } from "./common.js";

const MIN_SIZE = 3;

// A box drawn at scale k (screen pixels per image pixel), in its label's colour. CSSOM
// properties, not a style attribute: allowed by the content security policy.
function boxEl(b, k, labels, cls = "", ...children) {
  const el = h("div", { class: "box lab-" + (Math.max(0, labels.indexOf(b.label)) % 10) + (cls ? " " + cls : "") },
    h("span", { class: "box-tag" }, bidiText(b.label)), ...children);
  el.style.left = `${b.x * k}px`; el.style.top = `${b.y * k}px`;
  el.style.width = `${b.w * k}px`; el.style.height = `${b.h * k}px`;
  return el;
}

export function iou(a, b) {
  const w = Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x);
  const hh = Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y);
  if (w <= 0 || hh <= 0) return 0;
  const inter = w * hh;
  return inter / (a.w * a.h + b.w * b.h - inter);
}

export function safeImageUrl(raw) {
  try {
    const url = new URL(String(raw), window.location.href);
    if (url.protocol === "http:" || url.protocol === "https:") return url.href;
    if (url.protocol === "data:" && /^data:image\//i.test(url.href)) return url.href;
  } catch { /* not a URL */ }
  return null;
}

export default {
  init() { return { boxes: [] }; },

  mount(ctx) {
    const { spec, data, t } = ctx;
    let selected = -1;
    let active = 0; // the label new boxes get
    let size = null; // {w, h}: the coordinate space
    let drag = null;
    const src = safeImageUrl(data[spec.image_field]);
    const img = h("img", { class: "box-image", alt: t("ws.image"), draggable: "false" });
    const layer = h("div", { class: "box-layer" });
    // Coordinates are left-to-right whatever the page's direction.
    const stage = h("div", { class: "box-stage", dir: "ltr", tabindex: "0" }, img, layer);
    const status = h("p", { class: "muted small" });
    const { bar, buttons } = labelButtons(spec.labels, (i) => {
      active = i;
      if (selected >= 0) ctx.update((s) => { s.boxes[selected].label = spec.labels[i]; });
      else view.render(ctx.get());
    });
    ctx.root.append(bar, h("div", { class: "content" }, stage), status);

    const scale = () => (size ? img.clientWidth / size.w : 1);
    const toImage = (ev) => {
      const r = img.getBoundingClientRect();
      const k = scale();
      return { x: Math.max(0, Math.min(size.w, (ev.clientX - r.left) / k)), y: Math.max(0, Math.min(size.h, (ev.clientY - r.top) / k)) };
    };
    const clampBox = (b) => {
      b.w = Math.max(1, Math.min(b.w, size.w)); b.h = Math.max(1, Math.min(b.h, size.h));
      b.x = Math.max(0, Math.min(b.x, size.w - b.w)); b.y = Math.max(0, Math.min(b.y, size.h - b.h));
      return b;
    };

    if (src) {
      img.addEventListener("load", () => {
        const w = Number(data.width), hgt = Number(data.height);
        size = w > 0 && hgt > 0 ? { w, h: hgt } : { w: img.naturalWidth, h: img.naturalHeight };
        view.render(ctx.get());
      });
      img.addEventListener("error", () => { status.textContent = t("ws.image_failed"); });
      img.src = src;
    } else {
      status.textContent = t("ws.image_failed");
    }

    stage.addEventListener("pointerdown", (ev) => {
      if (!size || ev.button !== 0) return;
      ev.preventDefault();
      stage.focus();
      const p = toImage(ev);
      const state = ctx.get();
      const hit = ev.target.closest("[data-box]");
      const handle = ev.target.dataset.handle;
      if (hit) {
        selected = Number(hit.dataset.box);
        drag = { mode: handle || "move", start: p, orig: { ...state.boxes[selected] }, before: ctx.snapshot() };
      } else {
        const box = { x: p.x, y: p.y, w: 0, h: 0, label: spec.labels[active] };
        const next = ctx.snapshot();
        next.boxes.push(box);
        selected = next.boxes.length - 1;
        drag = { mode: "se", start: p, orig: { ...box }, before: ctx.snapshot(), fresh: true };
        ctx.preview(next);
      }
      stage.setPointerCapture(ev.pointerId);
    });
    stage.addEventListener("pointermove", (ev) => {
      if (!drag) return;
      const p = toImage(ev);
      const dx = p.x - drag.start.x, dy = p.y - drag.start.y;
      const o = drag.orig;
      let b;
      if (drag.mode === "move") b = clampBox({ ...o, x: o.x + dx, y: o.y + dy });
      else {
        let [x1, y1, x2, y2] = [o.x, o.y, o.x + o.w, o.y + o.h];
        if (drag.mode.includes("w")) x1 += dx; else x2 += dx;
        if (drag.mode.includes("n")) y1 += dy; else y2 += dy;
        b = { ...o, x: Math.min(x1, x2), y: Math.min(y1, y2), w: Math.abs(x2 - x1), h: Math.abs(y2 - y1) };
      }
      const next = ctx.snapshot();
      next.boxes[selected] = b;
      ctx.preview(next);
    });
    const finish = () => {
      if (!drag) return;
      const next = ctx.snapshot();
      const b = next.boxes[selected];
      if (b.w < MIN_SIZE || b.h < MIN_SIZE) {
        if (drag.fresh) { next.boxes.splice(selected, 1); selected = -1; ctx.preview(drag.before); }
        else ctx.preview(drag.before);
      } else {
        next.boxes[selected] = clampBox(b);
        ctx.commit(drag.before, next);
      }
      drag = null;
    };
    stage.addEventListener("pointerup", finish);
    stage.addEventListener("pointercancel", finish);
    // Boxes follow the picture when the window (and so the picture) changes size. An observer,
    // not a window listener: it goes away with the task's elements.
    new ResizeObserver(() => { if (size && stage.isConnected) view.render(ctx.get()); }).observe(img);

    const view = {
      render(state) {
        buttons.forEach((b, i) => b.setAttribute("aria-pressed", String(i === active)));
        while (layer.firstChild) layer.removeChild(layer.firstChild);
        if (!size) return;
        const k = scale();
        if (selected >= state.boxes.length) selected = state.boxes.length - 1;
        state.boxes.forEach((b, i) => {
          const el = boxEl(b, k, spec.labels, i === selected ? "selected" : "",
            ...["nw", "ne", "sw", "se"].map((c) => h("span", { class: "handle " + c, dataset: { handle: c } })));
          el.dataset.box = i;
          layer.append(el);
        });
        status.textContent = size ? t("ws.boxes_count", state.boxes.length) : status.textContent;
      },
      key(ev, state) {
        if (!size) return false;
        const d = digitOf(ev);
        if (d !== null && plainKey(ev) && d >= 1 && d <= Math.min(9, spec.labels.length)) {
          active = d - 1;
          if (selected >= 0) ctx.update((s) => { s.boxes[selected].label = spec.labels[active]; }); else view.render(state);
          return true;
        }
        if (ev.code === "KeyN" && plainKey(ev) && !ev.shiftKey) {
          const w = size.w / 4, hh = size.h / 4;
          ctx.update((s) => { s.boxes.push({ x: (size.w - w) / 2, y: (size.h - hh) / 2, w, h: hh, label: spec.labels[active] }); selected = s.boxes.length - 1; });
          return true;
        }
        if ((ev.key === "]" || ev.key === "[") && state.boxes.length) {
          const n = state.boxes.length;
          selected = ((selected < 0 ? 0 : selected) + (ev.key === "]" ? 1 : n - 1)) % n;
          view.render(state); return true;
        }
        if ((ev.key === "Delete" || ev.key === "Backspace") && selected >= 0) {
          const i = selected; selected = -1;
          ctx.update((s) => { s.boxes.splice(i, 1); });
          return true;
        }
        const arrows = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
        if (arrows[ev.key] && selected >= 0 && !ev.altKey && !ev.metaKey) {
          const step = ev.shiftKey ? 10 : 1;
          const [dx, dy] = arrows[ev.key].map((v) => v * step);
          ctx.update((s) => {
            const b = s.boxes[selected];
            if (ev.ctrlKey) { b.w = Math.max(MIN_SIZE, b.w + dx); b.h = Math.max(MIN_SIZE, b.h + dy); } else { b.x += dx; b.y += dy; }
            clampBox(b);
          });
          return true;
        }
        if (ev.key === "Escape" && selected >= 0) { selected = -1; view.render(state); return true; }
        return false;
      },
    };
    return view;
  },

  state(spec, data, answer) { return { boxes: (answer?.boxes ?? []).map((b) => ({ ...b })) }; },

  // The picture with this answer's boxes over it; a box that matches no aggregated box of its
  // label (by the project's IoU for gold) is marked, and the aggregated boxes it lacks are drawn
  // dashed and listed struck through.
  show(spec, data, answer, reference, t) {
    const boxes = answer?.boxes ?? [];
    const least = spec.gold_iou ?? 0.5;
    const { marks, missing } = compare(boxes, reference?.boxes, (a, b) => a.label === b.label && iou(a, b) >= least);
    const src = safeImageUrl(data[spec.image_field]);
    const img = h("img", { class: "box-image", alt: t("ws.image"), draggable: "false" });
    const layer = h("div", { class: "box-layer" });
    const stage = h("div", { class: "box-stage rv-boxes", dir: "ltr" }, img, layer);
    let size = null;
    const draw = () => {
      while (layer.firstChild) layer.removeChild(layer.firstChild);
      if (!size || !img.clientWidth) return;
      const k = img.clientWidth / size.w;
      boxes.forEach((b, i) => layer.append(boxEl(b, k, spec.labels, marks[i] === "same" ? "" : "diff")));
      missing.forEach((b) => layer.append(boxEl(b, k, spec.labels, "missing")));
    };
    if (src) {
      img.addEventListener("load", () => {
        const w = Number(data.width), hgt = Number(data.height);
        size = w > 0 && hgt > 0 ? { w, h: hgt } : { w: img.naturalWidth, h: img.naturalHeight };
        draw();
      });
      img.src = src;
      new ResizeObserver(() => { if (stage.isConnected) draw(); }).observe(img);
    }
    const r = (v) => Math.round(v);
    const chip = (b, mark) => labelChip(b.label, spec.labels, mark, t, " ",
      h("span", { class: "muted offsets", dir: "ltr", text: `${r(b.x)},${r(b.y)} ${r(b.w)}×${r(b.h)}` }));
    return h("div", {}, src ? stage : h("p", { class: "muted small", text: t("ws.image_failed") }),
      h("ul", { class: "span-list" }, boxes.map((b, i) => chip(b, marks[i])), missing.map((b) => chip(b, "missing"))));
  },

  answer(spec, state) {
    // Rounded down, so a box flush with the image edge stays inside it.
    const r = (v) => Math.floor(v * 10) / 10;
    return { boxes: state.boxes.map((b) => ({ x: r(b.x), y: r(b.y), w: r(b.w), h: r(b.h), label: b.label })) };
  },

  help(spec, t) {
    return [["N", t("ws.key_box_new")], ["1–9", t("ws.key_box_label")], ["← ↑ → ↓", t("ws.key_box_move")],
      ["Ctrl+← ↑ → ↓", t("ws.key_box_resize")], ["[ ]", t("ws.key_box_cycle")], ["Del", t("ws.key_box_delete")]];
  },
};
