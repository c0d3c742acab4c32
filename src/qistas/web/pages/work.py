"""The annotator's pages: projects open to them, and the workspace of one project.

The workspace page is a shell: its script takes, submits and skips tasks through the JSON API
(``/api/v1/projects/{id}/assignments``, ``/api/v1/assignments/{id}/...``) with the session
cookie and the CSRF header, so the next task appears without a page load.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from qistas.api.deps import AppSettings, Db
from qistas.db.enums import Role
from qistas.db.models import Project
from qistas.db.unit_of_work import read
from qistas.domain import projects, reviews
from qistas.domain.my_work import my_work
from qistas.errors import Forbidden
from qistas.policies import ensure_annotator_access, may_review, may_work_on
from qistas.web.markdown import render as markdown
from qistas.web.messages import isolate, script_strings
from qistas.web.pages.common import PageId, PageUser, render, translator

router = APIRouter(include_in_schema=False)
SENT_BACK_SHOWN = 20  # the annotator's newest rejected answers on the workspace
GIST_CHARS = 300


@router.get("/work", response_class=HTMLResponse)
def work_home(request: Request, user: PageUser, db: Db) -> HTMLResponse:
    if user.role != Role.ANNOTATOR:
        raise Forbidden("only annotators take tasks")

    def work(session: Session) -> dict[str, Any]:
        found = projects.list_projects(session, actor=user)
        reviewable = [p for p in found if may_review(user, p)]
        waiting = reviews.waiting(session, project_ids=[p.id for p in reviewable], reviewer_id=user.id)
        # Work name and task type only: an annotator never learns whose project it is.
        return {
            "projects": [{"id": p.id, "name": p.work_name, "type": p.task_spec.get("type")}
                         for p in found if may_work_on(user, p)],
            "reviews": [{"id": p.id, "name": p.work_name, "type": p.task_spec.get("type"),
                         "waiting": waiting.get(p.id, 0)} for p in reviewable],
        }

    return render(request, "work_home.html", title=translator(request)("work.title"), **read(db, work))


@router.get("/work/me", response_class=HTMLResponse)
def my_work_page(request: Request, user: PageUser, db: Db) -> HTMLResponse:
    """The annotator's own page: their record on each project, their skills and pools."""
    if user.role != Role.ANNOTATOR:
        raise Forbidden("only annotators have a record of their own work")
    found = read(db, lambda session: my_work(session, user_id=user.id))
    return render(request, "work_me.html", title=translator(request)("me.title"), work=found, totals=found.totals())


@router.get("/work/{project_id}", response_class=HTMLResponse)
def workspace(project_id: PageId, request: Request, user: PageUser, db: Db, settings: AppSettings) -> HTMLResponse:
    def work(session: Session) -> tuple[Project, list[Any]]:
        project = ensure_annotator_access(user, session.get(Project, project_id))
        return project, reviews.rejections(session, project_id=project.id, annotator_id=user.id,
                                           limit=SENT_BACK_SHOWN)

    project, rejected = read(db, work)
    sent_back = [{"task_id": r.task_id, "answer": r.answer, "reason": r.rejection_reason, "at": r.rejected_at,
                  "gist": gist(project.task_spec, r.data)} for r in rejected]
    t = translator(request)
    boot = {
        "project": project.id,
        "spec": project.task_spec,
        "leaseSeconds": settings.lease_seconds,
        "strings": {**t.subset("ws."), **script_strings(t)},
    }
    return render(request, "workspace.html", title=isolate(project.work_name), project=project, boot=boot,
                  instructions=markdown(project.instructions or ""), sent_back=sent_back)


def gist(spec: dict[str, Any], data: dict[str, Any]) -> str | None:
    """The start of the text a task type shows (its text or prompt field), to recall the task by."""
    for key in ("text_field", "prompt_field"):
        value = data.get(spec.get(key) or "")
        if isinstance(value, str):
            return value if len(value) <= GIST_CHARS else value[: GIST_CHARS - 1] + "…"
    return None
