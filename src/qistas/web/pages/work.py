"""The annotator's pages: projects open to them, and the workspace of one project.

The workspace page is a shell: its script takes, submits and skips tasks through the JSON API
(``/api/v1/projects/{id}/assignments``, ``/api/v1/assignments/{id}/...``) with the session
cookie and the CSRF header, so the next task appears without a page load.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from qistas.api.deps import AppSettings, Db
from qistas.db.enums import Role
from qistas.db.models import Project
from qistas.db.unit_of_work import read
from qistas.domain import projects
from qistas.errors import Forbidden
from qistas.policies import ensure_annotator_access, may_work_on
from qistas.web.markdown import render as markdown
from qistas.web.messages import isolate, script_strings
from qistas.web.pages.common import PageId, PageUser, render, translator

router = APIRouter(include_in_schema=False)


@router.get("/work", response_class=HTMLResponse)
def work_home(request: Request, user: PageUser, db: Db) -> HTMLResponse:
    if user.role != Role.ANNOTATOR:
        raise Forbidden("only annotators take tasks")
    # Name and task type only: an annotator never learns whose project it is.
    found = read(db, lambda s: [p for p in projects.list_projects(s, actor=user) if may_work_on(user, p)])
    items = [{"id": p.id, "name": p.name, "type": p.task_spec.get("type")} for p in found]
    return render(request, "work_home.html", title=translator(request)("work.title"), projects=items)


@router.get("/work/{project_id}", response_class=HTMLResponse)
def workspace(project_id: PageId, request: Request, user: PageUser, db: Db, settings: AppSettings) -> HTMLResponse:
    project = read(db, lambda s: ensure_annotator_access(user, s.get(Project, project_id)))
    t = translator(request)
    boot = {
        "project": project.id,
        "spec": project.task_spec,
        "leaseSeconds": settings.lease_seconds,
        "strings": {**t.subset("ws."), **script_strings(t)},
    }
    return render(request, "workspace.html", title=isolate(project.name), project=project, boot=boot,
                  instructions=markdown(project.instructions or ""))
