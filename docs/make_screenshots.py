"""Save a PNG of every page and widget of the browser UI, in English and Arabic.

Run with ``make screenshots``: a throwaway instance (SQLite in a temporary folder) gets demo
data, Debian's Chromium visits each page, and the pictures land in ``docs/screenshots/``.
"""

from __future__ import annotations

import base64
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from playwright.sync_api import Page, sync_playwright
from sqlalchemy import update

from qistas.api.app import create_app
from qistas.config import Settings
from qistas.db.engine import Database
from qistas.db.migrate import upgrade
from qistas.db.models import Assignment
from qistas.db.types import utcnow
from qistas.domain import users

OUT = Path(__file__).resolve().parent / "screenshots"
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "screenshots only"
SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="640" height="400"><rect width="640" height="400" fill="#cfe3f3"/>'
    '<rect y="260" width="640" height="140" fill="#8fbf7a"/><circle cx="520" cy="80" r="40" fill="#f6d55c"/>'
    '<rect x="90" y="170" width="150" height="110" fill="#c0504d"/>'
    '<polygon points="80,170 165,110 250,170" fill="#7f3f3d"/>'
    '<rect x="330" y="220" width="160" height="60" rx="18" fill="#3b6ea5"/>'
    '<circle cx="360" cy="285" r="16" fill="#222"/>'
    '<circle cx="460" cy="285" r="16" fill="#222"/></svg>'
)
IMAGE = "data:image/svg+xml;base64," + base64.b64encode(SVG.encode()).decode()
INSTRUCTIONS = """# How to label
Read the whole text before choosing. When two labels fit, pick the **more specific** one.

- *Positive*: the writer is pleased.
- *Negative*: the writer is unhappy.
- *Mixed*: both at once.

See the [style guide](https://example.com/guide) for edge cases; ask in `#labeling` when unsure."""

PROJECTS: list[dict[str, Any]] = [
    {
        "name": "Customer reviews sentiment",
        "task": {"type": "classification", "labels": ["positive", "negative", "mixed"], "text_field": "text"},
        "rows": [
            {"text": "الخدمة كانت ممتازة والتوصيل سريع، لكن التغليف سيئ قليلًا."},
            {"text": "Great phone, battery lasts two days."},
            {"text": "Never again. Late and broken."},
        ],
    },
    {
        "name": "Topics (multi-label)",
        "task": {
            "type": "classification",
            "labels": ["sports", "politics", "economy", "tech"],
            "multi": True,
            "text_field": "text",
        },
        "rows": [{"text": "The transfer fee for the striker was paid by a technology fund."}],
    },
    {
        "name": "Named entities — news",
        "task": {"type": "spans", "labels": ["PER", "ORG", "LOC", "DATE"], "text_field": "text"},
        "rows": [{"text": "قال محمد العلي 👋🏽 إن شركة Acme افتتحت مكتبًا في الدوحة يوم 12 مارس 2024."}],
    },
    {
        "name": "Street objects",
        "task": {"type": "boxes", "labels": ["house", "car", "sun"], "image_field": "image"},
        "rows": [{"image": IMAGE, "width": 640, "height": 400}],
    },
    {
        "name": "Chat assistant preferences",
        "task": {"type": "pairwise", "criteria": ["helpful", "harmless"]},
        "rows": [
            {
                "prompt": "How do I reverse a list in Python?",
                "a": [
                    {"role": "user", "content": "How do I reverse a list in Python?"},
                    {
                        "role": "assistant",
                        "content": "Use slicing:\n```\nitems[::-1]\n```\nor `items.reverse()` in place.",
                    },
                ],
                "b": "You can call **reversed(items)**, which returns an iterator.",
            }
        ],
    },
    {
        "name": "Summaries ranking",
        "task": {"type": "ranking"},
        "rows": [
            {
                "prompt": "Summarise: the city council approved the new park budget after a long debate.",
                "responses": [
                    "Council approves park budget.",
                    "وافق المجلس على ميزانية الحديقة بعد نقاش طويل.",
                    "A debate happened.",
                ],
            }
        ],
    },
    {
        "name": "Answer quality",
        "task": {"type": "rating", "min": 1, "max": 5, "prompt_field": "prompt"},
        "rows": [
            {
                "prompt": "Q: What is the capital of Morocco?\n\n"
                "A: **Rabat** is the capital; Casablanca is the largest city."
            }
        ],
    },
    {
        "name": "Translation to Arabic",
        "task": {"type": "text", "prompt_field": "prompt"},
        "rows": [
            {"prompt": "Translate into Arabic: *The meeting is moved to Thursday.*", "draft": "تم نقل الاجتماع إلى"}
        ],
    },
]


