// Boxes on an image, in the image's own pixels (data.width/height when given, else the
// image's natural size). Mouse: drag on the image to draw, drag a box to move it, drag a
// corner to resize. Keyboard: N adds a box, arrows move it, Ctrl+arrows resize it.
import { h } from "../dom.js";
import { compare, digitOf, labelButtons, labelChip, plainKey } from "./common.js";
import { safeImageUrl } from "./imageview.js";
import { handles, imageSize, iou, picture, rectEditor, rectEl, rectKeys } from "./rects.js";

const boxEl = (b, k, labels, cls = "", ...children) => rectEl(b, k, labels, b.label, cls, ...children);

export default {
  init() { return { boxes: [] }; },

  mount(ctx) {
    const { spec, data, t } = ctx;
    let selected = -1;
    let active = 0; // the label new boxes get
    let size = null; // {w, h}: the coordinate space
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

    if (src) {
      img.addEventListener("load", () => { size = imageSize(img, data); view.render(ctx.get()); });
      img.addEventListener("error", () => { status.textContent = t("ws.image_failed"); });
      img.src = src;
    } else {
      status.textContent = t("ws.image_failed");
    }
    const selection = { field: "boxes", selected: () => selected, setSelected: (i) => { selected = i; } };
    const { scale, clamp } = rectEditor({ ctx, stage, img, size: () => size, ...selection,
      create: (p) => ({ x: p.x, y: p.y, w: 0, h: 0, label: spec.labels[active] }) });
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
          const el = boxEl(b, k, spec.labels, i === selected ? "selected" : "", ...handles());
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
        return rectKeys(ev, state, { ctx, ...selection, clamp, render: view.render });
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
    const stage = picture(src, data, t("ws.image"), (layer, k) => {
      boxes.forEach((b, i) => layer.append(boxEl(b, k, spec.labels, marks[i] === "same" ? "" : "diff")));
      missing.forEach((b) => layer.append(boxEl(b, k, spec.labels, "missing")));
    });
    stage.classList.add("rv-boxes");
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
