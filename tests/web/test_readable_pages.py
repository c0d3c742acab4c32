"""Every page, in English and Arabic, over real HTTP: no catalogue key shows, and the Arabic UI
shows no English sentence, also when a form is sent back with errors.

Text of the customer's or the server's own (names, emails, slugs, JSON, a parser's message) is
marked on the page (``bdi``, ``pre``, ``code``, ``dir="ltr"``, ``lang="en"``, Unicode isolates):
that is left out, and everything else must be in the page's language.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser

import httpx
import pytest

from qistas.web.i18n import Translator, catalogue
from qistas.web.messages import FSI, PDI, isolate
from tests.conftest import LiveServer
from tests.web.conftest import PASSWORD, People
from tests.web.helpers import project_with_tasks

HIDDEN = {"script", "style", "pre", "code", "kbd", "bdi", "textarea", "template"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
ATTRIBUTES = ("placeholder", "aria-label", "alt")
# Latin words an Arabic page may show: names of file formats and of one method.
LATIN_OK = {"JSON", "JSONL", "CSV", "Markdown", "MACE"}
ISOLATED = re.compile(f"{FSI}[^{PDI}]*{PDI}")


class _Text(HTMLParser):
    """The text a reader sees in the page's own language, and the HTML without its scripts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[bool] = []  # per open element: is its content left out?
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        marked = tag != "html" and (found.get("lang") == "en" or found.get("dir") == "ltr")  # not the page's own
        skip = tag in HIDDEN or marked or found.get("type") == "hidden" or (bool(self.stack) and self.stack[-1])
        if not skip:
            self.parts += [found[a] or "" for a in ATTRIBUTES if a in found]
        if tag not in VOID:
            self.stack.append(skip)

    def handle_endtag(self, tag: str) -> None:
        if tag not in VOID and self.stack:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if not (self.stack and self.stack[-1]):
            self.parts.append(data)


def seen_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def assert_readable(html: str, lang: str, where: str) -> None:
    without_scripts = re.sub(r"<script\b.*?</script>", "", html, flags=re.S)
    shown_keys = [k for k in catalogue("en")
                  if re.search(rf"(?<![\w./@-]){re.escape(k)}(?![\w-]|\.\w)", without_scripts)]
    assert shown_keys == [], where
    # A key the catalogues lack shows as itself too: anything shaped like a key of ours.
    namespaces = "|".join(sorted({k.split(".")[0] for k in catalogue("en")}))
    key_like = re.findall(rf"(?<![\w./@-])(?:{namespaces})\.[a-z_]+(?:\.[a-z_]+)*(?![\w-])",
                          ISOLATED.sub("", without_scripts))  # a field the customer named sits in isolates
    assert key_like == [], where
    text = seen_text(html)
    assert text, where
    if lang == "ar":
        latin = [w for w in re.findall(r"[A-Za-z][A-Za-z'-]+", ISOLATED.sub("", text)) if w not in LATIN_OK]
        assert latin == [], f"{where}: {text}"


@dataclass
class Reader:
    """Someone with a browser's cookies, reading the pages in one language."""

    client: httpx.Client
    lang: str
    seen: list[str] = field(default_factory=list)

    def page(self, path: str, status: int = 200, **kwargs: object) -> str:
        response = self.client.get(path, headers={"Accept": "text/html"}, **kwargs)  # type: ignore[arg-type]
        return self._check(response, status, f"GET {path}")

    def post(self, path: str, data: dict[str, str], status: int, csrf: str | None = None) -> str:
        form = {"csrf": csrf if csrf is not None else self.csrf(path), **data}
        response = self.client.post(path, data=form, headers={"Accept": "text/html"})
        return self._check(response, status, f"POST {path} {data}")

    def csrf(self, path: str) -> str:
        html = self.client.get(path).text
        found = re.search(r'name="csrf"[^>]* value="([^"]*)"', html) or re.search(
            r'name="csrf-token" content="([^"]*)"', html)
        assert found, path
        return found.group(1)

    def _check(self, response: httpx.Response, status: int, where: str) -> str:
        assert response.status_code == status, f"{where}: {response.status_code} {response.text[:300]}"
        assert response.headers["content-type"].startswith("text/html"), where
        assert_readable(response.text, self.lang, where)
        self.seen.append(where)
        return response.text


