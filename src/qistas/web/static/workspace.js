// The annotator workspace: take a task, show its widget, submit / skip / undo, keep the lease
// alive while the annotator works, and never lose an answer silently.
import { api, deadlineOf } from "./api.js";
import { clear, h, kbd, say } from "./dom.js";
import { describeError, fill } from "./messages.js";

const boot = JSON.parse(document.getElementById("boot").textContent);
const spec = boot.spec;
// One widget module per task type, named for it (the server checked the name against its registry).
const widget = (await import(`./widgets/${encodeURIComponent(spec.type)}.js`)).default;
const $ = (id) => document.getElementById(id);
const taskEl = $("task");
const noticeEl = $("notice");
const actionsEl = $("actions");
const help = $("help");

function t(key, n) {
  const s = boot.strings[key] ?? key;
  return n === undefined ? s : s.replace("{n}", String(n));
}

let current = null; // {assignment, state, history, view, started, deadline, lastRenew, expired}
let busy = false;
let lastActivity = Date.now();
let done = 0;

function notice(message, kind = "info", extra = null) {
  say(noticeEl, message, kind, extra);
}

function render() {
  current.view.render(current.state);
  $("btn-undo").disabled = current.history.length === 0;
}

function ctxFor(task) {
  return {
    root: null, spec, data: task.data, t,
    get: () => current.state,
    snapshot: () => structuredClone(current.state),
    update(mutate) {
      const next = structuredClone(current.state);
      mutate(next);
      current.history.push(current.state);
      current.state = next;
      render();
    },
    set(state) { current.state = state; }, // no undo step (typing has the text area's own undo)
    preview(state) { current.state = state; current.view.render(state); },
    commit(before, after) { current.history.push(before); current.state = after; render(); },
    notice: (message) => notice(message, "warn"),
  };
}

function showEmpty() {
  current = null;
  actionsEl.hidden = true;
  clear(taskEl).append(h("div", { class: "empty" },
    h("p", { text: t("ws.empty") }),
    h("button", { type: "button", class: "primary", id: "btn-again", onclick: () => next() }, t("ws.check_again")),
    " ", h("a", { href: "/work" }, t("ws.back"))));
}

// An exam: its intro (with the last attempt's score) and a button to begin an attempt; its
// questions then come like any task, and when none is left the attempt's result is shown.
function showExam() {
  current = null;
  actionsEl.hidden = true;
  const { questions, passMark, last } = boot.exam;
  const result = last ? h("p", { id: "exam-result", class: last.passed ? "passed" : "failed",
    text: fill(t(last.passed ? "ws.exam_passed" : "ws.exam_failed"), { score: last.score }) }) : null;
  const begin = last?.passed ? null : h("button", { type: "button", class: "primary", id: "btn-exam-start",
    onclick: () => startExam() }, t(last ? "ws.exam_retake" : "ws.exam_start"));
  clear(taskEl).append(h("div", { class: "empty", id: "exam" },
    h("p", { text: fill(t("ws.exam_intro"), { n: questions, mark: passMark }) }), result, begin,
    " ", h("a", { href: "/work" }, t("ws.back"))));
}

async function startExam() {
  if (busy) return;
  busy = true;
  const { status, data } = await api("POST", `/projects/${boot.project}/exam/attempts`);
  busy = false;
  if (status === 201 || status === 200) { boot.exam.open = true; await next(); }
  else if (status !== 401) notice(status === 0 ? t("ws.offline") : describeError(boot.strings, data?.error), "error");
}

async function examOver() {
  // An annotator's own attempts, a few at most (the exam's max_attempts): one page.
  const { status, data } = await api("GET", `/projects/${boot.project}/exam/attempts?limit=1000`);
  const last = status === 200 ? data.items.filter((a) => a.status !== "open").pop() : null;
  boot.exam.open = false;
  if (last) boot.exam.last = { score: last.score, passed: last.passed };
  showExam();
}

async function next() {
  if (busy) return;
  busy = true;
  notice(null);
  clear(taskEl).append(h("p", { class: "muted", text: t("ws.loading") }));
  const { status, data, date } = await api("POST", `/projects/${boot.project}/assignments`);
  busy = false;
  if (status === 201) start(data, date);
  else if (status === 204) await (boot.exam ? examOver() : showEmpty());
  else if (status !== 401) {
    clear(taskEl);
    notice(status === 0 ? t("ws.offline") : describeError(boot.strings, data?.error), "error",
      h("button", { type: "button", class: "ghost", onclick: () => next() }, t("ws.retry")));
  }
}

function initialState(assignment) {
  // A model's prediction, when the project shows one: the annotator confirms it (↵) or changes it.
  const prefill = assignment.prefill;
  if (prefill) return widget.state(spec, assignment.task.data, prefill.answer);
  return widget.init(spec, assignment.task.data);
}

function prefillNote(prefill) {
  if (!prefill) return null;
  return h("p", { class: "prefill-note", id: "prefill-note", role: "note" },
    h("span", { text: t("ws.prefill") }),
    prefill.model ? h("span", { class: "muted" }, " ", h("bdi", { text: t("ws.prefill_model", prefill.model) })) : null);
}

