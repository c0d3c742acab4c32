// A project's pre-label jobs: each job still queued or running is followed through the API
// (GET /prelabel-jobs/{id}) and its row updated in place until it ends; then the project's
// usage is read again (GET /projects/{id}/prelabel-jobs).
import { api } from "./api.js";
import { clear, h } from "./dom.js";
import { followRows } from "./follow.js";
import { fill } from "./messages.js";

const table = document.getElementById("jobs");
const strings = JSON.parse(document.getElementById("models-strings").textContent);
const note = document.getElementById("jobs-follow");

function setText(root, cell, text) {
  const el = root.querySelector(`[data-cell="${cell}"]`);
  if (el) el.textContent = text;
}

function show(body, j) {
  body.dataset.status = j.status;
  const status = body.querySelector('[data-cell="status"]');
  status.textContent = strings.status[j.status] ?? j.status;
  status.className = "gen-status " + j.status;
  const handled = j.done + j.failed + j.skipped;
  const bar = body.querySelector('[data-cell="progress"]');
  bar.max = j.tasks_total || 1;
  bar.value = j.tasks_total ? handled : 0;
  setText(body, "handled", `${handled} / ${j.tasks_total ?? "…"}`);
  for (const cell of ["done", "failed", "skipped"]) setText(body, cell, String(j[cell]));
  setText(body, "tokens", `${j.input_tokens} / ${j.output_tokens}`);
  setText(body, "cost", Number(j.cost).toFixed(4));
  const error = clear(body.querySelector('[data-cell="error"]'));
  if (j.error) error.append(h("p", { class: "error" }, strings.job_error, " ", h("code", { lang: "en", dir: "ltr", text: j.error })));
  const details = body.querySelector('[data-cell="failures"]');
  details.hidden = j.failures.length === 0;
  details.querySelector("summary").textContent = fill(strings.failures, { n: j.failed });
  clear(details.querySelector("ul")).append(...j.failures.map((f) => h("li", {},
    h("a", { href: `/console/tasks/${f.task_id}`, text: fill(strings.task, { id: f.task_id }) }), " ",
    h("code", { lang: "en", dir: "ltr", class: "reason", text: f.reason }))));
}

async function refreshUsage() {
  const { status, data } = await api("GET", `/projects/${table.dataset.project}/prelabel-jobs`);
  if (status !== 200) return;
  const u = data.usage;
  const values = { jobs: u.jobs, requests: u.requests, tokens: `${u.input_tokens} / ${u.output_tokens}`,
    cost: Number(u.cost).toFixed(4), done: u.done, failed: u.failed };
  for (const [name, value] of Object.entries(values)) {
    const el = document.querySelector(`[data-usage="${name}"]`);
    if (el) el.textContent = String(value);
  }
}

if (table) {
  followRows(table.querySelectorAll("tbody.job"), {
    path: (body) => `/prelabel-jobs/${body.dataset.job}`, show, note, strings, onEnd: refreshUsage,
  });
}