def serve(settings: Settings, database: Database) -> tuple[uvicorn.Server, str]:
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, database), host="127.0.0.1", port=0, log_level="warning")
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return server, f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"


def seed(database: Database, url: str) -> dict[str, int]:
    with database.writer.begin() as s:
        org = users.create_org(s, name="Acme Data", slug="acme")
        users.create_org(s, name="Globex", slug="globex")
        owner = users.create_user(s, email="owner@acme.test", role="owner", org_id=org.id, password=PASSWORD)
        users.create_user(s, email="admin@qistas.test", role="admin", password=PASSWORD)
        users.create_user(s, email="ana@crowd.test", role="annotator", password=PASSWORD)
        users.create_user(s, email="rita@crowd.test", role="annotator", password=PASSWORD, is_reviewer=True)
        owner_token = users.create_token(s, user=owner)
        workers = [
            users.create_token(s, user=users.create_user(s, email=f"w{i}@crowd.test", role="annotator"))
            for i in range(3)
        ]
    ids: dict[str, int] = {}
    with httpx.Client(base_url=url + "/api/v1", headers={"Authorization": f"Bearer {owner_token}"}) as api:
        for p in PROJECTS:
            body = {"name": p["name"], "task": p["task"], "instructions": INSTRUCTIONS}
            ids[p["task"]["type"] + ("_multi" if p["task"].get("multi") else "")] = pid = api.post(
                "/projects", json=body
            ).json()["id"]
            api.post(f"/projects/{pid}/tasks", json=[{"data": d} for d in p["rows"]])
        # A project with history, for the charts.
        body = {
            "name": "Support tickets triage",
            "task": {"type": "classification", "labels": ["billing", "bug", "other"], "text_field": "text"},
            "redundancy": {"min": 3, "max": 3},
        }
        for lang in ("en", "ar"):  # one short project per language, for the expired and empty states
            state = {"name": "Quick check", "task": PROJECTS[0]["task"]}
            sid = ids[f"states_{lang}"] = api.post("/projects", json=state).json()["id"]
            api.post(f"/projects/{sid}/tasks", json=[{"data": PROJECTS[0]["rows"][0]}])
        # A project whose every task a reviewer checks: the crowd disagrees on one entity.
        review = {"name": "Named entities — checked", "task": PROJECTS[2]["task"], "instructions": INSTRUCTIONS,
                  "redundancy": {"min": 3, "max": 3}, "review": {"share": 1, "disagreement": True}}
        rid = ids["review"] = api.post("/projects", json=review).json()["id"]
        api.post(f"/projects/{rid}/tasks", json=[{"data": d} for d in PROJECTS[2]["rows"]])
        pid = ids["console"] = api.post("/projects", json=body).json()["id"]
        api.post(
            f"/projects/{pid}/tasks", json=[{"data": {"text": f"Ticket {i}: my invoice is wrong"}} for i in range(24)]
        )
    text = PROJECTS[2]["rows"][0]["text"]
    person, place = text.index("محمد العلي"), text.index("الدوحة")
    acme = {"start": text.index("Acme"), "end": text.index("Acme") + 4, "label": "ORG"}
    for n, token in enumerate(workers):
        with httpx.Client(base_url=url + "/api/v1", headers={"Authorization": f"Bearer {token}"}) as worker:
            taken = worker.post(f"/projects/{ids['review']}/assignments").json()
            spans = [{"start": person, "end": person + 10, "label": "PER"}, acme,
                     {"start": place, "end": place + 6, "label": "ORG" if n == 1 else "LOC"}]
            worker.post(f"/assignments/{taken['id']}/submit", json={"answer": {"spans": spans}, "seconds": 9})
            for i in range(20 - 4 * n):
                taken = worker.post(f"/projects/{pid}/assignments")
                if taken.status_code != 201:
                    break
                a = taken.json()
                label = ["billing", "bug", "other"][(i + n) % 3] if i % 4 == n else "billing"
                worker.post(f"/assignments/{a['id']}/submit", json={"answer": {"label": label}, "seconds": 4 + i % 7})
    return ids


