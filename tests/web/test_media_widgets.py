"""The audio and document widgets in a real browser, keyboard only, in English and in the
Arabic UI: the recording and the page are imported as media (a WAV made with ``wave``, a PNG
made with Pillow) and reach the browser through the lease's signed URLs; the stored answer
is read back through the API."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.conftest import LiveServer
from tests.mediafixtures import page_png, wav
from tests.web.conftest import People
from tests.web.helpers import answers, wait_empty, wait_task
from tests.web.test_review import check_language, read_in, shot
from tests.web.test_workspace import open_workspace

pytestmark = pytest.mark.sqlite_only


def media_project(owner: httpx.Client, task: dict[str, Any], rows: list[dict[str, Any]],
                  files: dict[str, bytes]) -> tuple[int, list[int]]:
    """A project whose tasks bring their files (multipart: the rows and the files they name)."""
    created = owner.post("/projects", json={"name": f"{task['type']} project", "task": task})
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    body = "\n".join(json.dumps(r) for r in rows).encode()
    parts = [("file", ("tasks.jsonl", body, "application/x-ndjson"))]
    parts += [("media", (name, content, "application/octet-stream")) for name, content in files.items()]
    done = owner.post(f"/projects/{pid}/tasks", files=parts)
    assert done.status_code == 201, done.text
    return pid, [t["id"] for t in owner.get(f"/projects/{pid}/tasks").json()["items"]]


def audio_state(page: Page) -> dict[str, Any]:
    return page.eval_on_selector(".player-audio", "a => ({paused: a.paused, time: a.currentTime, rate: a.playbackRate,"
                                                  " ready: a.readyState, src: a.src})")


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_audio_transcription_player_keys_while_typing(lang: str, page: Page, people: People,
                                                      server: LiveServer) -> None:
    t = read_in(page, server, lang)
    pid, (first,) = media_project(people.owner, {"type": "audio_transcription"},
                                  [{"data": {"audio": "calls/c1.wav", "draft": "مرحبا"}}], {"calls/c1.wav": wav()})
    open_workspace(page, people, pid)
    wait_task(page, first)
    check_language(page, lang, "the audio transcription workspace", "#task")
    assert "calls" not in page.content()  # the customer's file name stays with the customer
    area = page.locator(".answer-text")
    expect(area).to_be_focused()
    assert area.get_attribute("dir") == "auto" and area.input_value() == "مرحبا"
    page.wait_for_function("document.querySelector('.player-audio').readyState >= 1")
    assert audio_state(page)["src"].startswith(server.url + "/api/v1/media/")
    expect(page.locator(".player-time")).to_have_text("0:00.0 / 0:03.0")

    page.keyboard.press("Control+Space")  # play, without leaving the text
    expect(page.locator(".player")).to_have_attribute("data-playing", "true")
    expect(page.locator(".player-play span")).to_have_text(t("ws.pause"))
    page.keyboard.press("Control+Space")
    expect(page.locator(".player")).to_have_attribute("data-playing", "false")
    assert area.input_value() == "مرحبا"  # the keys typed nothing
    page.eval_on_selector(".player-audio", "a => { a.currentTime = 2.5; }")
    page.keyboard.press("Control+b")  # back 2 seconds
    assert audio_state(page)["time"] == pytest.approx(0.5, abs=0.05)
    page.keyboard.press("Control+b")
    assert audio_state(page)["time"] == 0
    page.keyboard.press("End")
    page.keyboard.type(" بكم في الدوحة")
    page.keyboard.press("Escape")  # out of the text: the player's own keys
    page.keyboard.press("=")
    page.keyboard.press("=")
    assert audio_state(page)["rate"] == 1.5
    page.keyboard.press("-")
    expect(page.locator(".player")).to_have_attribute("data-speed", "1.25")
    page.keyboard.press(" ")
    expect(page.locator(".player")).to_have_attribute("data-playing", "true")
    page.keyboard.press(" ")
    expect(page.locator(".player")).to_have_attribute("data-playing", "false")
    shot(page, f"audio-transcription-{lang}")
    page.keyboard.press("Enter")
    wait_empty(page)
    assert answers(people.owner, first) == [{"text": "مرحبا بكم في الدوحة"}]


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_audio_classification_by_keys(lang: str, page: Page, people: People, server: LiveServer) -> None:
    read_in(page, server, lang)
    spec = {"type": "audio_classification", "labels": ["طائر", "engine", "silence"]}
    pid, (first,) = media_project(people.owner, spec, [{"data": {"audio": "a.wav"}}], {"a.wav": wav()})
    open_workspace(page, people, pid)
    wait_task(page, first)
    check_language(page, lang, "the audio classification workspace", "#actions")
    expect(page.locator(".content .fields")).to_have_count(0)  # the raw fields are not shown
    page.wait_for_function("document.querySelector('.player-audio').readyState >= 1")
    page.keyboard.press("Space")
    expect(page.locator(".player")).to_have_attribute("data-playing", "true")
    page.keyboard.press("Space")
    page.keyboard.press("1")
    expect(page.locator(".label-btn[data-index='0']")).to_have_attribute("aria-pressed", "true")
    shot(page, f"audio-classification-{lang}")
    page.keyboard.press("Enter")
    wait_empty(page)
    assert answers(people.owner, first) == [{"label": "طائر"}]


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_audio_segments_marked_on_the_waveform_by_keys(lang: str, page: Page, people: People,
                                                       server: LiveServer) -> None:
    t = read_in(page, server, lang)
    spec = {"type": "audio_segments", "labels": ["tone", "silence"]}
    pid, (first,) = media_project(people.owner, spec, [{"data": {"audio": "s.wav"}}], {"s.wav": wav()})
    open_workspace(page, people, pid)
    wait_task(page, first)
    check_language(page, lang, "the audio segments workspace", "#actions")
    stage = page.locator(".wave-stage")
    expect(stage).to_have_attribute("data-ready", "true")  # decoded in the browser and drawn
    expect(stage).to_be_focused()
    assert stage.get_attribute("dir") == "ltr"  # time runs left to right in Arabic too
    # The waveform has ink where the tones are and none in the silent second.
    ink = page.eval_on_selector(".wave-canvas", """c => {
        const g = c.getContext('2d'), w = c.width, h = c.height;
        const column = (x) => { const d = g.getImageData(Math.floor(x * w), 0, 1, h).data; let n = 0;
          for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n / h; };
        return [column(0.15), column(0.5), column(0.85)]; }""")
    assert ink[0] > 0.5 and ink[2] > 0.5 and ink[1] < 0.05, ink

    # I at 0.5 s, O at 1.5 s: a "tone" segment (the first label is active).
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    page.keyboard.press("i")
    expect(page.locator(".seg-mark")).to_be_visible()
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("o")
    # 2: "silence"; O alone at 2.0 s ends a segment where the last one ended.
    page.keyboard.press("2")
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    page.keyboard.press("o")
    expect(page.locator(".tseg")).to_have_count(2)
    expect(page.locator(".seg-count")).to_have_text(t("ws.segments_count", n=2))
    # A third, then deleted; undo brings it back, and a second delete removes it for good.
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("o")
    expect(page.locator(".tseg")).to_have_count(3)
    page.keyboard.press("]")  # the first segment; the playhead goes to its start
    page.keyboard.press("[")  # the last
    expect(page.locator(".tseg.selected")).to_have_count(1)
    page.keyboard.press("Delete")
    expect(page.locator(".tseg")).to_have_count(2)
    # Select the first and move its start to 0.4 s.
    page.keyboard.press("]")
    assert page.eval_on_selector(".player-audio", "a => a.currentTime") == pytest.approx(0.5)
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("i")
    page.keyboard.press("Escape")
    shot(page, f"audio-segments-{lang}")
    page.keyboard.press("Enter")
    wait_empty(page)
    assert answers(people.owner, first) == [{"segments": [
        {"start": 0.4, "end": 1.5, "label": "tone"}, {"start": 1.5, "end": 2.0, "label": "silence"}]}]


def test_audio_segments_drawn_by_pointer(page: Page, people: People) -> None:
    spec = {"type": "audio_segments", "labels": ["tone"]}
    pid, (first,) = media_project(people.owner, spec, [{"data": {"audio": "s.wav"}}], {"s.wav": wav()})
    open_workspace(page, people, pid)
    wait_task(page, first)
    expect(page.locator(".wave-stage")).to_have_attribute("data-ready", "true")
    box = page.locator(".wave-stage").bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 2 / 3, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.8, y, steps=4)
    page.mouse.move(box["x"] + box["width"] * 0.99, y, steps=4)
    page.mouse.up()
    page.mouse.click(box["x"] + box["width"] / 6, y)  # a tap moves the playhead, makes nothing
    expect(page.locator(".tseg")).to_have_count(1)
    assert page.eval_on_selector(".player-audio", "a => a.currentTime") == pytest.approx(0.5, abs=0.02)
    page.click("#btn-submit")
    wait_empty(page)
    [answer] = answers(people.owner, first)
    [segment] = answer["segments"]
    assert segment["start"] == pytest.approx(2.0, abs=0.02) and segment["end"] == pytest.approx(2.97, abs=0.02)


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_document_regions_and_their_texts_by_keys(lang: str, page: Page, people: People,
                                                  server: LiveServer) -> None:
    t = read_in(page, server, lang)
    spec = {"type": "document_transcription", "labels": ["line", "stamp"]}
    pid, (first,) = media_project(people.owner, spec, [{"data": {"image": "scans/p1.png"}}],
                                  {"scans/p1.png": page_png()})
    open_workspace(page, people, pid)
    wait_task(page, first)
    check_language(page, lang, "the document workspace", "#actions")
    expect(page.locator(".box-stage")).to_have_attribute("data-ready", "true")
    # N: a line-shaped region in the middle of the page (200×25 at 100, 137.5); Shift+arrows move it by 10.
    page.keyboard.press("n")
    for key in ("Shift+ArrowUp",) * 9 + ("Shift+ArrowLeft",) * 6:
        page.keyboard.press(key)
    for _ in range(12):
        page.keyboard.press("Control+Shift+ArrowRight")  # 120 wider
    page.keyboard.press("e")
    area = page.locator(".region-text").nth(0)
    expect(area).to_be_focused()
    assert area.get_attribute("aria-label") == t("ws.region_text", n=1)
    page.keyboard.type("بسم الله الرحمن الرحيم")
    page.keyboard.press("Escape")
    page.keyboard.press("n")
    page.keyboard.press("2")  # a stamp
    page.keyboard.press("e")
    page.keyboard.type("PAID 2024")
    page.keyboard.press("Escape")
    directions = page.locator(".region-text").evaluate_all("els => els.map(e => getComputedStyle(e).direction)")
    assert directions == ["rtl", "ltr"]  # each text's own direction, whatever the page's
    expect(page.locator(".box[data-box]")).to_have_count(2)
    shot(page, f"document-{lang}")
    # Drawn by pointer near the bottom of the page: its text area takes the keys at once; Esc, then
    # Del removes it again.
    box = page.locator(".box-stage").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 20, box["y"] + box["height"] * 0.85)
    page.mouse.down()
    page.mouse.move(box["x"] + 120, box["y"] + box["height"] * 0.95, steps=4)
    page.mouse.up()
    expect(page.locator(".box[data-box]")).to_have_count(3)
    expect(page.locator(".region-text").nth(2)).to_be_focused()
    page.keyboard.type("x")
    page.keyboard.press("Escape")
    page.keyboard.press("Delete")
    expect(page.locator(".box[data-box]")).to_have_count(2)
    page.keyboard.press("Enter")
    wait_empty(page)
    assert answers(people.owner, first) == [{"regions": [
        {"x": 40.0, "y": 47.5, "w": 320.0, "h": 25.0, "label": "line", "text": "بسم الله الرحمن الرحيم"},
        {"x": 100.0, "y": 137.5, "w": 200.0, "h": 25.0, "label": "stamp", "text": "PAID 2024"},
    ]}]
