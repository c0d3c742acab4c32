// The reviewer's workspace: take a task waiting for review, show its data the way its widget
// does and every counted answer beside the aggregated one (those that differ marked), then
// accept (A), correct (C: the type's widget, starting from the aggregated answer) or send one
// answer back with a reason (R). The next review loads at once.
import { api, deadlineOf } from "./api.js";
import { clear, h, kbd, say } from "./dom.js";
import { describeError } from "./messages.js";
import { digitOf, plainKey } from "./widgets/common.js";

const boot = JSON.parse(document.getElementById("boot").textContent);
const spec = boot.spec;
// One widget module per task type, named for it (the server checked the name against its registry).
const widget = (await import(`./widgets/${encodeURIComponent(spec.type)}.js`)).default;
const $ = (id) => document.getElementById(id);
const taskEl = $("task");
const noticeEl = $("notice");
const actionsEl = $("actions");
const answersEl = $("answers");
const gridEl = $("answer-grid");
const rejectEl = $("reject");
const reasonEl = $("reason");
const optionsEl = $("which-options");
const help = $("help");

function t(key, n) {
  const s = boot.strings[key] ?? key;
  return n === undefined ? s : s.replace("{n}", String(n));
}

let lease = null; // the API's review lease: {id, task, answers, response, confidence, expires_at}
let mode = "review"; // review | correct | reject
let edit = null; // while correcting: {state, history, view}
let chosen = 0; // the answer to send back, an index into lease.answers
let busy = false;
let done = 0;
let deadline = 0; // when the lease ends, on this browser's clock
let lastRenew = 0;
let lastActivity = Date.now();

const notice = (message, kind = "info", extra = null) => say(noticeEl, message, kind, extra);

function setMode(next) {
  mode = next;
  for (const el of actionsEl.querySelectorAll("[data-mode]")) el.hidden = el.dataset.mode !== next;
  rejectEl.hidden = next !== "reject";
  document.body.dataset.mode = next;
  markChosen();
}

function setButtons(enabled) {
  for (const b of actionsEl.querySelectorAll("button")) b.disabled = !enabled;
  if (enabled && lease) $("btn-reject").disabled = lease.answers.length === 0;
  if (enabled && edit) $("btn-undo").disabled = edit.history.length === 0;
}

// --- the task: read-only with the aggregated answer, or live while correcting ---------------

function readCtx(root, state) {
  const none = () => {};
  return { root, spec, data: lease.task.data, t, get: () => state, snapshot: () => structuredClone(state),
    update: none, set: none, preview: none, commit: none, notice: none };
}

function editCtx(root, state) {
  edit = { state, history: [], view: null };
  return {
    root, spec, data: lease.task.data, t,
    get: () => edit.state,
    snapshot: () => structuredClone(edit.state),
    update(mutate) {
      const next = structuredClone(edit.state);
      mutate(next);
      edit.history.push(edit.state);
      edit.state = next;
      renderEdit();
    },
    set(s) { edit.state = s; },
    preview(s) { edit.state = s; edit.view.render(s); },
    commit(before, after) { edit.history.push(before); edit.state = after; renderEdit(); },
    notice: (message) => notice(message, "warn"),
  };
}

function renderEdit() {
  edit.view.render(edit.state);
  $("btn-undo").disabled = edit.history.length === 0;
}

function showTask(editable) {
  const state = widget.state(spec, lease.task.data, lease.response);
  const root = h("div", { class: "widget widget-" + spec.type + (editable ? "" : " read-only"), inert: !editable,
    dataset: { task: lease.task.id, review: lease.id } });
  const confidence = typeof lease.confidence === "number" ? lease.confidence.toFixed(2) : "–";
  const caption = editable
    ? h("p", { class: "rv-caption editing" }, h("strong", { text: t("rv.correcting") }), " ",
      h("span", { class: "muted small" }, t("rv.correcting_hint"), " ", kbd("↵"), t("rv.send_correction"), " · ",
        kbd("Esc"), t("rv.cancel")))
    : h("p", { class: "rv-caption" }, h("strong", { text: t("rv.result") }), " ",
      h("span", { class: "muted small" }, t("rv.confidence"), " ", h("bdi", { dir: "ltr", text: confidence })));
  clear(taskEl).append(caption, root);
  const view = widget.mount(editable ? editCtx(root, state) : readCtx(root, state));
  if (editable) { edit.view = view; renderEdit(); } else view.render(state);
}

// --- the answers, side by side -----------------------------------------------------------

function card({ title, answer, reference, cls, badge = null, data = {} }) {
  return h("article", { class: "rv-answer " + cls, dataset: data }, h("header", {}, title, badge),
    widget.show(spec, lease.task.data, answer, reference, t));
}

