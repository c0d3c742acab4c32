// Labelled time segments [start, end) on a recording's waveform. The waveform is computed here:
// the recording is fetched from its (signed) URL, decoded with the Web Audio API and drawn on a
// canvas, time left to right whatever the page's direction.
// Mouse or touch: drag on the waveform to mark a segment, tap to move the playhead, drag a
// segment's edge to move it. Keyboard: Space plays, ← → move the playhead, I and O mark a
// segment's start and end at the playhead (O alone ends one where the previous one ended),
// 1–9 pick the label, [ ] select, Del deletes.
import { bidiText, h } from "../dom.js";
import { compare, digitOf, labelButtons, labelChip, nothing, plainKey } from "./common.js";
import { clock, player, playerHelp, safeMediaUrl } from "./player.js";

const MIN_LENGTH = 0.05; // seconds: a shorter drag is a tap
const STEP = 0.1;
const BUCKETS = 2000;
const r3 = (v) => Math.round(v * 1000) / 1000;

function tiou(a, b) {
  if (a.label !== b.label) return 0;
  const inter = Math.max(0, Math.min(a.end, b.end) - Math.max(a.start, b.start));
  const union = Math.max(a.end, b.end) - Math.min(a.start, b.start);
  return union > 0 ? inter / union : 0;
}

// Min and max of the samples (all channels) in BUCKETS equal slices of the recording.
async function peaksOf(src) {
  const response = await fetch(src, { credentials: "same-origin" });
  if (!response.ok) throw new Error(String(response.status));
  const decoded = await new OfflineAudioContext(1, 1, 44100).decodeAudioData(await response.arrayBuffer());
  const n = Math.min(BUCKETS, decoded.length);
  const lo = new Float32Array(n).fill(1), hi = new Float32Array(n).fill(-1);
  for (let c = 0; c < decoded.numberOfChannels; c++) {
    const samples = decoded.getChannelData(c);
    for (let b = 0; b < n; b++) {
      const from = Math.floor((b * samples.length) / n), to = Math.floor(((b + 1) * samples.length) / n);
      for (let i = from; i < to; i++) {
        const v = samples[i];
        if (v < lo[b]) lo[b] = v;
        if (v > hi[b]) hi[b] = v;
      }
    }
  }
  return { lo, hi, duration: decoded.duration };
}

function draw(canvas, peaks) {
  const ratio = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(canvas.clientWidth * ratio)), hh = Math.max(1, Math.round(canvas.clientHeight * ratio));
  canvas.width = w; canvas.height = hh;
  const g = canvas.getContext("2d");
  g.clearRect(0, 0, w, hh);
  g.fillStyle = getComputedStyle(canvas).color;
  const n = peaks.lo.length;
  for (let x = 0; x < w; x++) {
    const from = Math.floor((x * n) / w), to = Math.max(from + 1, Math.floor(((x + 1) * n) / w));
    let lo = 1, hi = -1;
    for (let b = from; b < to && b < n; b++) { lo = Math.min(lo, peaks.lo[b]); hi = Math.max(hi, peaks.hi[b]); }
    if (hi < lo) continue;
    const y1 = ((1 - hi) / 2) * hh, y2 = ((1 - lo) / 2) * hh;
    g.fillRect(x, y1, 1, Math.max(1, y2 - y1));
  }
}

// A segment on a timeline of `duration` seconds, placed in percent (it follows any resize).
function segEl(s, duration, labels, cls = "", ...children) {
  const el = h("div", { class: "tseg lab-" + (Math.max(0, labels.indexOf(s.label)) % 10) + (cls ? " " + cls : "") },
    h("span", { class: "tseg-tag" }, bidiText(s.label)), ...children);
  el.style.left = `${(s.start / duration) * 100}%`;
  el.style.width = `${((s.end - s.start) / duration) * 100}%`;
  return el;
}

const times = (s) => h("span", { class: "muted offsets", dir: "ltr", text: `${clock(s.start)}–${clock(s.end)}` });

