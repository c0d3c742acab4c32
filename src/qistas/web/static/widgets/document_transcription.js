// Document transcription: regions on a page image, each with its text. Regions are drawn as on
// the boxes widget (mouse, touch or keys), in the image's own pixels; each has a numbered text
// area beside the page whose direction follows its own letters (dir="auto"), so an Arabic line
// reads right to left and a Latin one left to right on either page direction.
// Keys: N a new region, arrows move it (Shift: faster), Ctrl+arrows resize it, E types its text
// (Esc leaves the text), [ ] select, Del deletes, 1–9 its label.
import { bidiText, h } from "../dom.js";
import { compare, digitOf, labelButtons, labelChip, nothing, plainKey } from "./common.js";
import { safeImageUrl } from "./imageview.js";
import { handles, imageSize, iou, MIN_SIZE, picture, rectEditor, rectEl, rectKeys } from "./rects.js";

const regionEl = (r, k, labels, number, cls = "", ...children) =>
  rectEl(r, k, labels, labels.length > 1 ? `${number} · ${r.label}` : String(number), cls, ...children);

export default {
  init() { return { regions: [] }; },

  mount(ctx) {
    const { spec, data, t } = ctx;
    const labels = spec.labels;
    let selected = -1;
    let active = 0;
    let size = null;
    const src = safeImageUrl(data[spec.image_field]);
    const img = h("img", { class: "box-image", alt: t("ws.page_image"), draggable: "false" });
    const layer = h("div", { class: "box-layer" });
    const stage = h("div", { class: "box-stage", dir: "ltr", tabindex: "0" }, img, layer);
    const status = h("p", { class: "muted small" });
    const list = h("ol", { class: "region-list" });
    const { bar, buttons } = labelButtons(labels, (i) => pickLabel(i));
    if (labels.length < 2) bar.hidden = true;
    ctx.root.append(bar, h("div", { class: "content doc-layout" }, h("div", {}, stage, status), list));

    function pickLabel(i) {
      active = i;
      if (selected >= 0) ctx.update((s) => { s.regions[selected].label = labels[i]; });
      else view.render(ctx.get());
    }
    function select(i) {
      if (selected === i) return;
      selected = i;
      view.render(ctx.get());
    }
    function editText(i) {
      const area = list.children[i]?.querySelector("textarea");
      if (area) { select(i); area.focus(); }
    }

    if (src) {
      img.addEventListener("load", () => {
        size = imageSize(img, data);
        stage.dataset.ready = "true";
        view.render(ctx.get());
      });
      img.addEventListener("error", () => { status.textContent = t("ws.image_failed"); });
      img.src = src;
    } else {
      status.textContent = t("ws.image_failed");
    }
    const selection = { field: "regions", selected: () => selected, setSelected: (i) => { selected = i; } };
    const { scale, clamp } = rectEditor({ ctx, stage, img, size: () => size, ...selection,
      create: (p) => ({ x: p.x, y: p.y, w: 0, h: 0, label: labels[active], text: "" }),
      created: (i) => editText(i) }); // a new region: its text next
    new ResizeObserver(() => { if (size && stage.isConnected) view.render(ctx.get()); }).observe(img);

    // One list item per region, kept across renders so a text area never loses its caret.
    function item(i) {
      const area = h("textarea", { class: "region-text", dir: "auto", rows: 2,
        oninput: () => { const s = ctx.snapshot(); s.regions[i].text = area.value; ctx.set(s); },
        onfocus: () => select(i) });
      const num = h("span", { class: "region-num", dir: "ltr" });
      const chip = h("span", { class: "region-label" });
      return h("li", { class: "region-item", dataset: { index: i } }, h("div", { class: "region-head" }, num, chip), area);
    }

    const view = {
      render(state) {
        buttons.forEach((b, i) => b.setAttribute("aria-pressed", String(i === active)));
        if (selected >= state.regions.length) selected = state.regions.length - 1;
        while (layer.firstChild) layer.removeChild(layer.firstChild);
        if (size) {
          const k = scale();
          state.regions.forEach((r, i) => {
            const el = regionEl(r, k, labels, i + 1, i === selected ? "selected" : "", ...handles());
            el.dataset.box = i;
            layer.append(el);
          });
          status.textContent = t("ws.regions_count", state.regions.length);
        }
        while (list.children.length > state.regions.length) list.lastChild.remove();
        while (list.children.length < state.regions.length) list.append(item(list.children.length));
        state.regions.forEach((r, i) => {
          const li = list.children[i];
          li.className = "region-item lab-" + (Math.max(0, labels.indexOf(r.label)) % 10) + (i === selected ? " selected" : "");
          li.querySelector(".region-num").textContent = String(i + 1);
          const chip = li.querySelector(".region-label");
          chip.replaceChildren(...(labels.length > 1 ? [bidiText(r.label, "bdi", "chip-label")] : []));
          const area = li.querySelector("textarea");
          area.setAttribute("aria-label", t("ws.region_text", i + 1));
          if (area.value !== r.text) area.value = r.text;
        });
      },
      key(ev, state) {
        if (!size) return false;
        const d = digitOf(ev);
        if (d !== null && plainKey(ev) && d >= 1 && d <= Math.min(9, labels.length)) { pickLabel(d - 1); return true; }
        if (ev.code === "KeyN" && plainKey(ev) && !ev.shiftKey) {
          // A line-shaped region in the middle of the page, to move and stretch over the text.
          const w = size.w / 2, hh = Math.max(MIN_SIZE, size.h / 12);
          ctx.update((s) => {
            s.regions.push({ x: (size.w - w) / 2, y: (size.h - hh) / 2, w, h: hh, label: labels[active], text: "" });
            selected = s.regions.length - 1;
          });
          return true;
        }
        if (ev.code === "KeyE" && plainKey(ev) && !ev.shiftKey && selected >= 0) { editText(selected); return true; }
        return rectKeys(ev, state, { ctx, ...selection, clamp, render: view.render });
      },
    };
    return view;
  },

  state(spec, data, answer) {
    return { regions: (answer?.regions ?? []).map((r) => ({ x: r.x, y: r.y, w: r.w, h: r.h, label: r.label ?? spec.labels[0], text: r.text ?? "" })) };
  },

  // The page with this answer's regions; a region that matches no aggregated one (IoU at the
  // project's gold_iou, same text) is marked, and the aggregated regions it lacks are struck.
  show(spec, data, answer, reference, t) {
    const regions = answer?.regions ?? [];
    const least = spec.gold_iou ?? 0.5;
    const words = (s) => String(s ?? "").split(/\s+/).filter(Boolean).join(" ");
    const same = (a, b) => a.label === b.label && iou(a, b) >= least && words(a.text) === words(b.text);
    const { marks, missing } = compare(regions, reference?.regions, same);
    if (!regions.length && !missing.length) return nothing(t);
    const src = safeImageUrl(data[spec.image_field]);
    const stage = picture(src, data, t("ws.page_image"), (layer, k) => {
      regions.forEach((r, i) => layer.append(regionEl(r, k, spec.labels, i + 1, marks[i] === "same" ? "" : "diff")));
      missing.forEach((r) => layer.append(regionEl(r, k, spec.labels, "–", "missing")));
    });
    stage.classList.add("rv-boxes");
    const entry = (r, mark, n) => labelChip(r.label, spec.labels, mark, t, " ", h("span", { class: "region-num", dir: "ltr", text: String(n) }),
      " ", bidiText(r.text, "bdi", "region-said"));
    return h("div", {}, src ? stage : h("p", { class: "muted small", text: t("ws.image_failed") }),
      h("ul", { class: "span-list" }, regions.map((r, i) => entry(r, marks[i], i + 1)), missing.map((r) => entry(r, "missing", "–"))));
  },

  answer(spec, state) {
    const r = (v) => Math.floor(v * 10) / 10; // rounded down: a region flush with the edge stays inside
    return { regions: state.regions.map((g) => ({ x: r(g.x), y: r(g.y), w: r(g.w), h: r(g.h), label: g.label, text: g.text })) };
  },

  help(spec, t) {
    return [["N", t("ws.key_region_new")], ["E", t("ws.key_region_text")], ["← ↑ → ↓", t("ws.key_region_move")],
      ["Ctrl+← ↑ → ↓", t("ws.key_region_resize")], ["[ ]", t("ws.key_region_cycle")], ["Del", t("ws.key_region_delete")],
      ...(spec.labels.length > 1 ? [["1–9", t("ws.key_region_label")]] : [])];
  },
};
