import { h } from "../dom.js";
import { allFields, compare, digitOf, labelButtons, labelChip, nothing, plainKey } from "./common.js";
import { imageView, safeImageUrl } from "./imageview.js";

const chosenOf = (answer) => (Array.isArray(answer?.labels) ? answer.labels : answer?.label != null ? [answer.label] : []);

export default {
  init() { return { chosen: [] }; },

  mount(ctx) {
    const { spec, data } = ctx;
    // With an image_field: the image, with zoom and pan (and the text field under it, if any).
    const src = spec.image_field ? safeImageUrl(data[spec.image_field]) : null;
    const iv = spec.image_field ? imageView({ src, data, t: ctx.t }) : null;
    const failed = spec.image_field && !src ? h("p", { class: "muted small", text: ctx.t("ws.image_failed") }) : null;
    const words = spec.text_field ? h("div", { class: "task-text", dir: "auto", text: String(data[spec.text_field]) }) : null;
    const text = iv ? h("div", {}, src ? iv.root : failed, words) : words ?? allFields(data);
    const pick = (i) => ctx.update((s) => {
      const label = spec.labels[i];
      if (spec.multi) s.chosen = s.chosen.includes(label) ? s.chosen.filter((l) => l !== label) : [...s.chosen, label];
      else s.chosen = s.chosen[0] === label ? [] : [label];
    });
    const { bar, buttons } = labelButtons(spec.labels, pick);
    ctx.root.append(h("div", { class: "content" }, text), bar);
    return {
      render(state) {
        buttons.forEach((b, i) => b.setAttribute("aria-pressed", String(state.chosen.includes(spec.labels[i]))));
      },
      key(ev) {
        const d = digitOf(ev);
        if (d !== null && d >= 1 && d <= Math.min(9, spec.labels.length) && plainKey(ev)) { pick(d - 1); return true; }
        if (iv && iv.key(ev)) return true;
        const arrows = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
        if (iv && arrows[ev.key] && plainKey(ev) && iv.zoom > 1) {
          const step = ev.shiftKey ? 200 : 40;
          iv.panBy(arrows[ev.key][0] * step, arrows[ev.key][1] * step);
          return true;
        }
        return false;
      },
    };
  },

  state(spec, data, answer) { return { chosen: [...chosenOf(answer)] }; },

  show(spec, data, answer, reference, t) {
    const mine = chosenOf(answer);
    const { marks, missing } = compare(mine, reference && chosenOf(reference), (a, b) => a === b);
    if (!mine.length && !missing.length) return nothing(t);
    return h("ul", { class: "span-list rv-labels" }, mine.map((l, i) => labelChip(l, spec.labels, marks[i], t)),
      missing.map((l) => labelChip(l, spec.labels, "missing", t)));
  },

  answer(spec, state) {
    if (spec.multi) return { labels: state.chosen };
    return state.chosen.length ? { label: state.chosen[0] } : null;
  },

  help(spec, t) {
    const keys = [["1–9", spec.multi ? t("ws.key_toggle_label") : t("ws.key_pick_label")]];
    if (spec.image_field) keys.push(["+ −", t("ws.key_zoom")], ["0", t("ws.key_zoom_fit")], ["← ↑ → ↓", t("ws.key_pan")]);
    return keys;
  },
};