export default {
  init() { return { segments: [] }; },

  mount(ctx) {
    const { spec, data, t } = ctx;
    let selected = -1;
    let active = 0;
    let mark = null; // an open segment's start, in seconds
    let drag = null;
    let peaks = null;
    const given = Number(data.duration);
    let duration = given > 0 ? given : 0;
    const src = safeMediaUrl(data[spec.audio_field]);
    const p = player(ctx, data[spec.audio_field]);
    const canvas = h("canvas", { class: "wave-canvas", "aria-hidden": "true" });
    const layer = h("div", { class: "seg-layer" });
    const head = h("div", { class: "playhead" });
    const markEl = h("div", { class: "seg-mark", hidden: true });
    const stage = h("div", { class: "wave-stage", dir: "ltr", tabindex: "0", role: "application",
      "aria-label": t("ws.waveform") }, canvas, layer, markEl, head);
    const waveMsg = h("span", { class: "wave-msg", text: t("ws.waveform_loading") });
    const countMsg = h("span", { class: "seg-count" });
    const status = h("p", { class: "muted small seg-status" }, waveMsg, " ", countMsg);
    const list = h("ol", { class: "seg-list" });
    const { bar, buttons } = labelButtons(spec.labels, (i) => pickLabel(i));
    ctx.root.append(bar, p.el, h("div", { class: "content" }, stage), status, list);

    const now = () => p.audio.currentTime;
    const place = (el, seconds) => { el.style.left = `${duration ? (seconds / duration) * 100 : 0}%`; };
    const clampT = (v) => Math.max(0, Math.min(duration, v));
    const toTime = (ev) => {
      const r = stage.getBoundingClientRect();
      return clampT(((ev.clientX - r.left) / r.width) * duration);
    };
    const fresh = (a, b) => ({ start: r3(Math.min(a, b)), end: Math.min(r3(Math.max(a, b)), duration), label: spec.labels[active] });
    function pickLabel(i) {
      active = i;
      if (selected >= 0) ctx.update((s) => { s.segments[selected].label = spec.labels[i]; });
      else view.render(ctx.get());
    }
    function add(a, b) {
      const seg = fresh(a, b);
      if (seg.end - seg.start < MIN_LENGTH) return;
      ctx.update((s) => { s.segments.push(seg); selected = s.segments.length - 1; });
    }
    function select(i) {
      selected = i;
      if (i >= 0) p.seek(ctx.get().segments[i].start);
      view.render(ctx.get());
    }
    function known() { return duration > 0; }

    p.onTime((seconds) => place(head, seconds));
    p.audio.addEventListener("loadedmetadata", () => {
      if (!known() && Number.isFinite(p.audio.duration)) { duration = p.audio.duration; view.render(ctx.get()); }
    });
    if (src) {
      peaksOf(src).then((found) => {
        peaks = found;
        if (!known()) duration = found.duration;
        waveMsg.hidden = true;
        stage.dataset.ready = "true";
        if (stage.isConnected) { draw(canvas, peaks); view.render(ctx.get()); }
      }).catch(() => { waveMsg.textContent = t("ws.waveform_failed"); });
    } else waveMsg.textContent = t("ws.waveform_failed");
    new ResizeObserver(() => { if (peaks && stage.isConnected) draw(canvas, peaks); }).observe(canvas);

    stage.addEventListener("pointerdown", (ev) => {
      if (!known() || ev.button !== 0) return;
      ev.preventDefault();
      stage.focus();
      const at = toTime(ev);
      const hit = ev.target.closest("[data-seg]");
      if (hit) {
        selected = Number(hit.dataset.seg);
        const edge = ev.target.dataset.edge;
        drag = { mode: edge || "select", before: ctx.snapshot(), orig: { ...ctx.get().segments[selected] } };
        view.render(ctx.get());
      } else {
        drag = { mode: "new", from: at, x: ev.clientX, before: ctx.snapshot() };
      }
      stage.setPointerCapture(ev.pointerId);
    });
    stage.addEventListener("pointermove", (ev) => {
      if (!drag || drag.mode === "select") return;
      const at = toTime(ev);
      const next = ctx.snapshot();
      if (drag.mode === "new") {
        if (Math.abs(ev.clientX - drag.x) < 4) return;
        if (drag.index === undefined) { next.segments.push(fresh(drag.from, at)); drag.index = next.segments.length - 1; selected = drag.index; }
        else next.segments[drag.index] = fresh(drag.from, at);
      } else {
        const s = { ...drag.orig };
        if (drag.mode === "start") s.start = r3(Math.min(at, s.end - MIN_LENGTH));
        else s.end = Math.min(r3(Math.max(at, s.start + MIN_LENGTH)), duration);
        next.segments[selected] = s;
      }
      ctx.preview(next);
    });
    const finish = (ev) => {
      if (!drag) return;
      const d = drag;
      drag = null;
      if (d.mode === "select") { view.render(ctx.get()); return; }
      if (d.mode === "new" && d.index === undefined) { p.seek(toTime(ev)); return; } // a tap: the playhead goes there
      const s = ctx.get().segments[selected];
      if (!s || s.end - s.start < MIN_LENGTH) { selected = -1; ctx.preview(d.before); return; }
      ctx.commit(d.before, ctx.snapshot());
    };
    stage.addEventListener("pointerup", finish);
    stage.addEventListener("pointercancel", finish);

    const view = {
      render(state) {
        buttons.forEach((b, i) => b.setAttribute("aria-pressed", String(i === active)));
        while (layer.firstChild) layer.removeChild(layer.firstChild);
        while (list.firstChild) list.removeChild(list.firstChild);
        if (selected >= state.segments.length) selected = state.segments.length - 1;
        if (known()) {
          state.segments.forEach((s, i) => {
            const el = segEl(s, duration, spec.labels, i === selected ? "selected" : "",
              h("span", { class: "edge start", dataset: { edge: "start" } }), h("span", { class: "edge end", dataset: { edge: "end" } }));
            el.dataset.seg = i;
            layer.append(el);
          });
          place(head, now());
          markEl.hidden = mark === null;
          if (mark !== null) place(markEl, mark);
        }
        state.segments.forEach((s, i) => {
          list.append(h("li", { class: "seg-item" + (i === selected ? " selected" : ""), dataset: { index: i },
            onclick: () => select(i) }, labelChip(s.label, spec.labels, "same", t), " ", times(s)));
        });
        countMsg.textContent = mark !== null ? t("ws.segment_open") : t("ws.segments_count", state.segments.length);
      },
      key(ev, state) {
        if (p.key(ev)) return true;
        if (!known()) return false;
        const d = digitOf(ev);
        if (d !== null && plainKey(ev) && d >= 1 && d <= Math.min(9, spec.labels.length)) { pickLabel(d - 1); return true; }
        if ((ev.key === "ArrowLeft" || ev.key === "ArrowRight") && plainKey(ev)) {
          p.seek(now() + (ev.key === "ArrowRight" ? 1 : -1) * (ev.shiftKey ? 1 : STEP));
          return true;
        }
        if (ev.code === "KeyI" && plainKey(ev) && !ev.shiftKey) {
          const at = now();
          if (selected >= 0) {
            if (at <= state.segments[selected].end - MIN_LENGTH) ctx.update((s) => { s.segments[selected].start = r3(at); });
          } else { mark = at; view.render(state); }
          return true;
        }
        if (ev.code === "KeyO" && plainKey(ev) && !ev.shiftKey) {
          const at = now();
          if (selected >= 0) {
            if (at >= state.segments[selected].start + MIN_LENGTH) ctx.update((s) => { s.segments[selected].end = Math.min(r3(at), duration); });
          } else {
            // Without a mark, the segment starts where the last one before the playhead ended (or at 0).
            const from = mark ?? Math.max(0, ...state.segments.filter((s) => s.end <= at + 1e-9).map((s) => s.end));
            mark = null;
            add(from, at);
            selected = -1; // the next O ends the next segment
            view.render(ctx.get());
          }
          return true;
        }
        if ((ev.key === "]" || ev.key === "[") && state.segments.length) {
          const n = state.segments.length;
          select(((selected < 0 ? (ev.key === "]" ? -1 : 0) : selected) + (ev.key === "]" ? 1 : n - 1)) % n);
          return true;
        }
        if ((ev.key === "Delete" || ev.key === "Backspace") && selected >= 0) {
          const i = selected; selected = -1;
          ctx.update((s) => { s.segments.splice(i, 1); });
          return true;
        }
        if (ev.key === "Escape" && (selected >= 0 || mark !== null)) { selected = -1; mark = null; view.render(state); return true; }
        return false;
      },
    };
    setTimeout(() => stage.focus(), 0);
    return view;
  },

  state(spec, data, answer) { return { segments: (answer?.segments ?? []).map((s) => ({ start: s.start, end: s.end, label: s.label })) }; },

  // The answer's segments on a timeline and as a list; one that matches no aggregated segment of
  // its label (temporal IoU at the project's gold_iou) is marked, the aggregated ones it lacks struck.
  show(spec, data, answer, reference, t) {
    const segments = answer?.segments ?? [];
    const least = spec.gold_iou ?? 0.5;
    const { marks, missing } = compare(segments, reference?.segments, (a, b) => tiou(a, b) >= least);
    if (!segments.length && !missing.length) return nothing(t);
    const duration = Number(data.duration) || Math.max(1, ...segments.map((s) => s.end), ...missing.map((s) => s.end));
    const line = h("div", { class: "seg-timeline", dir: "ltr" },
      segments.map((s, i) => segEl(s, duration, spec.labels, marks[i] === "same" ? "" : "diff")),
      missing.map((s) => segEl(s, duration, spec.labels, "missing")));
    return h("div", {}, line, h("ul", { class: "span-list" },
      segments.map((s, i) => labelChip(s.label, spec.labels, marks[i], t, " ", times(s))),
      missing.map((s) => labelChip(s.label, spec.labels, "missing", t, " ", times(s)))));
  },

  answer(spec, state) {
    const segments = state.segments.map((s) => ({ start: r3(s.start), end: r3(s.end), label: s.label }))
      .sort((a, b) => a.start - b.start || a.end - b.end);
    return { segments };
  },

  help(spec, t) {
    return [...playerHelp(t), ["← →", t("ws.key_seek")], ["I", t("ws.key_mark_in")], ["O", t("ws.key_mark_out")],
      ["1–9", t("ws.key_segment_label")], ["[ ]", t("ws.key_segment_cycle")], ["Del", t("ws.key_segment_delete")],
      ["Esc", t("ws.key_deselect")]];
  },
};
