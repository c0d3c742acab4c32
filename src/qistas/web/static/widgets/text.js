import { h } from "../dom.js";
import { field } from "./common.js";

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

  answer(spec, state) { return state.text.trim() ? { text: state.text } : null; },

  help(spec, t) { return [["Ctrl+↵", t("ws.key_submit_text")], ["Esc", t("ws.key_leave_text")]]; },
};
