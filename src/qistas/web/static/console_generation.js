// A project's generation batches: each batch still queued or running is followed through the
// API (GET /generation-batches/{id}) and its row updated in place until it ends.
import { clear, h } from "./dom.js";
import { followRows } from "./follow.js";
import { fill } from "./messages.js";

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

if (table) {
  followRows(table.querySelectorAll("tbody.batch"), {
    path: (body) => `/generation-batches/${body.dataset.batch}`, show, note, strings,
  });
}
