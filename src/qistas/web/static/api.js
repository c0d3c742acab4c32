// The JSON API, called from a page with the session cookie and the page's CSRF token.
const csrf = document.querySelector('meta[name="csrf-token"]').content;

// {status, data, date}: status 0 when the server could not be reached; a 401 (the session
// ended) goes to the sign-in page and back.
export async function api(method, path, body) {
  let response;
  try {
    response = await fetch("/api/v1" + path, {
      method, credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, "Content-Type": "application/json", Accept: "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    return { status: 0, data: null, date: null };
  }
  let data = null;
  if (response.status !== 204) { try { data = await response.json(); } catch { data = null; } }
  if (response.status === 401) window.location.assign("/login?next=" + encodeURIComponent(location.pathname));
  return { status: response.status, data, date: response.headers.get("Date") };
}

// When a lease ends on this browser's clock: the server's clock decides, so the time left is
// measured against its Date header.
export function deadlineOf(expiresAt, dateHeader, leaseSeconds) {
  const expires = Date.parse(expiresAt);
  const serverNow = dateHeader ? Date.parse(dateHeader) : NaN;
  const left = Number.isFinite(serverNow) ? expires - serverNow : leaseSeconds * 1000;
  return Date.now() + Math.max(0, left);
}
