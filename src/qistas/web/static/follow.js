// Rows of background jobs followed through the API until they end (generation batches,
// pre-label jobs): each row still queued or running is read again every second and shown;
// a lost connection or a server error says so in `note` and tries again a little later.
import { api } from "./api.js";
import { describeError } from "./messages.js";

const POLL_MS = 1000;
const RETRY_MS = 5000;
export const RUNNING = new Set(["queued", "running"]);

// rows: the <tbody> of each job, with data-status; path(row): its API path; show(row, data):
// puts the answer on the page; onEnd(data): called once the job is no longer running.
export function followRows(rows, { path, show, note, strings, onEnd = () => {} }) {
  async function follow(row) {
    const { status, data } = await api("GET", path(row));
    if (status === 200) {
      note.textContent = "";
      show(row, data);
      if (RUNNING.has(data.status)) setTimeout(() => follow(row), POLL_MS);
      else onEnd(data);
      return;
    }
    if (status === 401) return;
    note.textContent = status === 0 ? strings.offline : describeError(strings.errors, data?.error);
    note.className = "small error";
    if (status === 0 || status >= 500) setTimeout(() => follow(row), RETRY_MS);
  }
  for (const row of rows) {
    if (RUNNING.has(row.dataset.status)) setTimeout(() => follow(row), POLL_MS);
  }
}