@pytest.fixture
def readers(server: LiveServer, people: People) -> Iterator[dict[str, httpx.Client]]:
    clients = {}
    for role, email in (("owner", people.owner_email), ("admin", people.admin_email),
                        ("annotator", people.annotator_email), ("nobody", None)):
        client = httpx.Client(base_url=server.url, timeout=30)
        if email:
            login = client.get("/login").text
            token = re.search(r'name="csrf" value="([^"]*)"', login)
            assert token
            signed = client.post("/login", data={"csrf": token.group(1), "email": email, "password": PASSWORD})
            assert signed.status_code == 303, signed.text
        clients[role] = client
    yield clients
    for client in clients.values():
        client.close()


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_no_page_shows_a_key_or_a_foreign_sentence(lang: str, people: People,
                                                   readers: dict[str, httpx.Client]) -> None:
    t = Translator(lang)
    for client in readers.values():
        client.cookies.set("qistas_lang", lang)
    project_id, task_ids = project_with_tasks(people.owner, {"type": "classification", "labels": ["إيجابي", "سلبي"]},
                                              [{"text": "نص جميل"}, {"text": "نص آخر"}])
    owner, admin = Reader(readers["owner"], lang), Reader(readers["admin"], lang)
    annotator, nobody = Reader(readers["annotator"], lang), Reader(readers["nobody"], lang)

    # The annotator answers one task through the workspace's API: it completes with a method.
    csrf = annotator.csrf(f"/work/{project_id}")
    taken = annotator.client.post(f"/api/v1/projects/{project_id}/assignments", headers={"X-CSRF-Token": csrf})
    assert taken.status_code == 201, taken.text
    submitted = annotator.client.post(f"/api/v1/assignments/{taken.json()['id']}/submit",
                                      headers={"X-CSRF-Token": csrf}, json={"answer": {"label": "إيجابي"}})
    assert submitted.status_code == 201, submitted.text
    done = taken.json()["task"]["id"]

    # Sign-in, and its errors.
    nobody.page("/login")
    wrong = nobody.post("/login", {"email": people.owner_email, "password": "wrong"}, 401, csrf=nobody.csrf("/login"))
    assert t("login.failed") in seen_text(wrong)
    nobody.post("/login", {"email": people.owner_email, "password": PASSWORD}, 403, csrf="stale")

    # The console.
    owner.page("/console")
    owner.page(f"/console/projects/{project_id}")
    owner.page(f"/console/projects/{project_id}/tasks")
    tasks = owner.page(f"/console/projects/{project_id}/tasks?status=completed")
    task = owner.page(f"/console/tasks/{done}")
    method = re.search(r'id="task-method" title="([a-z_]+)"', task)
    assert method and method.group(1) in ("gold_weighted", "equal_weights")
    assert t(f"method.{method.group(1)}") in seen_text(task) and t(f"method.{method.group(1)}") in seen_text(tasks)
    owner.page(f"/console/tasks/{task_ids[-1]}")
    owner.page("/console/projects/new")

    # The new-project form sent back with errors, each in words.
    base = {"name": "مشروع", "type": "classification", "labels": "أ\nب", "redundancy_min": "1", "redundancy_max": "1",
            "workforce": "shared"}
    bad_forms = [
        ({"labels": ""}, t("err.too_short.task.labels")),
        ({"labels": "أ\nأ"}, t("err.labels_not_unique")),
        ({"labels": "x" * 201}, None),
        ({"name": ""}, t("err.missing.name")),
        ({"type": "nothing"}, t("err.union_tag_invalid")),
        ({"redundancy_min": "two"}, None),
        ({"redundancy_min": "3", "redundancy_max": "2"}, t("err.redundancy_order")),
        ({"redundancy_min": "500"}, None),
        ({"redundancy_target": "1.5"}, t("err.target_range")),
        ({"redundancy_target": "high"}, None),
        ({"type": "rating", "min": "5", "max": "3"}, t("err.scale_order")),
        ({"type": "rating", "min": "low"}, None),
        ({"workforce": "everyone"}, t("err.invalid.workforce")),
        ({"type": "chat", "criteria": "a.b: dotted"}, None),
        ({"type": "chat", "criteria": "same\nsame"}, None),
    ]
    for change, expected in bad_forms:
        html = owner.post("/console/projects/new", {**base, **change}, 422)
        error = seen_text(html.split('id="form-error"', 1)[1].split("</p>", 1)[0].split(">", 1)[1])
        assert error and "{" not in error, change
        if expected is not None:
            assert error == seen_text(expected), change
    labels = owner.post("/console/projects/new", {**base, "labels": "x" * 201}, 422)
    assert isolate(t("field.task.labels")) in labels and isolate(200) in labels
    redundancy = owner.post("/console/projects/new", {**base, "redundancy_min": "two"}, 422)
    assert isolate(t("field.redundancy.min")) in redundancy
    stale = owner.post("/console/projects/new", base, 403, csrf="stale")
    assert t("err.forbidden.csrf") in seen_text(stale)
    # A document project may leave its labels empty: the spec's one label.
    document = {**base, "type": "document_transcription", "labels": "", "csrf": owner.csrf("/console/projects/new")}
    made = owner.client.post("/console/projects/new", data=document, headers={"Accept": "text/html"})
    assert made.status_code == 303, made.text
    # A chat project's rubric, one criterion per line: its name, then what raters read.
    chat = {**base, "type": "chat", "labels": "", "criteria": "accuracy: هل الإجابة صحيحة؟\nfluent",
            "csrf": owner.csrf("/console/projects/new")}
    made = owner.client.post("/console/projects/new", data=chat, headers={"Accept": "text/html"})
    assert made.status_code == 303, made.text
    spec = people.owner.get(f"/projects/{made.headers['location'].rsplit('/', 1)[-1]}").json()["task"]
    assert [(c["name"], c["label"], c["max"]) for c in spec["criteria"]] == [
        ("accuracy", "هل الإجابة صحيحة؟", 5), ("fluent", None, 5)]

    # Error pages.
    owner.page(f"/console/projects/{project_id}/tasks?status=bogus", 422)
    owner.page("/console/projects/987654", 404)
    owner.page("/console/projects/not-a-number", 404)
    owner.page("/no/such/page", 404)
    annotator.page("/console", 403)
    annotator.page("/work/987654", 404)

    # The annotator's pages.
    annotator.page("/work")
    annotator.page(f"/work/{project_id}")

    # Admin pages, and their errors.
    admin.page("/admin/orgs")
    admin.page("/console")
    bad_slug = admin.post("/admin/orgs", {"name": "Globex", "slug": "Not A Slug"}, 422)
    assert t("err.invalid.slug") in seen_text(bad_slug)
    taken_slug = admin.post("/admin/orgs", {"name": "Acme again", "slug": "acme"}, 422)
    assert t("err.conflict.slug") in seen_text(taken_slug)
    admin.page("/admin/users")
    no_org = admin.post("/admin/users", {"email": "boss@acme.test", "role": "owner", "org": ""}, 422)
    assert t("err.invalid.org") in seen_text(no_org)
    owner.page("/admin/users")
    not_email = owner.post("/admin/users", {"email": "not-an-email", "role": "member"}, 422)
    assert t("err.invalid.email") in seen_text(not_email)
    twice = owner.post("/admin/users", {"email": people.owner_email, "role": "member"}, 422)
    assert t("err.conflict.email") in seen_text(twice)
    short = owner.post("/admin/users", {"email": "new@acme.test", "role": "member", "password": "short"}, 422)
    assert t("err.invalid.password") in seen_text(short)
    assert len(owner.seen) + len(admin.seen) + len(annotator.seen) + len(nobody.seen) >= 40


def test_the_check_finds_keys_and_english() -> None:
    """The page check itself fails on what it is there to catch."""
    page = '<p>{}</p><p dir="ltr">Acme Data</p><bdi>owner@acme.test</bdi><script>{{"k": "console.new"}}</script>'
    assert_readable(page.format("مشروع جديد"), "ar", "fine")
    with pytest.raises(AssertionError):
        assert_readable(page.format("console.new"), "ar", "a key")
    with pytest.raises(AssertionError):
        assert_readable(page.format("role.someone_new"), "en", "a key the catalogues lack")
    with pytest.raises(AssertionError):
        assert_readable(page.format("task.labels: List should have at least 1 item"), "ar", "English")
    with pytest.raises(AssertionError):
        assert_readable('<input placeholder="One label per line">', "ar", "an English attribute")
    with pytest.raises(AssertionError):
        assert_readable(page.format("task.labels: List should have at least 1 item"), "en", "a raw message")
    assert_readable(page.format("New project"), "en", "English page")
    assert_readable(page.format(f"الحقل «{isolate('task.colour')}»"), "ar", "an identifier in isolates")