function showAnswers() {
  const several = lease.answers.length > 1;
  const cards = [card({ title: h("strong", { text: t("rv.result") }), answer: lease.response, reference: null,
    cls: "aggregated" })];
  lease.answers.forEach((a, i) => cards.push(card({
    title: h("span", { class: "who" }, several && i < 9 ? kbd(String(i + 1)) : null, h("bdi", { dir: "ltr", text: a.annotator })),
    answer: a.answer, reference: lease.response, cls: a.agrees ? "agrees" : "differs",
    badge: h("span", { class: "badge " + (a.agrees ? "same" : "diff"), text: a.agrees ? t("rv.agrees") : t("rv.differs") }),
    data: { annotation: a.id, index: i },
  })));
  clear(gridEl).append(...cards);
  answersEl.hidden = false;
}

function markChosen() {
  for (const el of gridEl.querySelectorAll("[data-index]")) {
    el.classList.toggle("chosen", mode === "reject" && Number(el.dataset.index) === chosen);
  }
}

// --- taking the next review, and the verdicts --------------------------------------------

async function next(message = null) {
  if (busy) return;
  busy = true;
  lease = null;
  edit = null;
  setMode("review");
  actionsEl.hidden = true;
  answersEl.hidden = true;
  if (message) notice(message, "warn"); else notice(null);
  clear(taskEl).append(h("p", { class: "muted", text: t("rv.loading") }));
  const { status, data, date } = await api("POST", `/projects/${boot.project}/reviews`);
  busy = false;
  if (status === 201) {
    deadline = deadlineOf(data.expires_at, date, boot.leaseSeconds);
    lastRenew = Date.now();
    start(data);
  }
  else if (status === 204) showEmpty();
  else if (status !== 401) {
    clear(taskEl);
    notice(status === 0 ? t("ws.offline") : describeError(boot.strings, data?.error), "error",
      h("button", { type: "button", class: "ghost", onclick: () => next() }, t("ws.retry")));
  }
}

function start(data) {
  lease = data;
  showTask(false);
  showAnswers();
  setMode("review");
  actionsEl.hidden = false;
  setButtons(true);
}

function showEmpty() {
  clear(taskEl).append(h("div", { class: "empty", id: "review-empty" },
    h("p", { text: t("rv.empty") }),
    h("button", { type: "button", class: "primary", id: "btn-again", onclick: () => next() }, t("ws.check_again")),
    " ", h("a", { href: boot.back }, t("rv.back"))));
}

async function send(body) {
  if (!lease || busy) return;
  busy = true;
  setButtons(false);
  const { status, data } = await api("POST", `/reviews/${lease.id}`, body);
  busy = false;
  setButtons(true);
  if (status === 201 || status === 200) {
    done += 1;
    $("done-count").textContent = String(done);
    await next();
  } else if (status === 409 || status === 404) {
    await next(t("rv.stale")); // the lease ran out or the task moved on: nothing was stored
  } else if (status !== 401) {
    notice(status === 0 ? t("ws.offline") : describeError(boot.strings, data?.error), "error");
  }
}

// Keep the lease while the reviewer is at work: past half of it, and active since the last renewal.
async function renew() {
  const held = lease;
  lastRenew = Date.now();
  const { status, data, date } = await api("POST", `/reviews/${held.id}/renew`);
  if (held !== lease) return;
  if (status === 200) deadline = deadlineOf(data.expires_at, date, boot.leaseSeconds);
  else if (status === 409 || status === 404) await next(t("rv.stale"));
}

setInterval(() => {
  if (lease && !busy && deadline - Date.now() < (boot.leaseSeconds * 1000) / 2 && lastActivity > lastRenew) renew();
}, 1000);
for (const kind of ["keydown", "pointerdown"]) document.addEventListener(kind, () => { lastActivity = Date.now(); }, true);

function accept() {
  send({ action: "accept" });
}

function startCorrect() {
  setMode("correct");
  showTask(true);
  if (document.activeElement instanceof HTMLButtonElement) document.activeElement.blur();
}

function sendCorrection() {
  const answer = widget.answer(spec, edit.state);
  if (!answer) { notice(t("ws.incomplete"), "warn"); return; }
  send({ action: "correct", answer });
}

function undo() {
  if (!edit || edit.history.length === 0) return;
  edit.state = edit.history.pop();
  renderEdit();
}

