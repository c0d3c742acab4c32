// DOM helpers. Customer text only ever reaches the page through textContent: never innerHTML.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// A piece of customer text: isolated from the surrounding layout, direction from its own letters.
export function bidiText(value, tag = "bdi", cls = "") {
  return h(tag, { dir: "auto", class: cls, text: String(value) });
}

export function kbd(label) {
  return h("kbd", { text: label });
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

// A notice in a page's notice area (class "ws-notice"): a message of a kind (info, warn,
// error) and something after it (a button); no message hides the area.
export function say(el, message, kind = "info", extra = null) {
  clear(el);
  if (!message) { el.hidden = true; return; }
  el.className = "ws-notice " + kind;
  el.append(h("span", { text: message }));
  if (extra) el.append(extra); // append(null) would show the word "null"
  el.hidden = false;
}
