// Owner console: show the fields of the chosen task type; upload files with a progress bar.
import { clear, h } from "./dom.js";
import { describeError, fill } from "./messages.js";

const HTTP_CODES = { 413: "too_large", 415: "unsupported_media_type", 429: "too_many_requests" };

const csrf = document.querySelector('meta[name="csrf-token"]').content;

const typeSelect = document.getElementById("task-type");
if (typeSelect) {
  const sync = () => {
    for (const el of document.querySelectorAll("[data-types]")) {
      el.hidden = !el.dataset.types.split(" ").includes(typeSelect.value);
    }
  };
  typeSelect.addEventListener("change", sync);
  sync();
}

const form = document.getElementById("upload-form");
if (form) {
  const strings = JSON.parse(document.getElementById("upload-strings").textContent);
  const bar = document.getElementById("upload-progress");
  const out = document.getElementById("upload-result");

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const file = document.getElementById("upload-file").files[0];
    if (!file) return;
    const body = new FormData();
    body.append("file", file);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/api/v1/projects/${form.dataset.project}/tasks`);
    xhr.setRequestHeader("X-CSRF-Token", csrf);
    xhr.setRequestHeader("Accept", "application/json");
    bar.hidden = false;
    bar.value = 0;
    clear(out).append(h("p", { class: "muted", text: strings.sending }));
    xhr.upload.addEventListener("progress", (e) => { if (e.lengthComputable) bar.value = (100 * e.loaded) / e.total; });
    xhr.addEventListener("load", () => {
      bar.value = 100;
      let data = null;
      try { data = JSON.parse(xhr.responseText); } catch { data = null; }
      clear(out);
      if (xhr.status === 201 && data) {
        out.append(h("p", { class: "ok", id: "upload-ok", text: fill(strings.created, data) }));
        return;
      }
      // The API's error in the reader's words; a row's own message (the parser's, in English)
      // follows as a technical detail, marked as English and isolated from the sentence.
      out.append(h("p", { class: "error", id: "upload-error" }, strings.rejected, " ",
        describeError(strings.errors, data?.error ?? { code: HTTP_CODES[xhr.status] ?? "error" })));
      const rows = data?.error?.details?.rows;
      if (Array.isArray(rows) && rows.length) {
        out.append(h("table", { id: "upload-rows" },
          h("thead", {}, h("tr", {}, h("th", { text: strings.row }), h("th", { text: strings.message }))),
          h("tbody", {}, rows.map((r) => h("tr", {}, h("td", { class: "num", text: String(r.row) }),
            h("td", {}, strings.errors["err.row"], " ",
              h("code", { class: "detail", lang: "en", dir: "ltr", text: String(r.message) })))))));
      }
    });
    xhr.addEventListener("error", () => { clear(out).append(h("p", { class: "error", text: strings.failed })); });
    xhr.send(body);
  });
}
