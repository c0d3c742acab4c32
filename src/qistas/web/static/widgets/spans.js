// Spans (NER). The text is drawn as segments cut at every span and selection boundary; each
// segment knows its code point range (data-s, data-e), so a mouse selection maps back to code
// points of the original text whatever the script, emoji or combining marks.
import { bidiText, h } from "../dom.js";
import { CodePoints, countCodePoints } from "../text.js";
import { compare, digitOf, labelButtons, labelChip, plainKey } from "./common.js";

// The text as segments cut at every span and mark boundary, each span's segments highlighted
// in its label's colour; a mark ({start, end, cls}) adds its class to the segments it covers.
export function paint(el, cp, spans, labels, marks = []) {
  const cuts = new Set([0, cp.length]);
  const ranges = [...spans, ...marks.filter(Boolean)];
  for (const r of ranges) { cuts.add(r.start); cuts.add(r.end); }
  const points = [...cuts].sort((x, y) => x - y);
  while (el.firstChild) el.removeChild(el.firstChild);
  for (let i = 0; i + 1 < points.length; i++) {
    const [s, e] = [points[i], points[i + 1]];
    const covering = spans.filter((x) => x.start <= s && x.end >= e);
    const seg = h("span", { class: "seg", dataset: { s, e }, text: cp.slice(s, e) });
    if (covering.length) {
      const label = covering[covering.length - 1].label;
      seg.classList.add("hl", "lab-" + (Math.max(0, labels.indexOf(label)) % 10));
      seg.title = covering.map((x) => x.label).join(", ");
      if (covering.length > 1) seg.classList.add("nested");
    }
    for (const m of marks) if (m && s >= m.start && e <= m.end) seg.classList.add(m.cls);
    el.append(seg);
  }
}

const sameSpan = (a, b) => a.start === b.start && a.end === b.end && a.label === b.label;

