"""The reviewer's workspace: one task waiting for review at a time, its answers side by side.

Like the annotator's workspace, the page is a shell: its script takes reviews and sends
verdicts through the JSON API (``/api/v1/projects/{id}/reviews``, ``/api/v1/reviews/{id}``)
with the session cookie and the CSRF header, so the next review appears without a page load.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from qistas.api.deps import AppSettings, Db
from qistas.db.enums import Role
from qistas.db.models import Project
from qistas.db.unit_of_work import read
from qistas.policies import ensure_reviewer_access
from qistas.web.markdown import render as markdown
from qistas.web.messages import isolate, script_strings
from qistas.web.pages.common import PageId, PageUser, render, translator

router = APIRouter(include_in_schema=False)


@router.get("/review/{project_id}", response_class=HTMLResponse)
def review_workspace(project_id: PageId, request: Request, user: PageUser, db: Db,
                     settings: AppSettings) -> HTMLResponse:
    project = read(db, lambda s: ensure_reviewer_access(user, s.get(Project, project_id)))
    t = translator(request)
    back = "/work" if user.role == Role.ANNOTATOR else f"/console/projects/{project.id}"
    boot = {
        "project": project.id,
        "spec": project.task_spec,
        "back": back,
        "leaseSeconds": settings.lease_seconds,
        "strings": {**t.subset("ws."), **t.subset("rv."), **script_strings(t)},
    }
    # An annotator reviewing sees the work name; the organization's staff their own name for it.
    shown = project.work_name if user.role == Role.ANNOTATOR else project.name
    return render(request, "review.html", title=isolate(shown), project=project, shown_name=shown, boot=boot,
                  instructions=markdown(project.instructions or ""))
