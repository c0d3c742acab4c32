// A safe Markdown subset for task content (responses of a model, chat turns), built as DOM
// nodes: headings, paragraphs, lists, fenced code, `code`, **bold**, *italic*. Links and raw
// HTML stay visible as plain text; nothing is ever parsed as HTML.
import { h } from "./dom.js";

const INLINE = /(`[^`]+`|\*\*[^*]+\*\*|\*[^*\s][^*]*\*)/;

function inline(text) {
  const out = [];
  for (const part of text.split(INLINE)) {
    if (!part) continue;
    if (part.startsWith("`") && part.endsWith("`") && part.length > 1) out.push(h("code", { text: part.slice(1, -1) }));
    else if (part.startsWith("**") && part.endsWith("**") && part.length > 4) out.push(h("strong", { text: part.slice(2, -2) }));
    else if (part.startsWith("*") && part.endsWith("*") && part.length > 2) out.push(h("em", { text: part.slice(1, -1) }));
    else out.push(document.createTextNode(part));
  }
  return out;
}

export function markdown(source) {
  const root = h("div", { class: "md", dir: "auto" });
  const lines = String(source).replace(/\r\n/g, "\n").split("\n");
  let para = [];
  let list = null;
  let code = null;
  const flush = () => {
    if (para.length) { root.append(h("p", { dir: "auto" }, inline(para.join(" ")))); para = []; }
    list = null;
  };
  for (const line of lines) {
    if (code) {
      if (line.trim().startsWith("```")) { root.append(h("pre", { dir: "ltr" }, h("code", { text: code.join("\n") }))); code = null; }
      else code.push(line);
      continue;
    }
    if (line.trim().startsWith("```")) { flush(); code = []; continue; }
    const heading = /^(#{1,4})\s+(.*)$/.exec(line);
    const bullet = /^\s*[-*]\s+(.*)$/.exec(line);
    const numbered = /^\s*\d+[.)]\s+(.*)$/.exec(line);
    if (heading) { flush(); root.append(h("h" + Math.min(6, heading[1].length + 2), { dir: "auto" }, inline(heading[2]))); }
    else if (bullet || numbered) {
      if (para.length) { root.append(h("p", { dir: "auto" }, inline(para.join(" ")))); para = []; }
      const tag = bullet ? "ul" : "ol";
      if (!list || list.tagName.toLowerCase() !== tag) { list = h(tag); root.append(list); }
      list.append(h("li", { dir: "auto" }, inline((bullet || numbered)[1])));
    } else if (!line.trim()) flush();
    else { list = null; para.push(line.trim()); }
  }
  if (code) root.append(h("pre", { dir: "ltr" }, h("code", { text: code.join("\n") })));
  flush();
  return root;
}

function isMessage(item) {
  return item && typeof item === "object" && !Array.isArray(item) && "content" in item;
}

function chat(messages) {
  return h("div", { class: "chat" }, messages.map((m) =>
    h("div", { class: "msg msg-" + (["user", "assistant", "system"].includes(m.role) ? m.role : "other") },
      h("div", { class: "msg-role" }, h("bdi", { dir: "auto", text: String(m.role ?? "") })),
      content(m.content))));
}

// Text, a chat (a list of {role, content}), or any other JSON shown as JSON.
export function content(value) {
  if (typeof value === "string") return markdown(value);
  if (Array.isArray(value) && value.length && value.every(isMessage)) return chat(value);
  if (value && typeof value === "object" && Array.isArray(value.messages)) return chat(value.messages);
  return h("pre", { class: "json", dir: "auto", text: JSON.stringify(value, null, 2) });
}
