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
