// A project's generation batches: each batch still queued or running is followed through the
// API (GET /generation-batches/{id}) and its row updated in place until it ends.
import { api } from "./api.js";
import { clear, h } from "./dom.js";
import { describeError, fill } from "./messages.js";

const POLL_MS = 1000;
const RETRY_MS = 5000;
const RUNNING = new Set(["queued", "running"]);

const table = document.getElementById("batches");
const strings = JSON.parse(document.getElementById("generation-strings").textContent);
const note = document.getElementById("gen-follow");

function setText(body, cell, text) {
  const el = body.querySelector(`[data-cell="${cell}"]`);
  if (el) el.textContent = text;
}

function list(details, summary, items) {
  details.hidden = items.length === 0;
  details.querySelector("summary").textContent = summary;
  clear(details.querySelector("ul")).append(...items);
}

function show(body, b) {
  body.dataset.status = b.status;
  const status = body.querySelector('[data-cell="status"]');
  status.textContent = strings.status[b.status] ?? b.status;
  status.className = "gen-status " + b.status;
  const bar = body.querySelector('[data-cell="progress"]');
  bar.max = b.count;
  bar.value = b.next_index;
  setText(body, "asked", `${b.next_index} / ${b.count}`);
  for (const cell of ["generated", "duplicates", "failed"]) setText(body, cell, String(b[cell]));
  setText(body, "tokens", `${b.input_tokens} / ${b.output_tokens}`);
  setText(body, "cost", Number(b.cost).toFixed(4));
  const error = clear(body.querySelector('[data-cell="error"]'));
  if (b.error) error.append(h("p", { class: "error" }, strings.batch_error, " ", h("code", { lang: "en", dir: "ltr", text: b.error })));
  list(body.querySelector('[data-cell="failures"]'), fill(strings.failures, { n: b.failed }),
    b.failures.map((f) => h("li", {}, h("span", { class: "num", dir: "ltr", text: `#${f.index}` }), " ",
      h("code", { lang: "en", dir: "ltr", class: "reason", text: f.reason }))));
  list(body.querySelector('[data-cell="dropped"]'), fill(strings.dropped, { n: b.duplicates }),
    b.dropped.map((d) => h("li", {}, h("span", { class: "num", dir: "ltr", text: `#${d.index}` }), " ",
      strings.duplicate_of, " ", h("bdi", { dir: "auto", text: d.of }))));
}

async function follow(body) {
  const { status, data } = await api("GET", `/generation-batches/${body.dataset.batch}`);
  if (status === 200) {
    note.textContent = "";
    show(body, data);
    if (RUNNING.has(data.status)) setTimeout(() => follow(body), POLL_MS);
    return;
  }
  if (status === 401) return;
  note.textContent = status === 0 ? strings.offline : describeError(strings.errors, data?.error);
  note.className = "small error";
  if (status === 0 || status >= 500) setTimeout(() => follow(body), RETRY_MS);
}

if (table) {
  for (const body of table.querySelectorAll("tbody.batch")) {
    if (RUNNING.has(body.dataset.status)) setTimeout(() => follow(body), POLL_MS);
  }
}
