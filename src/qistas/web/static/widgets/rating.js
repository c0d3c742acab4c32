import { h } from "../dom.js";
import { digitOf, field, nothing, plainKey } from "./common.js";

export default {
  init() { return { rating: null }; },

  mount(ctx) {
    const { spec, data } = ctx;
    const values = [];
    for (let v = spec.min; v <= spec.max; v++) values.push(v);
    const set = (v) => ctx.update((s) => { s.rating = v; });
    const buttons = values.map((v) => h("button", { type: "button", class: "rate-btn", dataset: { value: v },
      onclick: () => set(v) }, String(v)));
    ctx.root.append(
      h("div", { class: "content" }, field(data, spec.prompt_field, "prompt")),
      h("div", { class: "scale", role: "group", dir: "ltr" }, buttons),
    );
    return {
      render(state) {
        buttons.forEach((b, i) => b.setAttribute("aria-pressed", String(state.rating === values[i])));
      },
      key(ev, state) {
        const d = digitOf(ev);
        if (d !== null && plainKey(ev) && d >= spec.min && d <= spec.max) { set(d); return true; }
        const step = { ArrowRight: 1, ArrowUp: 1, ArrowLeft: -1, ArrowDown: -1 }[ev.key];
        if (step && plainKey(ev)) {
          const cur = state.rating ?? (step > 0 ? spec.min - 1 : spec.max + 1);
          set(Math.min(spec.max, Math.max(spec.min, cur + step)));
          return true;
        }
        return false;
      },
    };
  },

  state(spec, data, answer) { return { rating: typeof answer?.rating === "number" ? answer.rating : null }; },

  show(spec, data, answer, reference, t) {
    if (typeof answer?.rating !== "number") return nothing(t);
    const mark = reference && reference.rating !== answer.rating ? "diff" : "same";
    return h("p", { class: "rv-rating" + (mark === "diff" ? " diff" : ""), dir: "ltr", dataset: { mark } },
      h("strong", { text: String(answer.rating) }), h("span", { class: "muted", text: ` / ${spec.min}–${spec.max}` }));
  },

  answer(spec, state) { return state.rating === null ? null : { rating: state.rating }; },

  help(spec, t) {
    return [[`${Math.max(0, spec.min)}–${Math.min(9, spec.max)}`, t("ws.key_rate")], ["← →", t("ws.key_rate_step")]];
  },
};