export default {
  init() { return { spans: [] }; },

  mount(ctx) {
    const { spec, data, t } = ctx;
    const cp = new CodePoints(String(data[spec.text_field]));
    const g = cp.graphemes; // boundaries, in code points
    let anchor = 0;  // keyboard selection, as indexes into g
    let focus = 0;
    let keyboard = false;

    const textEl = h("div", { class: "task-text spans-text", dir: "auto", tabindex: "0", "aria-label": t("ws.text") });
    const chips = h("ul", { class: "span-list", "aria-label": t("ws.spans") });
    const selection = () => {
      if (anchor === focus) return null;
      return { start: g[Math.min(anchor, focus)], end: g[Math.max(anchor, focus)] };
    };
    const addSpan = (i) => {
      const sel = selection();
      if (!sel) { ctx.notice(t("ws.select_first")); return; }
      const label = spec.labels[i];
      ctx.update((s) => {
        if (!s.spans.some((x) => x.start === sel.start && x.end === sel.end && x.label === label)) {
          s.spans.push({ start: sel.start, end: sel.end, label });
        }
      });
      anchor = focus;
    };
    const remove = (index) => ctx.update((s) => { s.spans.splice(index, 1); });
    const { bar } = labelButtons(spec.labels, addSpan);
    ctx.root.append(h("div", { class: "content" }, textEl), bar, h("h3", { class: "small", text: t("ws.spans") }), chips);

    // A DOM point (node, offset) inside the text, as a code point offset; null outside it.
    const pointToCp = (node, offset) => {
      if (!textEl.contains(node)) return null;
      if (node.nodeType === Node.TEXT_NODE) {
        const seg = node.parentElement.closest("[data-s]");
        if (!seg) return null;
        return Number(seg.dataset.s) + countCodePoints(node.data.slice(0, offset));
      }
      const kids = node.childNodes;
      if (offset < kids.length) {
        const seg = kids[offset].nodeType === Node.ELEMENT_NODE ? kids[offset] : kids[offset].parentElement;
        const s = seg.closest("[data-s]") || seg.querySelector("[data-s]");
        return s ? Number(s.dataset.s) : null;
      }
      const last = node.closest("[data-e]") || [...node.querySelectorAll("[data-e]")].pop();
      return last ? Number(last.dataset.e) : cp.length;
    };
    const gIndex = (cpOffset) => g.indexOf(cpOffset);

    // On the document: a drag may end outside the text. Gone with the task's text.
    const onMouseUp = () => {
      if (!textEl.isConnected) { document.removeEventListener("mouseup", onMouseUp); return; }
      const sel = window.getSelection();
      if (!sel || sel.rangeCount === 0) return;
      const range = sel.getRangeAt(0);
      if (sel.isCollapsed) {
        const at = pointToCp(range.startContainer, range.startOffset);
        if (at === null) return;
        anchor = focus = gIndex(cp.snapDown(at)); keyboard = true;
        view.render(ctx.get());
        return;
      }
      let a = pointToCp(range.startContainer, range.startOffset);
      let b = pointToCp(range.endContainer, range.endOffset);
      if (a === null && b === null) return;
      if (a === null) a = 0;
      if (b === null) b = cp.length;
      // Trim white space at the edges (a double click on a word takes the space after it).
      a = cp.snapDown(Math.min(a, b)); b = cp.snapUp(Math.max(a, b));
      while (a < b && /\s/u.test(cp.points[a])) a = cp.snapUp(a + 1);
      while (b > a && /\s/u.test(cp.points[b - 1])) b = cp.snapDown(b - 1);
      sel.removeAllRanges();
      if (a >= b) return;
      anchor = gIndex(a); focus = gIndex(b); keyboard = false;
      view.render(ctx.get());
    };
    document.addEventListener("mouseup", onMouseUp);

    const view = {
      render(state) {
        const sel = selection();
        const caret = keyboard && !sel && focus < g.length - 1 ? { start: g[focus], end: g[focus + 1] } : null;
        paint(textEl, cp, state.spans, spec.labels, [sel && { ...sel, cls: "sel" }, caret && { ...caret, cls: "caret" }]);
        while (chips.firstChild) chips.removeChild(chips.firstChild);
        state.spans.forEach((x, i) => {
          chips.append(h("li", { class: "chip lab-" + (spec.labels.indexOf(x.label) % 10), dataset: { start: x.start, end: x.end, label: x.label } },
            bidiText(x.label, "bdi", "chip-label"), " ", bidiText(cp.slice(x.start, x.end), "bdi", "chip-text"),
            h("span", { class: "muted offsets", dir: "ltr", text: ` ${x.start}–${x.end}` }),
            h("button", { type: "button", class: "ghost remove", "aria-label": t("ws.remove"), onclick: () => remove(i) }, "×")));
        });
      },
      key(ev, state) {
        const d = digitOf(ev);
        if (d !== null && plainKey(ev) && d >= 1 && d <= Math.min(9, spec.labels.length)) { addSpan(d - 1); return true; }
        if (ev.key === "ArrowLeft" || ev.key === "ArrowRight") {
          if (ev.altKey || ev.metaKey) return false;
          // Arrows move visually: in right-to-left text, the left arrow goes forward.
          const rtl = getComputedStyle(textEl).direction === "rtl";
          const forward = (ev.key === "ArrowRight") !== rtl;
          const last = g.length - 1;
          let to = focus;
          if (ev.ctrlKey) {
            const words = cp.words;
            const here = g[focus];
            const target = forward ? words.find((w) => w > here) ?? cp.length : [...words].reverse().find((w) => w < here) ?? 0;
            to = forward ? g.findIndex((x) => x >= target) : g.length - 1 - [...g].reverse().findIndex((x) => x <= target);
          } else to = focus + (forward ? 1 : -1);
          focus = Math.max(0, Math.min(last, to));
          if (!ev.shiftKey) anchor = focus;
          keyboard = true;
          view.render(state);
          return true;
        }
        if (ev.key === "Home" || ev.key === "End") {
          focus = ev.key === "Home" ? 0 : g.length - 1;
          if (!ev.shiftKey) anchor = focus;
          keyboard = true; view.render(state); return true;
        }
        if (ev.key === "Escape" && selection()) { anchor = focus; view.render(state); return true; }
        if ((ev.key === "Delete" || ev.key === "Backspace") && state.spans.length) {
          const at = selection() ?? { start: g[focus], end: g[Math.min(focus + 1, g.length - 1)] };
          let index = state.spans.findIndex((x) => x.start < at.end && x.end > at.start);
          if (index < 0) index = state.spans.length - 1;
          remove(index);
          return true;
        }
        return false;
      },
    };
    return view;
  },

  state(spec, data, answer) { return { spans: (answer?.spans ?? []).map((x) => ({ ...x })) }; },

  // The text with this answer's spans; spans the aggregated answer lacks are marked (dashed
  // underline in the text, "diff" chips), and the aggregated spans it lacks listed struck through.
  show(spec, data, answer, reference, t) {
    const cp = new CodePoints(String(data[spec.text_field]));
    const spans = answer?.spans ?? [];
    const { marks, missing } = compare(spans, reference?.spans, sameSpan);
    const textEl = h("div", { class: "task-text spans-text rv-spans", dir: "auto" });
    paint(textEl, cp, spans, spec.labels, spans.map((x, i) => marks[i] === "diff" && { ...x, cls: "diff" }));
    const chip = (x, mark) => labelChip(x.label, spec.labels, mark, t, " ", bidiText(cp.slice(x.start, x.end), "bdi", "chip-text"),
      h("span", { class: "muted offsets", dir: "ltr", text: ` ${x.start}–${x.end}` }));
    return h("div", {}, textEl, h("ul", { class: "span-list" }, spans.map((x, i) => chip(x, marks[i])),
      missing.map((x) => chip(x, "missing"))));
  },

  answer(spec, state) {
    return { spans: state.spans.map((x) => ({ start: x.start, end: x.end, label: x.label })) };
  },

  help(spec, t) {
    return [["← → / ⇧← ⇧→", t("ws.key_span_select")], ["Ctrl+⇧← →", t("ws.key_span_word")],
      ["1–9", t("ws.key_span_label")], ["Del", t("ws.key_span_remove")], ["Esc", t("ws.key_span_clear")]];
  },
};
