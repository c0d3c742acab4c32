"""Hostile task data renders inertly: in every widget, in the owner's pages, under the CSP."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page

from tests.web.conftest import People, sign_in
from tests.web.helpers import project_with_tasks, wait_task

pytestmark = pytest.mark.sqlite_only

EVIL = ('<script>alert(1)</script><img src=x onerror="alert(2)"><a href="javascript:alert(3)">x</a>'
        '\u202eevil\u202c <svg onload=alert(4)> [md](javascript:alert(5)) **b**')
LABEL = '<img src=y onerror="alert(6)">'
CHAT = [{"role": '<b onmouseover="alert(7)">user</b>', "content": EVIL}, {"role": "assistant", "content": EVIL}]
SPECS: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({"type": "classification", "labels": [LABEL, "\u202eok"], "text_field": "text"}, {"text": EVIL}),
    ({"type": "classification", "labels": [LABEL, "b"], "multi": True}, {EVIL: EVIL, "n": {"x": EVIL}}),
    ({"type": "spans", "labels": [LABEL, "b"], "text_field": "text"}, {"text": EVIL}),
    ({"type": "boxes", "labels": [LABEL], "image_field": "image"}, {"image": "javascript:alert(8)"}),
    ({"type": "pairwise", "criteria": [LABEL]}, {"prompt": EVIL, "a": CHAT, "b": {"messages": CHAT}}),
    ({"type": "ranking"}, {"prompt": CHAT, "responses": [EVIL, CHAT, {"x": EVIL}]}),
    ({"type": "rating", "prompt_field": "prompt"}, {"prompt": EVIL}),
    ({"type": "text"}, {"prompt": EVIL, "draft": EVIL}),
]
INSTRUCTIONS = f"# {EVIL}\n\n{EVIL}\n\n- [link](javascript:alert(9))\n\n```\n{EVIL}\n```"

# Elements or attributes that would mean customer text became markup.
INJECTED = ("script:not([type='application/json']):not([src^='/static/']), img[onerror], svg[onload], "
            "a[href^='javascript'], b[onmouseover], [onerror], [onload]")
UNISOLATED = """() => {
  const bad = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  let node;
  while ((node = walker.nextNode())) {
    if (!node.data.includes('\\u202e')) continue;
    let el = node.parentElement, ok = false;
    while (el && el !== document.body) {
      const b = getComputedStyle(el).unicodeBidi;
      if (b === 'isolate' || b === 'plaintext' || b === 'isolate-override') { ok = true; break; }
      el = el.parentElement;
    }
    if (!ok) bad.push(node.parentElement.outerHTML.slice(0, 120));
  }
  return bad;
}"""


def assert_inert(page: Page, dialogs: list[str]) -> None:
    assert page.locator(INJECTED).count() == 0, page.content()
    assert page.evaluate(UNISOLATED) == []
    assert dialogs == []


def test_hostile_data_is_inert_everywhere(page: Page, people: People) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    made = [project_with_tasks(people.owner, spec, [data], name=EVIL, instructions=INSTRUCTIONS)
            for spec, data in SPECS]
    sign_in(page, people.annotator_email)
    assert_inert(page, dialogs)  # the project list shows the hostile project names
    for project_id, (task_id,) in made:
        response = page.goto(f"/work/{project_id}")
        assert response is not None
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        wait_task(page, task_id)
        page.keyboard.press("?")
        assert page.locator("#help .instructions a").count() == 0  # javascript: links stay text
        assert "<script>alert(1)</script>" in page.text_content("#help .instructions")
        page.keyboard.press("Escape")
        page.mouse.move(300, 300)
        assert_inert(page, dialogs)
        shown = page.text_content("#task") or ""
        assert "<script>alert(1)</script>" in shown or LABEL in shown  # as text (boxes: the label)
    assert page.page_errors == []  # type: ignore[attr-defined]

    page.context.clear_cookies()
    sign_in(page, people.owner_email)
    for project_id, (task_id,) in made:
        for path in (f"/console/projects/{project_id}", f"/console/projects/{project_id}/tasks",
                     f"/console/tasks/{task_id}"):
            page.goto(path)
            assert_inert(page, dialogs)
        # The task's JSON reads left to right: bidi controls in it are shown, not obeyed.
        shown = page.text_content("#task-data") or ""
        assert "\u202e" not in shown and ("\\u202e" in shown or "evil" not in shown)
        assert page.locator("#task-data").get_attribute("dir") == "ltr"
    page.goto("/console")
    assert_inert(page, dialogs)
    assert "<script>alert(1)</script>" in page.text_content("#projects")

    # Admin pages: organization names and email addresses come from outside too.
    org = people.admin.post("/orgs", json={"name": EVIL, "slug": "evil"})
    assert org.status_code == 201, org.text
    user = people.admin.post("/users", json={"email": "<svg/onload=alert(10)>@evil.test", "role": "owner",
                                             "org": "evil"})
    assert user.status_code == 201, user.text
    page.context.clear_cookies()
    sign_in(page, people.admin_email)
    for path in ("/console", "/admin/orgs", "/admin/users"):
        page.goto(path)
        assert_inert(page, dialogs)
    assert "<svg/onload=alert(10)>@evil.test" in page.text_content("#users")