def shot(page: Page, name: str, lang: str, full: bool = True) -> None:
    page.wait_for_timeout(150)
    page.screenshot(path=str(OUT / f"{name}-{lang}.png"), full_page=full)


def sign_in(page: Page, url: str, email: str, lang: str) -> None:
    page.context.clear_cookies()
    page.context.add_cookies([{"name": "qistas_lang", "value": lang, "url": url}])
    page.goto(url + "/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


def widgets(page: Page, url: str, ids: dict[str, int], lang: str) -> None:
    sign_in(page, url, "ana@crowd.test", lang)
    shot(page, "work-projects", lang)
    for key, pid in ids.items():
        if key in ("console", "review") or key.startswith("states_"):
            continue
        page.goto(f"{url}/work/{pid}")
        page.wait_for_selector(".widget")
        page.wait_for_timeout(200)
        if key == "classification":
            page.keyboard.press("3")
        elif key == "classification_multi":
            page.keyboard.press("1")
            page.keyboard.press("4")
        elif key == "spans":
            page.focus(".spans-text")
            for _ in range(4):
                page.keyboard.press("ArrowLeft")
            for _ in range(10):  # "محمد العلي"
                page.keyboard.press("Shift+ArrowLeft")
            page.keyboard.press("1")
            for _ in range(11):  # on to "Acme"
                page.keyboard.press("ArrowLeft")
            for _ in range(4):
                page.keyboard.press("Shift+ArrowLeft")
            page.keyboard.press("2")
            for _ in range(9):  # on to "الدوحة", left selected
                page.keyboard.press("ArrowLeft")
            for _ in range(6):
                page.keyboard.press("Shift+ArrowLeft")
        elif key == "boxes":
            page.wait_for_function("document.querySelector('.box-image').naturalWidth > 0")
            box = page.locator(".box-image").bounding_box()
            assert box is not None
            k = box["width"] / 640
            for (x1, y1, x2, y2), label in (((80, 105, 255, 285), "1"), ((325, 215, 495, 305), "2")):
                page.keyboard.press("Escape")  # no box selected: the key picks the next box's label
                page.keyboard.press(label)
                page.mouse.move(box["x"] + x1 * k, box["y"] + y1 * k)
                page.mouse.down()
                page.mouse.move(box["x"] + x2 * k, box["y"] + y2 * k, steps=4)
                page.mouse.up()
        elif key == "pairwise":
            page.keyboard.press("a")
            page.keyboard.press("a")
        elif key == "ranking":
            page.keyboard.press("2")
            page.keyboard.press("Shift+ArrowUp")
        elif key == "rating":
            page.keyboard.press("4")
        shot(page, f"widget-{key.replace('_', '-')}", lang)
    page.goto(f"{url}/work/{ids['classification']}")
    page.wait_for_selector(".widget")
    page.keyboard.press("?")
    shot(page, "workspace-instructions", lang, full=False)


def states(page: Page, url: str, ids: dict[str, int], lang: str, database: Database) -> None:
    """The lease ran out under the annotator's answer; then nothing is left to do."""
    page.goto(f"{url}/work/{ids[f'states_{lang}']}")
    page.wait_for_selector(".widget")
    page.keyboard.press("3")
    with database.writer.begin() as session:
        session.execute(
            update(Assignment).where(Assignment.project_id == ids[f"states_{lang}"]).values(expires_at=utcnow())
        )
    page.keyboard.press("Enter")
    page.wait_for_selector("#btn-new-task")
    page.click("#notice details summary")
    shot(page, "workspace-expired", lang)
    page.click("#btn-new-task")
    page.wait_for_selector("#btn-again")
    shot(page, "workspace-empty", lang)


def review(page: Page, url: str, ids: dict[str, int], lang: str) -> None:
    """The reviewer's pages: the project to review, the answers side by side, correcting, sending back."""
    sign_in(page, url, "rita@crowd.test", lang)
    shot(page, "work-review", lang)
    page.goto(f"{url}/review/{ids['review']}")
    page.wait_for_selector(".rv-answer")
    shot(page, "review-answers", lang, full=False)
    page.keyboard.press("c")
    for _ in range(4):
        page.keyboard.press("ArrowLeft")
    for _ in range(10):  # "محمد العلي", already a person: the correction starts from the aggregated spans
        page.keyboard.press("Shift+ArrowLeft")
    shot(page, "review-correct", lang, full=False)
    page.keyboard.press("Escape")
    page.keyboard.press("Escape")
    page.keyboard.press("r")
    page.keyboard.type("الدوحة مدينة: LOC" if lang == "ar" else "Doha is a city: LOC")
    shot(page, "review-reject", lang)
    page.keyboard.press("Escape")  # the lease stays, for the other language
    sign_in(page, url, "owner@acme.test", lang)
    page.goto(f"{url}/console/projects/{ids['review']}")
    page.locator("#review").screenshot(path=str(OUT / f"console-review-{lang}.png"))


def console(page: Page, url: str, ids: dict[str, int], lang: str, tmp: Path) -> None:
    sign_in(page, url, "owner@acme.test", lang)
    shot(page, "console-projects", lang)
    page.goto(f"{url}/console/projects/new")
    page.fill("input[name=name]", "Intent detection")
    page.fill("textarea[name=labels]", "greeting\ncomplaint\nquestion")
    shot(page, "console-new-project", lang)
    page.goto(f"{url}/console/projects/{ids['console']}")
    bad = tmp / "tasks.jsonl"
    bad.write_text('{"data": {"text": "ok"}}\n{"text": "no data key"}\n{bad json\n', encoding="utf-8")
    page.set_input_files("#upload-file", str(bad))
    page.click("#upload-form button")
    page.wait_for_selector("#upload-error")
    shot(page, "console-project", lang)
    page.goto(f"{url}/console/projects/{ids['console']}/tasks")
    shot(page, "console-tasks", lang)
    page.click("#task-table tbody tr:first-child a")
    shot(page, "console-task", lang)
    sign_in(page, url, "admin@qistas.test", lang)
    shot(page, "admin-orgs", lang)
    page.goto(f"{url}/admin/users")
    page.locator("#users tr", has_text="ana@crowd.test").locator("button").click()
    shot(page, "admin-users", lang)
    page.context.clear_cookies()
    page.context.add_cookies([{"name": "qistas_lang", "value": lang, "url": url}])
    page.goto(url + "/login")
    shot(page, "login", lang)


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        db_url = f"sqlite:///{home / 'qistas.db'}"
        upgrade(db_url)
        settings = Settings(home=home, database_url=db_url, secret_key="s" * 48)
        database = Database.from_url(db_url)
        server, url = serve(settings, database)
        try:
            ids = seed(database, url)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 860})
                for lang in ("en", "ar"):
                    widgets(page, url, ids, lang)
                    states(page, url, ids, lang, database)
                    review(page, url, ids, lang)
                    console(page, url, ids, lang, home)
                browser.close()
        finally:
            server.should_exit = True
            database.dispose()
    print(f"saved {len(list(OUT.glob('*.png')))} screenshots in {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
