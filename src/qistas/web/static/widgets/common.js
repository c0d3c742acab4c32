import { bidiText, h } from "../dom.js";
import { content } from "../md.js";

// The digit of a number key (top row or keypad), whatever the keyboard layout.
export function digitOf(ev) {
  const m = /^(?:Digit|Numpad)(\d)$/.exec(ev.code);
  if (m) return Number(m[1]);
  return /^[0-9]$/.test(ev.key) ? Number(ev.key) : null;
}

export function plainKey(ev) {
  return !ev.ctrlKey && !ev.metaKey && !ev.altKey;
}

// A task field: text as text, chats as chats, anything else as JSON.
export function field(data, name, cls = "") {
  if (!name || !(name in data)) return null;
  return h("div", { class: "field " + cls }, content(data[name]));
}

// Every field of the task's data, for types that name no field to show.
export function allFields(data) {
  return h("dl", { class: "fields" }, Object.entries(data).flatMap(([key, value]) => [
    h("dt", {}, bidiText(key)),
    h("dd", {}, typeof value === "string" ? bidiText(value, "div", "task-text") : content(value)),
  ]));
}

export function labelButtons(labels, onPick, cls = "labels") {
  const bar = h("div", { class: cls, role: "group" });
  const buttons = labels.map((label, i) => {
    const b = h("button", { type: "button", class: "label-btn lab-" + (i % 10), dataset: { index: i },
      onclick: () => onPick(i) }, i < 9 ? h("kbd", { text: String(i + 1) }) : null, bidiText(label));
    bar.append(b);
    return b;
  });
  return { bar, buttons };
}

// --- the reviewer's view of an answer (each widget's `show`) ---------------------------------

// The items of one answer against those of the aggregated answer: a mark per item ("same",
// or "diff" when the aggregated answer has no such item), and the aggregated items this answer
// lacks. Without a reference (the aggregated answer itself) every item is "same".
export function compare(mine, reference, same) {
  if (!reference) return { marks: mine.map(() => "same"), missing: [] };
  const left = [...reference];
  const marks = mine.map((x) => {
    const i = left.findIndex((r) => same(x, r));
    if (i < 0) return "diff";
    left.splice(i, 1);
    return "same";
  });
  return { marks, missing: left };
}

// A label as a coloured chip; "diff" marks it as not in the aggregated answer, "missing" as
// one of the aggregated answer's that this answer lacks (struck through).
export function labelChip(label, labels, mark, t, ...rest) {
  const cls = "chip lab-" + (Math.max(0, labels.indexOf(label)) % 10) + (mark === "same" ? "" : " " + mark);
  const title = mark === "diff" ? t("rv.not_in_result") : mark === "missing" ? t("rv.missing_here") : null;
  const name = bidiText(label, "bdi", "chip-label");
  return h("li", { class: cls, title, dataset: { mark } }, mark === "missing" ? h("del", {}, name) : name, ...rest);
}

export function nothing(t) {
  return h("p", { class: "muted small", text: t("rv.nothing") });
}
