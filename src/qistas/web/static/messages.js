// Server errors in words for people: the API's error (code, details) phrased from the catalogue
// strings the page hands over (its "err." and "field." entries), as web/messages.py does for pages.
// Values put into a sentence sit in Unicode isolates (FSI … PDI): they keep their own direction.

const FSI = "\u2068";
const PDI = "\u2069";
const INDEX = /\.\d+(?=\.|$)/g;

export const isolate = (value) => FSI + String(value) + PDI;

export function fill(template, values) {
  return template.replace(/\{(\w+)\}/g, (_, k) => (values[k] === undefined ? "" : String(values[k])));
}

function fieldName(strings, field) {
  const word = strings["field." + field] ?? strings["field." + field.replace(INDEX, "")];
  return isolate(word ?? field);
}

// `error` is the API's {"code", "message", "details"} (or null when the answer had none).
export function describeError(strings, error) {
  const code = error?.code ?? "error";
  const details = error?.details && typeof error.details === "object" ? error.details : {};
  const values = {};
  for (const [k, v] of Object.entries(details)) {
    if (typeof v === "string" || typeof v === "number") values[k] = isolate(v);
  }
  const field = typeof details.field === "string" && details.field ? details.field.replace(INDEX, "") : null;
  const keys = [];
  if (field) {
    values.field = fieldName(strings, details.field);
    keys.push(`err.${code}.${field}`, `err.${code}.field`);
  }
  if (Array.isArray(details.rows)) keys.push(`err.${code}.rows`);
  keys.push(`err.${code}`, "err.error");
  const key = keys.find((k) => strings[k] !== undefined);
  return fill(strings[key], values);
}
