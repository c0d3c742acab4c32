import { bidiText, h } from "../dom.js";
import { field, nothing, plainKey } from "./common.js";

const KEYS = { KeyA: "accept", KeyF: "fix", KeyR: "reject" };
const verdictWord = (v, t) => ({ accept: t("ws.verdict_accept"), fix: t("ws.verdict_fix"), reject: t("ws.verdict_reject") })[v];
const words = (text) => String(text ?? "").split(/\s+/).filter(Boolean).join(" ");

export default {
  init(spec, data) { return { verdict: null, text: String(data[spec.candidate_field] ?? "") }; },

  mount(ctx) {
    const { spec, data, t } = ctx;
    const area = h("textarea", { class: "answer-text verify-text", dir: "auto", rows: 6, "aria-label": t("ws.fix_text"),
      oninput: () => ctx.set({ ...ctx.get(), verdict: "fix", text: area.value }) });
    const pick = (verdict) => {
      ctx.update((s) => { s.verdict = verdict; });
      if (verdict === "fix") setTimeout(() => area.focus(), 0);
    };
    const buttons = Object.entries(KEYS).map(([code, verdict]) => h("button", { type: "button",
      class: "choice-btn verdict-" + verdict, dataset: { verdict }, onclick: () => pick(verdict) },
      h("kbd", { text: code.slice(3) }), verdictWord(verdict, t)));
    const fix = h("label", { class: "stack verify-fix" }, t("ws.fix_text"), area);
    ctx.root.append(
      h("div", { class: "content" }, field(data, spec.prompt_field, "prompt"),
        h("section", { class: "response candidate", "aria-label": t("ws.candidate") }, h("h3", { text: t("ws.candidate") }),
          field(data, spec.candidate_field))),
      h("div", { class: "choices", role: "group" }, buttons), fix);
    return {
      render(state) {
        buttons.forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.verdict === state.verdict)));
        fix.hidden = state.verdict !== "fix";
        if (area.value !== state.text) area.value = state.text;
      },
      key(ev) {
        const verdict = KEYS[ev.code];
        if (verdict && plainKey(ev) && !ev.shiftKey) { pick(verdict); return true; }
        return false;
      },
    };
  },

  state(spec, data, answer) {
    const fresh = this.init(spec, data);
    if (!answer?.verdict) return fresh;
    return { verdict: answer.verdict, text: typeof answer.text === "string" ? answer.text : fresh.text };
  },

  // The verdict, and a fix's text; one the aggregated answer decides otherwise is marked.
  show(spec, data, answer, reference, t) {
    if (!answer?.verdict) return nothing(t);
    const diff = reference && (reference.verdict !== answer.verdict || words(reference.text) !== words(answer.text));
    return h("div", { class: diff ? "diff" : "", dataset: { mark: diff ? "diff" : "same" } },
      h("p", {}, h("strong", { text: verdictWord(answer.verdict, t) })),
      typeof answer.text === "string" ? bidiText(answer.text, "div", "task-text rv-text") : null);
  },

  answer(spec, state) {
    if (!state.verdict) return null;
    if (state.verdict !== "fix") return { verdict: state.verdict };
    return state.text.trim() ? { verdict: "fix", text: state.text } : null;
  },

  help(spec, t) {
    return [["A", t("ws.verdict_accept")], ["F", t("ws.verdict_fix")], ["R", t("ws.verdict_reject")],
      ["Ctrl+↵", t("ws.key_submit_text")]];
  },
};
