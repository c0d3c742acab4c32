import { bidiText, h } from "../dom.js";
import { field, nothing, plainKey } from "./common.js";

const KEYS = { KeyA: "a", KeyB: "b", KeyT: "tie" };

export default {
  init(spec) {
    return { choice: null, criteria: Object.fromEntries(spec.criteria.map((c) => [c, null])) };
  },

  mount(ctx) {
    const { spec, data, t } = ctx;
    const options = spec.allow_tie ? ["a", "b", "tie"] : ["a", "b"];
    const rows = [null, ...spec.criteria]; // null: the overall choice
    let current = 0;
    const choose = (row, option) => ctx.update((s) => {
      if (rows[row] === null) s.choice = option; else s.criteria[rows[row]] = option;
    });
    const rowEls = rows.map((criterion, r) => {
      const buttons = options.map((o) => h("button", { type: "button", class: "choice-btn choice-" + o, dataset: { option: o },
        onclick: () => { current = r; choose(r, o); } }, h("kbd", { text: o === "tie" ? "T" : o.toUpperCase() }), t("ws.choice_" + o)));
      const el = h("div", { class: "choice-row", dataset: { row: r } },
        h("span", { class: "choice-name" }, criterion === null ? t("ws.overall") : bidiText(criterion)), buttons);
      return { el, buttons };
    });
    ctx.root.append(
      h("div", { class: "content" },
        field(data, spec.prompt_field, "prompt"),
        h("div", { class: "pair" },
          h("section", { class: "response", "aria-label": t("ws.response_a") }, h("h3", { text: "A" }), field(data, spec.a_field)),
          h("section", { class: "response", "aria-label": t("ws.response_b") }, h("h3", { text: "B" }), field(data, spec.b_field)))),
      h("div", { class: "choices" }, rowEls.map((r) => r.el)),
    );
    return {
      render(state) {
        rowEls.forEach((row, r) => {
          const value = rows[r] === null ? state.choice : state.criteria[rows[r]];
          row.el.classList.toggle("current", rows.length > 1 && r === current);
          row.buttons.forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.option === value)));
        });
      },
      key(ev, state) {
        if (!plainKey(ev) || ev.shiftKey) return false;
        const option = KEYS[ev.code];
        if (option && options.includes(option)) {
          const row = current;
          if (rows.length > 1) {
            // Move on to the next row still to answer, so A/B/T can be typed in a run.
            const pending = (r) => (rows[r] === null ? state.choice : state.criteria[rows[r]]) === null;
            let next = row;
            for (let i = 1; i < rows.length; i++) { const r = (row + i) % rows.length; if (pending(r) && r !== row) { next = r; break; } }
            current = next;
          }
          choose(row, option);
          return true;
        }
        if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
          current = (current + (ev.key === "ArrowDown" ? 1 : rows.length - 1)) % rows.length;
          this.render(state);
          return true;
        }
        return false;
      },
    };
  },

  state(spec, data, answer) {
    const fresh = this.init(spec);
    return { choice: answer?.choice ?? null, criteria: { ...fresh.criteria, ...(answer?.criteria ?? {}) } };
  },

  // The choice and each criterion's, a row the aggregated answer decides otherwise marked.
  show(spec, data, answer, reference, t) {
    if (!answer?.choice) return nothing(t);
    const rows = [[t("ws.overall"), answer.choice, reference?.choice],
      ...spec.criteria.map((c) => [bidiText(c), answer.criteria?.[c], reference?.criteria?.[c]])];
    return h("table", { class: "rv-table" }, h("tbody", {}, rows.map(([name, mine, ref]) => {
      const mark = reference && mine !== ref ? "diff" : "same";
      return h("tr", { class: mark === "diff" ? "diff" : "", dataset: { mark } }, h("th", {}, name),
        h("td", { text: mine ? t("ws.choice_" + mine) : "–" }));
    })));
  },

  answer(spec, state) {
    if (!state.choice) return null;
    if (!spec.criteria.length) return { choice: state.choice };
    if (spec.criteria.some((c) => !state.criteria[c])) return null;
    return { choice: state.choice, criteria: { ...state.criteria } };
  },

  help(spec, t) {
    const keys = [["A / B" + (spec.allow_tie ? " / T" : ""), t("ws.key_choose")]];
    if (spec.criteria.length) keys.push(["↑ ↓", t("ws.key_criterion")]);
    return keys;
  },
};