function startReject() {
  if (!lease.answers.length) return;
  const first = lease.answers.findIndex((a) => !a.agrees);
  chosen = first >= 0 ? first : 0;
  setMode("reject");
  reasonEl.value = "";
  const several = lease.answers.length > 1;
  $("reject-which").hidden = !several;
  clear(optionsEl);
  if (!several) { reasonEl.focus(); return; }
  $("which-keys").textContent = `1–${Math.min(9, lease.answers.length)}`;
  lease.answers.forEach((a, i) => optionsEl.append(h("label", { class: "check" },
    h("input", { type: "radio", name: "which", value: String(i), checked: i === chosen, onchange: () => choose(i, false) }),
    i < 9 ? kbd(String(i + 1)) : null, h("bdi", { dir: "ltr", text: a.annotator }),
    a.agrees ? null : h("span", { class: "badge diff", text: t("rv.differs") }))));
  optionsEl.querySelectorAll("input")[chosen].focus();
}

function choose(i, thenReason = true) {
  chosen = i;
  const radio = optionsEl.querySelectorAll("input")[i];
  if (radio) radio.checked = true;
  markChosen();
  if (thenReason) reasonEl.focus();
}

function sendReject() {
  const reason = reasonEl.value.trim();
  if (!reason) { notice(t("rv.reason_needed"), "warn"); reasonEl.focus(); return; }
  send({ action: "reject", reason, annotation: lease.answers[chosen].id });
}

function cancel() {
  if (mode === "correct") { edit = null; showTask(false); }
  notice(null);
  setMode("review");
  setButtons(true);
  if (document.activeElement && document.activeElement !== document.body) document.activeElement.blur();
}

// --- keys ---------------------------------------------------------------------------------

function isTyping(el) {
  return el && (el.tagName === "TEXTAREA" || (el.tagName === "INPUT" && el.type === "text") || el.isContentEditable);
}

function correctKey(ev) {
  if (isTyping(ev.target)) {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); sendCorrection(); }
    else if (ev.key === "Escape") ev.target.blur();
    return;
  }
  if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); sendCorrection(); return; }
  if (ev.code === "KeyZ" && !ev.shiftKey && !ev.altKey) { ev.preventDefault(); undo(); return; }
  if (edit.view.key(ev, edit.state)) { ev.preventDefault(); return; }
  if (ev.key === "Escape") { ev.preventDefault(); cancel(); }
}

function rejectKey(ev) {
  if (ev.key === "Escape") { ev.preventDefault(); cancel(); return; }
  if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); sendReject(); return; }
  if (isTyping(ev.target)) return;
  const d = digitOf(ev);
  if (d !== null && plainKey(ev) && d >= 1 && d <= Math.min(9, lease.answers.length)) { ev.preventDefault(); choose(d - 1); }
}

document.addEventListener("keydown", (ev) => {
  if (help.open) return; // the dialog handles Escape itself
  if (ev.key === "?" && !isTyping(ev.target)) { ev.preventDefault(); help.showModal(); return; }
  if (!lease || busy) return;
  if (mode === "correct") { correctKey(ev); return; }
  if (mode === "reject") { rejectKey(ev); return; }
  if (isTyping(ev.target) || !plainKey(ev) || ev.shiftKey) return;
  // Keys by their position (KeyA...), so they work with an Arabic keyboard layout too.
  const action = { KeyA: accept, KeyC: startCorrect, KeyR: startReject }[ev.code];
  if (action) { ev.preventDefault(); action(); }
});

function keyHelp() {
  const table = (rows) => h("table", { class: "keys" },
    rows.map(([k, d]) => h("tr", {}, h("td", {}, kbd(k)), h("td", { text: d }))));
  clear($("keys-help")).append(
    table([["?", t("ws.key_help")], ["A", t("rv.key_accept")], ["C", t("rv.key_correct")], ["R", t("rv.key_reject")],
      ["1–9", t("rv.key_which")], ["Ctrl+↵", t("rv.key_send_reject")], ["Esc", t("rv.key_cancel")]]),
    h("h4", { text: t("rv.keys_correcting") }),
    table([["↵", t("rv.key_send_correction")], ["Z / Ctrl+Z", t("ws.undo")], ...widget.help(spec, t)]));
}

$("btn-accept").addEventListener("click", accept);
$("btn-correct").addEventListener("click", startCorrect);
$("btn-reject").addEventListener("click", startReject);
$("btn-send-correction").addEventListener("click", sendCorrection);
$("btn-undo").addEventListener("click", undo);
for (const b of document.querySelectorAll(".btn-cancel")) b.addEventListener("click", cancel);
rejectEl.addEventListener("submit", (ev) => { ev.preventDefault(); sendReject(); });
$("btn-help").addEventListener("click", () => help.showModal());
keyHelp();
next();
