import { h } from "../dom.js";
import { allFields, compare, digitOf, labelButtons, labelChip, nothing, plainKey } from "./common.js";

const chosenOf = (answer) => (Array.isArray(answer?.labels) ? answer.labels : answer?.label != null ? [answer.label] : []);

export default {
  init() { return { chosen: [] }; },

  mount(ctx) {
    const { spec, data } = ctx;
    const text = spec.text_field ? h("div", { class: "task-text", dir: "auto", text: String(data[spec.text_field]) }) : allFields(data);
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
    return [["1–9", spec.multi ? t("ws.key_toggle_label") : t("ws.key_pick_label")]];
  },
};
