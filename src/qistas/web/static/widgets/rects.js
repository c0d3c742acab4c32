// Rectangles over an image, in the image's own pixels: what the boxes and the document
// transcription widgets share. Not a task type's widget.
//
// Mouse or touch: drag on the image to draw, drag a rectangle to move it, drag a corner to
// resize. Keys (rectKeys): arrows move the selected one (Shift: 10 pixels), Ctrl+arrows resize
// it, [ ] select the previous or next, Del deletes, Esc lets go.
import { bidiText, h } from "../dom.js";

export const MIN_SIZE = 3;

export function iou(a, b) {
  const w = Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x);
  const hh = Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y);
  if (w <= 0 || hh <= 0) return 0;
  const inter = w * hh;
  return inter / (a.w * a.h + b.w * b.h - inter);
}

// The coordinate space: data.width and data.height when given, else the image's natural size.
export function imageSize(img, data) {
  const w = Number(data.width), hh = Number(data.height);
  return w > 0 && hh > 0 ? { w, h: hh } : { w: img.naturalWidth, h: img.naturalHeight };
}

// A rectangle drawn at scale k (screen pixels per image pixel) in its label's colour, tagged
// with `tag`. CSSOM properties, not a style attribute: allowed by the content security policy.
export function rectEl(r, k, labels, tag, cls = "", ...children) {
  const el = h("div", { class: "box lab-" + (Math.max(0, labels.indexOf(r.label)) % 10) + (cls ? " " + cls : "") },
    h("span", { class: "box-tag" }, bidiText(tag)), ...children);
  el.style.left = `${r.x * k}px`; el.style.top = `${r.y * k}px`;
  el.style.width = `${r.w * k}px`; el.style.height = `${r.h * k}px`;
  return el;
}

// The corner handles of a selected or editable rectangle.
export const handles = () => ["nw", "ne", "sw", "se"].map((c) => h("span", { class: "handle " + c, dataset: { handle: c } }));

// A picture with rectangles drawn over it, redrawn when it changes size (reviewers' views).
export function picture(src, data, alt, draw) {
  const img = h("img", { class: "box-image", alt, draggable: "false" });
  const layer = h("div", { class: "box-layer" });
  const stage = h("div", { class: "box-stage", dir: "ltr" }, img, layer);
  let size = null;
  const redraw = () => {
    while (layer.firstChild) layer.removeChild(layer.firstChild);
    if (size && img.clientWidth) draw(layer, img.clientWidth / size.w);
  };
  if (src) {
    img.addEventListener("load", () => { size = imageSize(img, data); redraw(); });
    img.src = src;
    new ResizeObserver(() => { if (stage.isConnected) redraw(); }).observe(img);
  }
  return stage;
}

// Pointer editing of state[field] on `stage` over `img`. `size()` is the coordinate space
// (null until the image is loaded); `selected()` and `setSelected(i)` read and set the selection
// (without drawing: the state's next preview or commit draws it); `create(p)` makes a new
// rectangle at a point, and `created(i)` is told when a drawn one is kept.
export function rectEditor({ ctx, stage, img, field, size, selected, setSelected, create, created = () => {} }) {
  let drag = null;
  const scale = () => (size() ? img.clientWidth / size().w : 1);
  const toImage = (ev) => {
    const r = img.getBoundingClientRect();
    const k = scale(), s = size();
    return { x: Math.max(0, Math.min(s.w, (ev.clientX - r.left) / k)), y: Math.max(0, Math.min(s.h, (ev.clientY - r.top) / k)) };
  };
  const clamp = (b) => {
    const s = size();
    b.w = Math.max(1, Math.min(b.w, s.w)); b.h = Math.max(1, Math.min(b.h, s.h));
    b.x = Math.max(0, Math.min(b.x, s.w - b.w)); b.y = Math.max(0, Math.min(b.y, s.h - b.h));
    return b;
  };

  stage.addEventListener("pointerdown", (ev) => {
    if (!size() || ev.button !== 0) return;
    ev.preventDefault();
    stage.focus();
    const p = toImage(ev);
    const hit = ev.target.closest("[data-box]");
    if (hit) {
      setSelected(Number(hit.dataset.box));
      drag = { mode: ev.target.dataset.handle || "move", start: p, orig: { ...ctx.get()[field][selected()] }, before: ctx.snapshot() };
    } else {
      const next = ctx.snapshot();
      const fresh = create(p);
      next[field].push(fresh);
      drag = { mode: "se", start: p, orig: { ...fresh }, before: ctx.snapshot(), fresh: true };
      setSelected(next[field].length - 1);
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
    if (drag.mode === "move") b = clamp({ ...o, x: o.x + dx, y: o.y + dy });
    else {
      let [x1, y1, x2, y2] = [o.x, o.y, o.x + o.w, o.y + o.h];
      if (drag.mode.includes("w")) x1 += dx; else x2 += dx;
      if (drag.mode.includes("n")) y1 += dy; else y2 += dy;
      b = { ...o, x: Math.min(x1, x2), y: Math.min(y1, y2), w: Math.abs(x2 - x1), h: Math.abs(y2 - y1) };
    }
    const next = ctx.snapshot();
    next[field][selected()] = b;
    ctx.preview(next);
  });
  const finish = () => {
    if (!drag) return;
    const d = drag;
    drag = null;
    const next = ctx.snapshot();
    const i = selected();
    const b = next[field][i];
    if (b.w < MIN_SIZE || b.h < MIN_SIZE) { // a click, not a drag: nothing drawn or moved
      if (d.fresh) setSelected(-1);
      ctx.preview(d.before);
      return;
    }
    next[field][i] = clamp(b);
    ctx.commit(d.before, next);
    if (d.fresh) created(i);
  };
  stage.addEventListener("pointerup", finish);
  stage.addEventListener("pointercancel", finish);
  return { scale, clamp };
}

const ARROWS = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };

// The keys every rectangle widget shares (see the top of this file); true when one was used.
// `render(state)` draws a change of selection alone.
export function rectKeys(ev, state, { ctx, field, selected, setSelected, clamp, render }) {
  const list = state[field];
  const i = selected();
  if ((ev.key === "]" || ev.key === "[") && list.length) {
    const n = list.length;
    setSelected(((i < 0 ? (ev.key === "]" ? -1 : 0) : i) + (ev.key === "]" ? 1 : n - 1)) % n);
    render(state);
    return true;
  }
  if ((ev.key === "Delete" || ev.key === "Backspace") && i >= 0) {
    setSelected(-1);
    ctx.update((s) => { s[field].splice(i, 1); });
    return true;
  }
  if (ARROWS[ev.key] && i >= 0 && !ev.altKey && !ev.metaKey) {
    const step = ev.shiftKey ? 10 : 1;
    const [dx, dy] = ARROWS[ev.key].map((v) => v * step);
    ctx.update((s) => {
      const b = s[field][i];
      if (ev.ctrlKey) { b.w = Math.max(MIN_SIZE, b.w + dx); b.h = Math.max(MIN_SIZE, b.h + dy); } else { b.x += dx; b.y += dy; }
      clamp(b);
    });
    return true;
  }
  if (ev.key === "Escape" && i >= 0) { setSelected(-1); render(state); return true; }
  return false;
}