function start(assignment, date) {
  const ctx = ctxFor(assignment.task);
  current = {
    assignment, history: [], state: initialState(assignment), view: null,
    started: Date.now(), deadline: deadlineOf(assignment.expires_at, date, boot.leaseSeconds), lastRenew: Date.now(), expired: false,
  };
  const root = h("div", { class: "widget widget-" + spec.type, dataset: { task: assignment.task.id, assignment: assignment.id } });
  ctx.root = root;
  const note = prefillNote(assignment.prefill);
  clear(taskEl).append(...(note ? [note, root] : [root]));
  current.view = widget.mount(ctx);
  actionsEl.hidden = false;
  $("btn-submit").disabled = false;
  render();
  tick();
}

function expired() {
  if (!current || current.expired) return;
  current.expired = true;
  $("btn-submit").disabled = true;
  // The answer stays on screen (and in a copyable form) for the annotator to keep.
  const answer = widget.answer(spec, current.state);
  const kept = answer ? h("details", { class: "kept" }, h("summary", { text: t("ws.kept_answer") }),
    h("pre", { dir: "ltr", text: JSON.stringify(answer, null, 2) })) : null;
  notice(t("ws.expired"), "warn", h("span", {}, kept,
    h("button", { type: "button", class: "primary", id: "btn-new-task", onclick: () => next() }, t("ws.take_new"))));
}

async function submit() {
  if (!current || busy) return;
  if (current.expired) { expired(); return; }
  const answer = widget.answer(spec, current.state);
  if (!answer) { notice(t("ws.incomplete"), "warn"); return; }
  busy = true;
  $("btn-submit").disabled = true;
  const seconds = Math.round((Date.now() - current.started) / 100) / 10;
  const { status, data } = await api("POST", `/assignments/${current.assignment.id}/submit`, { answer, seconds });
  busy = false;
  if (status === 201 || status === 200) {
    done += 1;
    $("done-count").textContent = String(done);
    await next();
  } else if (status === 409) {
    expired();
  } else if (status !== 401) {
    $("btn-submit").disabled = false;
    notice(status === 0 ? t("ws.offline") : describeError(boot.strings, data?.error), "error");
  }
}

async function skip() {
  if (!current || busy) return;
  if (current.expired) { await next(); return; }
  busy = true;
  const { status, data } = await api("POST", `/assignments/${current.assignment.id}/skip`);
  busy = false;
  if (status === 204 || status === 409) await next();
  else if (status !== 401) notice(status === 0 ? t("ws.offline") : describeError(boot.strings, data?.error), "error");
}

function undo() {
  if (!current || current.history.length === 0) return;
  current.state = current.history.pop();
  render();
}

async function renew() {
  const c = current;
  c.lastRenew = Date.now();
  const { status, data, date } = await api("POST", `/assignments/${c.assignment.id}/renew`);
  if (c !== current) return;
  if (status === 200) c.deadline = deadlineOf(data.expires_at, date, boot.leaseSeconds);
  else if (status === 409 || status === 404) expired();
}

function tick() {
  if (!current) return;
  const secs = Math.floor((Date.now() - current.started) / 1000);
  $("timer").textContent = `${Math.floor(secs / 60)}:${String(secs % 60).padStart(2, "0")}`;
  if (current.expired) return;
  const left = current.deadline - Date.now();
  if (left <= 0) { expired(); return; }
  // Renew while the annotator is at work: past half the lease, and active since the last renewal.
  if (left < (boot.leaseSeconds * 1000) / 2 && lastActivity > current.lastRenew) renew();
}

function isTyping(el) {
  return el && (el.tagName === "TEXTAREA" || (el.tagName === "INPUT" && el.type !== "checkbox") || el.isContentEditable);
}

function keyHelp() {
  const rows = [["?", t("ws.key_help")], ["↵", t("ws.submit")], ["⇧S", t("ws.skip")], ["Z / Ctrl+Z", t("ws.undo")],
    ...widget.help(spec, t)];
  clear($("keys-help")).append(h("table", { class: "keys" }, rows.map(([k, d]) => h("tr", {}, h("td", {}, kbd(k)), h("td", { text: d })))));
}

document.addEventListener("keydown", (ev) => {
  lastActivity = Date.now();
  if (help.open) return; // the dialog handles Escape itself
  if (ev.key === "?" && !isTyping(ev.target)) { ev.preventDefault(); help.showModal(); return; }
  if (!current) return;
  if (isTyping(ev.target)) {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); submit(); }
    else if (ev.key === "Escape") ev.target.blur();
    return;
  }
  if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); submit(); return; }
  if (ev.code === "KeyS" && ev.shiftKey && !ev.ctrlKey && !ev.metaKey && !ev.altKey) { ev.preventDefault(); skip(); return; }
  if (ev.code === "KeyZ" && !ev.shiftKey && !ev.altKey) { ev.preventDefault(); undo(); return; }
  if (current.expired) return;
  if (current.view.key(ev, current.state)) ev.preventDefault();
});
for (const type of ["mousedown", "input", "wheel"]) document.addEventListener(type, () => { lastActivity = Date.now(); }, { passive: true });

$("btn-submit").addEventListener("click", submit);
$("btn-skip").addEventListener("click", skip);
$("btn-undo").addEventListener("click", undo);
$("btn-help").addEventListener("click", () => help.showModal());
keyHelp();
setInterval(tick, 1000);
if (boot.exam && !boot.exam.open) showExam();
else next();
