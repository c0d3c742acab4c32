import { bidiText, h } from "../dom.js";
import { content } from "../md.js";
import { digitOf, nothing, plainKey } from "./common.js";

const LETTERS = "ABCDEFGHIJ";
const words = (text) => String(text ?? "").split(/\s+/).filter(Boolean).join(" ");

function messagesOf(spec, data) { return Array.isArray(data[spec.messages_field]) ? data[spec.messages_field] : []; }
function candidatesOf(spec, data) { return Array.isArray(data[spec.candidates_field]) ? data[spec.candidates_field] : []; }
function turnsOf(spec, data) { return messagesOf(spec, data).filter((m) => m.role === "assistant").length; }
// The rubric: each assistant turn rated once per criterion, each on its own scale (none: one scale).
function criteriaOf(spec) { return Array.isArray(spec.criteria) && spec.criteria.length ? spec.criteria : null; }
const shownOf = (c) => c.label || c.name;
function scaleOf(lo, hi) { const values = []; for (let v = lo; v <= hi; v++) values.push(v); return values; }
let rubricIds = 0; // ids a criterion's row is named by (aria-labelledby), unique on the page
function wantsRewrite(spec, data) {
  const messages = messagesOf(spec, data);
  return spec.rewrite && (candidatesOf(spec, data).length > 0 || messages.at(-1)?.role === "assistant");
}
// The text a rewrite starts from: the chosen candidate, else the conversation's last turn.
function original(spec, data, choice) {
  const options = candidatesOf(spec, data);
  if (options.length) return choice === null ? "" : options[choice];
  return messagesOf(spec, data).at(-1)?.content ?? "";
}

