"""The image widgets in a real browser, by keyboard alone and by pointer, in English and in the
Arabic UI (right to left): image classification with zoom and pan, polygons and keypoints; the
stored answer is read back through the API."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import LiveServer
from tests.web.conftest import People
from tests.web.helpers import IMAGE, answers, project_with_tasks, wait_empty, wait_task
from tests.web.test_review import check_language, read_in, shot
from tests.web.test_workspace import open_workspace

pytestmark = pytest.mark.sqlite_only

ROWS = [{"image": IMAGE, "width": 400, "height": 300}, {"image": IMAGE, "width": 400, "height": 300}]


def wait_image(page: Page) -> dict[str, float]:
    """The image's place on the screen once shown, and its scale (screen pixels per image pixel)."""
    page.wait_for_function("document.querySelector('.iv-image').naturalWidth > 0")
    box = page.locator(".iv-image").bounding_box()
    assert box is not None
    return {**box, "k": box["width"] / 400}


def close_to(got: list[list[float]], expected: list[list[float]], tolerance: float = 2.0) -> bool:
    return len(got) == len(expected) and all(
        abs(a - b) <= tolerance for p, q in zip(got, expected, strict=True) for a, b in zip(p, q, strict=True))


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_image_classification_zoom_and_pan_by_keyboard(lang: str, page: Page, people: People,
                                                       server: LiveServer) -> None:
    t = read_in(page, server, lang)
    spec = {"type": "classification", "labels": ["circle", "square"], "image_field": "image"}
    project_id, (first, _second) = project_with_tasks(people.owner, spec, ROWS)
    open_workspace(page, people, project_id)
    wait_task(page, first)
    wait_image(page)
    check_language(page, lang, "the image classification workspace", "#actions")
    assert page.get_attribute(".iv-tool >> nth=0", "aria-label") == t("ws.zoom_in")
    page.keyboard.press("+")
    page.keyboard.press("+")
    transform = page.eval_on_selector(".iv-inner", "el => el.style.transform")
    assert "scale(2.25)" in transform
    page.keyboard.press("ArrowRight")  # pans the zoomed image
    assert page.eval_on_selector(".iv-inner", "el => el.style.transform") != transform
    page.keyboard.press("2")
    assert page.get_attribute(".label-btn[data-index='1']", "aria-pressed") == "true"
    shot(page, f"image-classification-{lang}")
    page.keyboard.press("0")
    assert "scale(1)" in page.eval_on_selector(".iv-inner", "el => el.style.transform")
    page.keyboard.press("Enter")
    page.wait_for_selector(f'.widget:not([data-task="{first}"])')
    assert answers(people.owner, first) == [{"label": "square"}]


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_polygons_by_keyboard_and_by_pointer(lang: str, page: Page, people: People, server: LiveServer) -> None:
    t = read_in(page, server, lang)
    spec = {"type": "polygons", "labels": ["circle", "square"]}
    project_id, (first, second) = project_with_tasks(people.owner, spec, ROWS)
    open_workspace(page, people, project_id)
    wait_task(page, first)
    image = wait_image(page)
    check_language(page, lang, "the polygons workspace", "#actions")
    step = 40 / image["k"]  # Shift+arrow: 40 screen pixels
    # Keyboard only: the cursor starts in the middle of the image (200, 150).
    page.keyboard.press("2")
    page.keyboard.press("Space")
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("Space")
    page.keyboard.press("Shift+ArrowDown")
    page.keyboard.press("Space")
    expect(page.locator(".widget p[aria-live]")).to_contain_text(t("ws.polygon_drawing", n=3))
    page.keyboard.press("c")
    expect(page.locator("polygon.poly")).to_have_count(1)
    # A second polygon started, a point taken back, then dropped.
    page.keyboard.press("Escape")
    page.keyboard.press("Shift+ArrowLeft")
    page.keyboard.press("Space")
    page.keyboard.press("Shift+ArrowUp")
    page.keyboard.press("Space")
    page.keyboard.press("Backspace")
    expect(page.locator("polyline.poly")).to_have_count(1)
    page.keyboard.press("Escape")
    expect(page.locator("polyline.poly")).to_have_count(0)
    page.keyboard.press("+")  # zoomed in, the drawing keeps its image pixels
    shot(page, f"polygons-{lang}")
    page.keyboard.press("Enter")

    wait_task(page, second)
    image = wait_image(page)
    k = image["k"]
    for x, y in ((40, 30), (140, 30), (90, 110)):
        page.mouse.click(image["x"] + x * k, image["y"] + y * k)
    page.mouse.click(image["x"] + 40 * k, image["y"] + 30 * k)  # the first point closes it
    expect(page.locator("polygon.poly")).to_have_count(1)
    page.click("#btn-submit")
    wait_empty(page)

    [got] = answers(people.owner, first)
    [polygon] = got["polygons"]
    assert polygon["label"] == "square"
    assert close_to(polygon["points"], [[200, 150], [200 + step, 150], [200 + step, 150 + step]])
    [got] = answers(people.owner, second)
    assert close_to(got["polygons"][0]["points"], [[40, 30], [140, 30], [90, 110]], tolerance=1.5)
    assert got["polygons"][0]["label"] == "circle"


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_keypoints_by_keyboard_and_by_pointer(lang: str, page: Page, people: People, server: LiveServer) -> None:
    t = read_in(page, server, lang)
    spec = {"type": "keypoints", "keypoints": ["head", "left_hand", "right_hand"],
            "skeleton": [["head", "left_hand"], ["head", "right_hand"]]}
    project_id, (first, second) = project_with_tasks(people.owner, spec, ROWS)
    open_workspace(page, people, project_id)
    wait_task(page, first)
    image = wait_image(page)
    check_language(page, lang, "the keypoints workspace", "#actions")
    step = 40 / image["k"]
    page.keyboard.press("n")
    expect(page.locator(".kp-list li.current")).to_contain_text("head")
    page.keyboard.press("Space")  # the head, in the middle
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("h")  # the left hand, hidden
    expect(page.locator(".kp-list li").nth(1)).to_contain_text(t("ws.keypoint_hidden"))
    page.keyboard.press("x")  # no right hand
    expect(page.locator("line.bone")).to_have_count(1)
    shot(page, f"keypoints-{lang}")
    page.keyboard.press("Enter")

    wait_task(page, second)
    image = wait_image(page)
    k = image["k"]
    for x, y in ((120, 60), (80, 140), (160, 140)):
        page.mouse.click(image["x"] + x * k, image["y"] + y * k)
    expect(page.locator("line.bone")).to_have_count(2)
    page.click("#btn-submit")
    wait_empty(page)

    [got] = answers(people.owner, first)
    [instance] = got["instances"]
    assert close_to(instance["keypoints"], [[200, 150, 2], [200 + step, 150, 1], [0, 0, 0]])
    [got] = answers(people.owner, second)
    assert close_to(got["instances"][0]["keypoints"], [[120, 60, 2], [80, 140, 2], [160, 140, 2]], tolerance=1.5)
