// A recording's player, shared by the audio widgets (not a task type of its own): play and
// pause, back 2 seconds, speed. Keyboard: Space, B, - and = outside text inputs; Ctrl+Space
// and Ctrl+B inside them (the transcription's text area keeps the focus while the sound plays).
import { h, kbd } from "../dom.js";
import { plainKey } from "./common.js";

export const SPEEDS = [0.5, 0.75, 1, 1.25, 1.5, 2];
export const BACK_SECONDS = 2;

// Only http(s) URLs of the page's origin or elsewhere (a signed media URL, or the customer's
// own); never javascript: or data: text.
export function safeMediaUrl(raw) {
  try {
    const url = new URL(String(raw), window.location.href);
    if (url.protocol === "http:" || url.protocol === "https:") return url.href;
  } catch { /* not a URL */ }
  return null;
}

// Seconds as m:ss.s (tenths), the way a timeline reads whatever the page's language.
export function clock(seconds) {
  const s = Math.max(0, Number(seconds) || 0);
  const m = Math.floor(s / 60);
  return `${m}:${(s - m * 60).toFixed(1).padStart(4, "0")}`;
}

export function player(ctx, raw) {
  const { t } = ctx;
  const src = safeMediaUrl(raw);
  const audio = h("audio", { class: "player-audio", preload: "auto" });
  const playLabel = h("span", { text: t("ws.play") });
  const playBtn = h("button", { type: "button", class: "player-play", "aria-pressed": "false",
    onclick: () => toggle() }, kbd("␣"), playLabel);
  const backBtn = h("button", { type: "button", class: "player-back", onclick: () => back() }, kbd("B"), t("ws.back_2s"));
  const speedOut = h("output", { class: "player-speed-value", dir: "ltr", text: "1×" });
  const speedBox = h("span", { class: "player-speed" },
    h("button", { type: "button", class: "player-slower", "aria-label": t("ws.key_speed"), onclick: () => speed(-1) }, kbd("−")),
    h("span", { class: "muted small", text: t("ws.speed") }), " ", speedOut,
    h("button", { type: "button", class: "player-faster", "aria-label": t("ws.key_speed"), onclick: () => speed(1) }, kbd("=")));
  const time = h("output", { class: "player-time", dir: "ltr", text: "0:00.0" });
  const status = h("p", { class: "muted small player-status", hidden: true });
  const el = h("div", { class: "player", role: "group", "aria-label": t("ws.audio") },
    audio, h("div", { class: "player-bar" }, playBtn, backBtn, speedBox, time), status);
  const listeners = [];

  const showTime = () => {
    const total = Number.isFinite(audio.duration) ? audio.duration : Number(ctx.data.duration) || 0;
    time.textContent = `${clock(audio.currentTime)} / ${clock(total)}`;
    for (const fn of listeners) fn(audio.currentTime);
  };
  const showPlaying = () => {
    playBtn.setAttribute("aria-pressed", String(!audio.paused));
    playLabel.textContent = audio.paused ? t("ws.play") : t("ws.pause");
    el.dataset.playing = String(!audio.paused);
  };
  for (const type of ["timeupdate", "seeked", "loadedmetadata", "durationchange"]) audio.addEventListener(type, showTime);
  for (const type of ["play", "pause", "ended"]) audio.addEventListener(type, showPlaying);
  audio.addEventListener("error", () => { status.hidden = false; status.textContent = t("ws.audio_failed"); });
  if (src) audio.src = src;
  else { status.hidden = false; status.textContent = t("ws.audio_failed"); }

  function toggle() {
    if (audio.paused) audio.play().catch(() => { /* refused or interrupted: the button stays on Play */ });
    else audio.pause();
  }
  function back() { seek(audio.currentTime - BACK_SECONDS); }
  function seek(seconds) {
    const total = Number.isFinite(audio.duration) ? audio.duration : Infinity;
    audio.currentTime = Math.max(0, Math.min(total, seconds));
    showTime();
  }
  function speed(step) {
    const at = SPEEDS.indexOf(audio.playbackRate);
    const next = SPEEDS[Math.max(0, Math.min(SPEEDS.length - 1, (at < 0 ? SPEEDS.indexOf(1) : at) + step))];
    audio.playbackRate = next;
    speedOut.textContent = `${next}×`;
    el.dataset.speed = String(next);
  }
  el.dataset.speed = "1";

  return {
    el, audio, toggle, back, seek, speed,
    onTime(fn) { listeners.push(fn); },
    // Outside text inputs.
    key(ev) {
      if (!plainKey(ev)) return false;
      if (ev.code === "Space" && !ev.shiftKey) { toggle(); return true; }
      if (ev.code === "KeyB" && !ev.shiftKey) { back(); return true; }
      if (ev.code === "Minus" || ev.code === "NumpadSubtract") { speed(-1); return true; }
      if (ev.code === "Equal" || ev.code === "NumpadAdd") { speed(1); return true; }
      return false;
    },
    // Inside a text input: with Ctrl, so that typing types.
    typingKey(ev) {
      if (!ev.ctrlKey || ev.altKey || ev.metaKey || ev.shiftKey) return false;
      if (ev.code === "Space") { toggle(); return true; }
      if (ev.code === "KeyB") { back(); return true; }
      return false;
    },
  };
}

export function playerHelp(t, typing = false) {
  const rows = [["Space", t("ws.key_play")], ["B", t("ws.key_back")], ["− =", t("ws.key_speed")]];
  if (typing) rows.push(["Ctrl+Space · Ctrl+B", t("ws.key_play_typing")]);
  return rows;
}

// Keys of the player handled inside a text input of a widget (before the page's own keys).
export function typingKeys(input, p) {
  input.addEventListener("keydown", (ev) => {
    if (p.typingKey(ev)) { ev.preventDefault(); ev.stopPropagation(); }
  });
}