export default {
  init(spec, data) {
    const rewrite = wantsRewrite(spec, data) && !candidatesOf(spec, data).length ? original(spec, data, null) : "";
    const criteria = criteriaOf(spec);
    const ratings = criteria
      ? Array.from({ length: turnsOf(spec, data) }, () => Object.fromEntries(criteria.map((c) => [c.name, null])))
      : Array(turnsOf(spec, data)).fill(null);
    return { ratings, choice: null, rewrite, edited: false,
      needChoice: candidatesOf(spec, data).length > 0, needRewrite: wantsRewrite(spec, data) };
  },

  mount(ctx) {
    const { spec, data, t } = ctx;
    const messages = messagesOf(spec, data);
    const options = candidatesOf(spec, data);
    const criteria = criteriaOf(spec);
    // One row of rating buttons per assistant turn, or per turn and criterion: the number keys
    // rate the current row. A row: {row, buttons, values, turn, criterion (null: the one scale)}.
    let current = 0;
    const rows = [];
    const addRow = (turn, criterion, values, build) => {
      const i = rows.length;
      const buttons = values.map((v) => h("button", { type: "button", class: "rate-btn", dataset: { value: v },
        onclick: () => { current = i; rate(i, v); } }, String(v)));
      const row = build(buttons);
      rows.push({ row, buttons, values, turn, criterion });
      return row;
    };
    let turns = 0;
    const list = h("ol", { class: "chat-turns" }, messages.map((m) => {
      const role = ["user", "assistant", "system"].includes(m.role) ? m.role : "other";
      const item = h("li", { class: "msg msg-" + role },
        h("div", { class: "msg-role" }, h("bdi", { dir: "auto", text: String(m.role) })), content(m.content));
      if (m.role !== "assistant") return item;
      const r = turns++;
      if (!criteria) {
        item.append(addRow(r, null, scaleOf(spec.min, spec.max), (buttons) => h("div", { class: "scale turn-rating",
          role: "group", dir: "ltr", dataset: { turn: r }, "aria-label": t("ws.rate_turn", r + 1) }, buttons)));
        return item;
      }
      // A row per criterion, named by its label: the customer's text, isolated, its direction its own.
      item.append(h("div", { class: "turn-rubric", role: "group", dataset: { turn: r }, "aria-label": t("ws.rate_turn", r + 1) },
        criteria.map((c) => addRow(r, c.name, scaleOf(c.min, c.max), (buttons) => {
          const id = `rubric-${++rubricIds}`;
          return h("div", { class: "criterion-rating", role: "group", "aria-labelledby": id,
            dataset: { turn: r, criterion: c.name } }, h("span", { class: "criterion-name", id }, bidiText(shownOf(c))),
          h("div", { class: "scale", dir: "ltr" }, buttons));
        }))));
      return item;
    }));
    const valueOf = (state, i) => (rows[i].criterion === null ? state.ratings[rows[i].turn]
      : state.ratings[rows[i].turn][rows[i].criterion]);
    const rate = (i, v) => ctx.update((s) => {
      if (rows[i].criterion === null) s.ratings[rows[i].turn] = v; else s.ratings[rows[i].turn][rows[i].criterion] = v;
    });
    const choose = (i) => ctx.update((s) => {
      s.choice = i;
      if (!s.edited) s.rewrite = original(spec, data, i);
    });
    const cards = options.map((text, i) => h("button", { type: "button", class: "candidate", dataset: { index: i },
      onclick: () => choose(i) }, h("kbd", { text: LETTERS[i] }), h("div", { class: "candidate-text" }, content(text))));
    const area = wantsRewrite(spec, data) ? h("textarea", { class: "answer-text chat-rewrite", dir: "auto", rows: 6,
      "aria-label": t("ws.rewrite"), oninput: () => ctx.set({ ...ctx.get(), rewrite: area.value, edited: true }) }) : null;
    ctx.root.append(h("div", { class: "content" }, list,
      options.length ? h("section", { class: "candidates", "aria-label": t("ws.candidates") },
        h("h3", { text: t("ws.candidates") }), cards) : null,
      area ? h("label", { class: "stack" }, t("ws.rewrite"), area) : null));
    return {
      render(state) {
        rows.forEach(({ row, buttons, values }, r) => {
          row.classList.toggle("current", rows.length > 1 && r === current);
          const value = valueOf(state, r);
          buttons.forEach((b, i) => b.setAttribute("aria-pressed", String(value === values[i])));
        });
        cards.forEach((c, i) => c.setAttribute("aria-pressed", String(state.choice === i)));
        if (area && area.value !== state.rewrite) area.value = state.rewrite;
      },
      key(ev, state) {
        if (!plainKey(ev)) return false;
        const d = digitOf(ev);
        if (d !== null && rows.length && rows[current].values.includes(d) && !ev.shiftKey) {
          // Rate the current row; the first row still unrated becomes current, so digits go in a run.
          const r = current;
          const next = rows.findIndex((_, i) => valueOf(state, i) === null && i !== r);
          if (next >= 0) current = next;
          rate(r, d);
          return true;
        }
        if ((ev.key === "ArrowDown" || ev.key === "ArrowUp") && rows.length) {
          current = (current + (ev.key === "ArrowDown" ? 1 : rows.length - 1)) % rows.length;
          this.render(state);
          return true;
        }
        const m = /^Key([A-J])$/.exec(ev.code);
        if (m && !ev.shiftKey && LETTERS.indexOf(m[1]) < options.length) { choose(LETTERS.indexOf(m[1])); return true; }
        if (ev.code === "KeyR" && ev.shiftKey && area) { area.focus(); return true; }
        return false;
      },
    };
  },

  state(spec, data, answer) {
    const fresh = this.init(spec, data);
    const given = Array.isArray(answer?.ratings) ? answer.ratings : fresh.ratings;
    const ratings = criteriaOf(spec) ? fresh.ratings.map((turn, i) => ({ ...turn, ...(given[i] ?? {}) })) : [...given];
    return { ...fresh, ratings, choice: typeof answer?.choice === "number" ? answer.choice : null,
      rewrite: typeof answer?.rewrite === "string" ? answer.rewrite : fresh.rewrite, edited: typeof answer?.rewrite === "string" };
  },

  // Each turn's rating, the choice and the rewrite; a part the aggregated answer decides otherwise is marked.
  show(spec, data, answer, reference, t) {
    if (!Array.isArray(answer?.ratings)) return nothing(t);
    const options = candidatesOf(spec, data);
    const criteria = criteriaOf(spec);
    const rows = criteria
      ? answer.ratings.flatMap((turn, i) => criteria.map((c) => [[t("ws.rate_turn", i + 1), " · ", bidiText(shownOf(c))],
        String(turn?.[c.name] ?? "–"), reference && reference.ratings?.[i]?.[c.name] !== turn?.[c.name]]))
      : answer.ratings.map((v, i) => [t("ws.rate_turn", i + 1), String(v), reference && reference.ratings?.[i] !== v]);
    if (typeof answer.choice === "number") {
      rows.push([t("ws.choice"), LETTERS[answer.choice], reference && reference.choice !== answer.choice]);
    }
    const table = h("table", { class: "rv-table" }, h("tbody", {}, rows.map(([name, value, diff]) =>
      h("tr", { class: diff ? "diff" : "", dataset: { mark: diff ? "diff" : "same" } }, h("th", {}, name),
        h("td", { dir: "ltr", text: value })))));
    if (typeof answer.rewrite !== "string") return table;
    const diff = reference && words(reference.rewrite) !== words(answer.rewrite);
    const kept = options.length ? options[answer.choice] : messagesOf(spec, data).at(-1)?.content;
    return h("div", {}, table,
      h("p", { class: "muted small", text: words(kept) === words(answer.rewrite) ? t("ws.rewrite_kept") : t("ws.rewrite") }),
      bidiText(answer.rewrite, "div", "task-text rv-text" + (diff ? " diff" : "")));
  },

  answer(spec, state) {
    const criteria = criteriaOf(spec);
    const open = criteria ? state.ratings.some((turn) => criteria.some((c) => turn[c.name] === null))
      : state.ratings.some((x) => x === null);
    if (open) return null;
    const out = { ratings: criteria ? state.ratings.map((turn) => ({ ...turn })) : [...state.ratings] };
    if (state.needChoice) {
      if (state.choice === null) return null;
      out.choice = state.choice;
    }
    if (state.needRewrite) {
      if (!state.rewrite.trim()) return null;
      out.rewrite = state.rewrite;
    }
    return out;
  },

  help(spec, t) {
    const criteria = criteriaOf(spec);
    if (criteria) {
      const lo = Math.max(0, Math.min(...criteria.map((c) => c.min))), hi = Math.min(9, Math.max(...criteria.map((c) => c.max)));
      return [[`${lo}–${hi}`, t("ws.key_rate_criterion")], ["↑ ↓", t("ws.key_criterion_row")],
        ["A–J", t("ws.key_candidate")], ["⇧R", t("ws.key_rewrite")], ["Ctrl+↵", t("ws.key_submit_text")]];
    }
    return [[`${Math.max(0, spec.min)}–${Math.min(9, spec.max)}`, t("ws.key_rate_turn")], ["↑ ↓", t("ws.key_turn")],
      ["A–J", t("ws.key_candidate")], ["⇧R", t("ws.key_rewrite")], ["Ctrl+↵", t("ws.key_submit_text")]];
  },
};
