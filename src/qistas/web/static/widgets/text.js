import { h } from "../dom.js";
import { field, nothing } from "./common.js";

const words = (text) => String(text ?? "").split(/\s+/).filter(Boolean).join(" ");

export default {
  init(spec, data) {
    // A task may bring a draft to correct (transcription, rewrite): data.draft.
    return { text: typeof data.draft === "string" ? data.draft : "" };
  },

  mount(ctx) {
    const { spec, data } = ctx;
    const area = h("textarea", { class: "answer-text", dir: "auto", rows: 8, "aria-label": ctx.t("ws.your_text"),
      oninput: () => ctx.set({ text: area.value }) });
    ctx.root.append(h("div", { class: "content" }, field(data, spec.prompt_field, "prompt")),
      h("label", { class: "stack" }, ctx.t("ws.your_text"), area));
    setTimeout(() => area.focus(), 0);
    return {
      render(state) { if (area.value !== state.text) area.value = state.text; },
      key() { return false; },
    };
  },

  state(spec, data, answer) { return { text: typeof answer?.text === "string" ? answer.text : "" }; },

  // The text; one that differs from the aggregated text (white space aside) is marked.
  show(spec, data, answer, reference, t) {
    if (typeof answer?.text !== "string") return nothing(t);
    const mark = reference && words(reference.text) !== words(answer.text) ? "diff" : "same";
    return h("div", { class: "task-text rv-text" + (mark === "diff" ? " diff" : ""), dir: "auto", text: answer.text,
      dataset: { mark } });
  },

  answer(spec, state) { return state.text.trim() ? { text: state.text } : null; },

  help(spec, t) { return [["Ctrl+↵", t("ws.key_submit_text")], ["Esc", t("ws.key_leave_text")]]; },
};
