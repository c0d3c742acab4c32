// An image with zoom and pan, and an SVG layer drawn in the image's own pixels (data.width and
// data.height when given, else the image's natural size). Not a task type's widget: the image
// widgets (classification with an image_field, polygons, keypoints) build on it.
//
// Zoom: + and − (or the buttons, the mouse wheel, two fingers), 0 fits the image. Pan: drag the
// image, or arrows through panBy; follow(x, y) keeps a point in view. A tap (a press that does
// not move) is reported in image pixels; grab(p) lets a widget take a press (to drag a point).
import { h } from "../dom.js";

const SVG = "http://www.w3.org/2000/svg";
const MAX_ZOOM = 16;
const TAP = 6; // screen pixels a press may move and still be a tap

export function safeImageUrl(raw) {
  try {
    const url = new URL(String(raw), window.location.href);
    if (url.protocol === "http:" || url.protocol === "https:") return url.href;
    if (url.protocol === "data:" && /^data:image\//i.test(url.href)) return url.href;
  } catch { /* not a URL */ }
  return null;
}

// An SVG element; attributes set one by one (no markup is ever parsed).
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined && value !== false) el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) if (child) el.append(child);
  return el;
}

export function imageView({ src, data, t, tools = true, onReady = () => {}, onChange = () => {}, tap = null, grab = null }) {
  const img = h("img", { class: "iv-image", alt: t("ws.image"), draggable: "false" });
  const layer = svg("svg", { class: "iv-layer", preserveAspectRatio: "none" });
  const inner = h("div", { class: "iv-inner" }, img, layer);
  // Coordinates are left-to-right whatever the page's direction.
  const frame = h("div", { class: "iv-frame", dir: "ltr", tabindex: "0" }, inner);
  const button = (label, text, onclick) => h("button", { type: "button", class: "ghost iv-tool", title: label, "aria-label": label, onclick }, text);
  const bar = tools ? h("div", { class: "iv-tools", dir: "ltr" },
    button(t("ws.zoom_in"), "+", () => zoomAt(zoom * 1.5)), button(t("ws.zoom_out"), "−", () => zoomAt(zoom / 1.5)),
    button(t("ws.zoom_fit"), "⤢", () => fit())) : null;
  const root = h("div", { class: "iv" }, bar, frame);
  let size = null;
  let zoom = 1;
  let pan = { x: 0, y: 0 }; // screen pixels, the inner element's offset in the frame

  const place = () => {
    const fw = frame.clientWidth, fh = frame.clientHeight;
    pan.x = Math.min(0, Math.max(fw - fw * zoom, pan.x));
    pan.y = Math.min(0, Math.max(fh - fh * zoom, pan.y));
    inner.style.transform = `translate(${pan.x}px, ${pan.y}px) scale(${zoom})`;
  };
  // Zoom to z around a point of the frame (its centre by default).
  function zoomAt(z, fx = frame.clientWidth / 2, fy = frame.clientHeight / 2) {
    const next = Math.min(MAX_ZOOM, Math.max(1, z));
    pan = { x: fx - ((fx - pan.x) * next) / zoom, y: fy - ((fy - pan.y) * next) / zoom };
    zoom = next;
    place();
    onChange();
  }
  function fit() { zoom = 1; pan = { x: 0, y: 0 }; place(); onChange(); }

  const view = {
    root, frame, layer, img,
    get size() { return size; },
    get zoom() { return zoom; },
    // Image pixels per screen pixel now: for sizes that should look the same at every zoom.
    px(n) { return size && img.clientWidth ? (n * size.w) / (img.clientWidth * zoom) : n; },
    toImage(ev) {
      const r = img.getBoundingClientRect();
      return { x: Math.max(0, Math.min(size.w, ((ev.clientX - r.left) / r.width) * size.w)),
        y: Math.max(0, Math.min(size.h, ((ev.clientY - r.top) / r.height) * size.h)) };
    },
    panBy(dx, dy) { pan.x -= dx; pan.y -= dy; place(); },
    // Keep an image point in view (with a margin) when zoomed in.
    follow(x, y) {
      if (!size || zoom === 1) return;
      const k = (img.clientWidth / size.w) * zoom, margin = 30;
      const fx = pan.x + x * k, fy = pan.y + y * k;
      if (fx < margin) pan.x += margin - fx; else if (fx > frame.clientWidth - margin) pan.x -= fx - frame.clientWidth + margin;
      if (fy < margin) pan.y += margin - fy; else if (fy > frame.clientHeight - margin) pan.y -= fy - frame.clientHeight + margin;
      place();
    },
    key(ev) {
      if (!size || ev.ctrlKey || ev.metaKey || ev.altKey) return false;
      if (ev.key === "+" || ev.key === "=") { zoomAt(zoom * 1.5); return true; }
      if (ev.key === "-" || ev.key === "_") { zoomAt(zoom / 1.5); return true; }
      if (ev.key === "0") { fit(); return true; }
      return false;
    },
    draw(...nodes) {
      while (layer.firstChild) layer.removeChild(layer.firstChild);
      layer.append(...nodes.flat().filter(Boolean));
    },
  };

  if (src) {
    img.addEventListener("load", () => {
      const w = Number(data.width), hgt = Number(data.height);
      size = w > 0 && hgt > 0 ? { w, h: hgt } : { w: img.naturalWidth, h: img.naturalHeight };
      layer.setAttribute("viewBox", `0 0 ${size.w} ${size.h}`);
      onReady();
    });
    img.src = src;
  }

  // Pointers: one drags (a point the widget grabs, else the image) or taps; two pinch.
  const pointers = new Map();
  let press = null; // {start, moved, drag, pan}
  let pinch = null;
  const local = (ev) => { const r = frame.getBoundingClientRect(); return { x: ev.clientX - r.left, y: ev.clientY - r.top }; };
  frame.addEventListener("pointerdown", (ev) => {
    if (!size || (ev.pointerType === "mouse" && ev.button !== 0)) return;
    ev.preventDefault();
    frame.focus();
    frame.setPointerCapture(ev.pointerId);
    pointers.set(ev.pointerId, local(ev));
    if (pointers.size === 2) {
      press?.drag?.cancel?.();
      press = null;
      const [a, b] = [...pointers.values()];
      pinch = { dist: Math.hypot(a.x - b.x, a.y - b.y), zoom };
      return;
    }
    const p = view.toImage(ev);
    press = { start: local(ev), moved: false, drag: grab ? grab(p, ev) : null, pan: { ...pan } };
  });
  frame.addEventListener("pointermove", (ev) => {
    if (!pointers.has(ev.pointerId)) return;
    pointers.set(ev.pointerId, local(ev));
    if (pinch && pointers.size === 2) {
      const [a, b] = [...pointers.values()];
      zoomAt((pinch.zoom * Math.hypot(a.x - b.x, a.y - b.y)) / Math.max(1, pinch.dist), (a.x + b.x) / 2, (a.y + b.y) / 2);
      return;
    }
    if (!press) return;
    const here = local(ev);
    if (Math.hypot(here.x - press.start.x, here.y - press.start.y) > TAP) press.moved = true;
    if (press.drag) press.drag.move(view.toImage(ev));
    else if (press.moved) { pan = { x: press.pan.x + here.x - press.start.x, y: press.pan.y + here.y - press.start.y }; place(); }
  });
  const release = (ev) => {
    if (!pointers.delete(ev.pointerId)) return;
    if (pinch) { if (pointers.size === 0) pinch = null; return; }
    if (!press) return;
    if (press.drag) press.drag.end(view.toImage(ev), press.moved);
    else if (!press.moved && tap && ev.type === "pointerup") tap(view.toImage(ev));
    press = null;
  };
  frame.addEventListener("pointerup", release);
  frame.addEventListener("pointercancel", release);
  frame.addEventListener("wheel", (ev) => {
    if (!size) return;
    ev.preventDefault();
    const p = local(ev);
    zoomAt(zoom * (ev.deltaY < 0 ? 1.25 : 0.8), p.x, p.y);
  }, { passive: false });
  // The layer follows the picture when the window (and so the picture) changes size. An
  // observer, not a window listener: it goes away with the task's elements.
  new ResizeObserver(() => { if (size && frame.isConnected) { place(); onChange(); } }).observe(img);
  return view;
}
