// The console's review pieces, through the JSON API: a project's review policy (PATCH its
// `review`) and the customer's audit of a delivered task (accept, or reject with a reason).
import { api } from "./api.js";
import { clear, h } from "./dom.js";
import { describeError } from "./messages.js";

const stringsOf = (id) => JSON.parse(document.getElementById(id).textContent);

function answer(out, strings, status, data, idPrefix) {
  clear(out);
  if (status === 401) return;
  out.append(h("span", { class: "error", id: idPrefix + "-error", role: "alert",
    text: status === 0 ? strings.offline : describeError(strings.errors, data?.error) }));
}

// Only what differs from "no review" is stored: an empty policy reviews nothing.
function policyOf(form) {
  const f = form.elements;
  const number = (name, scale = 1) => {
    const raw = f[name].value.trim();
    return raw === "" ? 0 : Number(raw) / scale; // not a number: null in JSON, refused by the server by name
  };
  const review = {};
  const share = number("share", 100);
  const below = number("below_confidence");
  const probation = number("probation");
  if (share !== 0) review.share = share;
  if (below !== 0) review.below_confidence = below;
  if (probation !== 0) review.probation = probation;
  if (f.disagreement.checked) review.disagreement = true;
  if (f.reopen.value !== "annotate") review.reopen = f.reopen.value;
  return review;
}

const policy = document.getElementById("review-policy");
if (policy) {
  const strings = stringsOf("review-strings");
  const out = document.getElementById("review-policy-result");
  policy.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const { status, data } = await api("PATCH", `/projects/${policy.dataset.project}`, { review: policyOf(policy) });
    if (status === 200) clear(out).append(h("span", { class: "ok", id: "review-policy-saved", text: strings.saved }));
    else answer(out, strings, status, data, "review-policy");
  });
}

const audit = document.getElementById("audit-form");
if (audit) {
  const strings = stringsOf("audit-strings");
  const out = document.getElementById("audit-result");
  const reason = document.getElementById("audit-reason");
  const send = async (body) => {
    for (const b of audit.querySelectorAll("button")) b.disabled = true;
    const { status, data } = await api("POST", `/tasks/${audit.dataset.task}/audit`, body);
    if (status === 201) { window.location.reload(); return; } // the task's new state, from the server
    for (const b of audit.querySelectorAll("button")) b.disabled = false;
    answer(out, strings, status, data, "audit");
  };
  document.getElementById("audit-accept").addEventListener("click", () => send({ accepted: true }));
  const reject = () => {
    const text = reason.value.trim();
    if (!text) {
      clear(out).append(h("span", { class: "error", id: "audit-error", role: "alert", text: strings.reason_needed }));
      reason.focus();
      return;
    }
    send({ accepted: false, reason: text });
  };
  audit.addEventListener("submit", (ev) => { ev.preventDefault(); reject(); });
  reason.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); reject(); }
  });
}

// The likely label errors: each row's button sends its task to review.
const likely = document.getElementById("label-errors");
if (likely) {
  const strings = stringsOf("label-error-strings");
  likely.addEventListener("click", async (ev) => {
    const button = ev.target.closest("button.recheck");
    if (!button) return;
    button.disabled = true;
    const cell = button.parentElement;
    const { status, data } = await api("POST", `/tasks/${button.dataset.task}/recheck`);
    if (status === 200) {
      clear(cell).append(h("span", { class: "ok recheck-sent", text: strings.sent }));
      return;
    }
    button.disabled = false;
    for (const old of cell.querySelectorAll(".error")) old.remove();
    if (status === 401) return;
    cell.append(h("span", { class: "error recheck-error", role: "alert",
      text: status === 0 ? strings.offline : describeError(strings.errors, data?.error) }));
  });
}
