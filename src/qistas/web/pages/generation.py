"""A project's generation batches in the console: the batches with their counts, and a form
that starts one (the form the API's ``POST /projects/{id}/generate`` takes, field by field).

The page is server-rendered; its script (``static/console_generation.js``) follows a batch
that is queued or running through ``GET /api/v1/generation-batches/{id}`` until it ends.
A form sent back shows each problem in the reader's words next to its field.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from qistas.api.deps import Db
from qistas.api.schemas.generation import GenerationCreate
from qistas.db.models import GenerationBatch, ModelEndpoint, Project
from qistas.db.unit_of_work import read
from qistas.domain import generation
from qistas.domain.model_endpoints import model_name
from qistas.domain.prompts import check_template
from qistas.domain.tasktypes import parse_spec
from qistas.errors import Invalid
from qistas.policies import ensure_org_people_access
from qistas.web.messages import isolate, script_strings
from qistas.web.pages.common import CheckedForm, PageId, PageUser, form_str, render, translator
from qistas.web.pages.forms import FormErrors, submit, validated

router = APIRouter(include_in_schema=False)
_INDEX = re.compile(r"\.\d+(?=\.|$)")
# The form's inputs, named after the API's fields ("template.user" -> "template_user").
INPUTS = ("endpoints", "template_system", "template_user", "count", "topics", "language", "seed", "temperature",
          "dedup_threshold")
DEFAULTS = {"count": "10", "seed": "0", "temperature": "0.7", "dedup_threshold": "0.8"}


def input_of(field: str) -> str:
    """The form input an API field's error belongs to (``topics.3`` -> ``topics``), else ``""``."""
    name = _INDEX.sub("", field).replace(".", "_")
    return name if name in INPUTS else ""


def body_from_form(form: FormData) -> dict[str, Any]:
    """What the form asks for, in the API's shape; an empty number takes the API's default."""
    template = {"user": form_str(form, "template_user")}
    if form_str(form, "template_system"):
        template["system"] = form_str(form, "template_system")
    body: dict[str, Any] = {
        "endpoints": [v for v in form.getlist("endpoints") if isinstance(v, str)],
        "template": template,
        "topics": [line.strip() for line in form_str(form, "topics").splitlines() if line.strip()],
        "language": form_str(form, "language"),
    }
    for name in ("count", "seed", "temperature", "dedup_threshold"):
        if form_str(form, name):
            body[name] = form_str(form, name)
    return body


def check_body(body: dict[str, Any]) -> GenerationCreate:
    """The body checked by the API's own schema; ``FormErrors`` with every problem if not."""
    try:
        return validated(GenerationCreate, body)
    except FormErrors as exc:
        found = exc.errors
    try:  # the prompt's own problem too, so that one sending shows every field to fix
        check_template(body["template"], None, fields=set(generation.FIELDS))
    except Invalid as exc:
        found.append(exc)
    raise FormErrors(found)


def batch_view(batch: GenerationBatch, models: list[str]) -> dict[str, Any]:
    params = batch.params or {}
    return {"id": batch.id, "status": batch.status, "count": params.get("count", 0), "next_index": batch.next_index,
            "generated": batch.generated, "duplicates": batch.duplicates, "failed": batch.failed,
            "failures": list(batch.failures or []), "dropped": list(batch.dropped or []), "requests": batch.requests,
            "input_tokens": batch.input_tokens, "output_tokens": batch.output_tokens, "cost": batch.cost,
            "error": batch.error, "models": models, "topics": params.get("topics") or [],
            "language": params.get("language") or "", "template": dict(batch.template or {}),
            "created_at": batch.created_at, "finished_at": batch.finished_at}


def _endpoint_view(endpoint: ModelEndpoint) -> dict[str, Any]:
    return {"id": endpoint.id, "name": model_name(endpoint)}


def _page(request: Request, user: Any, db: Any, *, project_id: int, values: dict[str, Any],
          errors: dict[str, str] | None = None, status: int = 200) -> HTMLResponse:
    def work(session: Session) -> dict[str, Any]:
        project = ensure_org_people_access(user, session.get(Project, project_id))
        batches = [batch_view(b, generation.models_of(session, b))
                   for b in generation.list_batches(session, project=project)]
        return {"project": project, "batches": batches,
                "endpoints": [_endpoint_view(e) for e in generation.usable_endpoints(session, project=project)]}

    found = read(db, work)
    t = translator(request)
    project = found["project"]
    errors = errors or {}
    if not errors and not values.get("endpoints") and len(found["endpoints"]) == 1:
        values = {**values, "endpoints": [str(found["endpoints"][0]["id"])]}  # the only one: chosen
    first_error = next((name for name in INPUTS if name in errors), None)
    strings = {"status": {s: t("gen_status." + s) for s in generation.STATUSES},
               "batch_error": t("gen.batch_error"), "failures": t("gen.failures"), "dropped": t("gen.dropped"),
               "duplicate_of": t("gen.duplicate_of"), "offline": t("ws.offline"), "errors": script_strings(t)}
    return render(request, "console_generation.html", status=status, title=isolate(project.name), project=project,
                  type=parse_spec(project.task_spec).type, batches=found["batches"], endpoints=found["endpoints"],
                  values=values, errors=errors, first_error=first_error, strings=strings,
                  max_count=generation.MAX_COUNT)


@router.get("/console/projects/{project_id}/generate", response_class=HTMLResponse)
def generation_page(project_id: PageId, request: Request, user: PageUser, db: Db) -> HTMLResponse:
    return _page(request, user, db, project_id=project_id, values={**DEFAULTS, "endpoints": []})


@router.post("/console/projects/{project_id}/generate", response_class=HTMLResponse)
def start_batch(project_id: PageId, request: Request, user: PageUser, form: CheckedForm, db: Db) -> Response:
    values: dict[str, Any] = {k: form_str(form, k) for k in INPUTS if k != "endpoints"}
    values["endpoints"] = [v for v in form.getlist("endpoints") if isinstance(v, str)]

    def work(session: Session) -> GenerationBatch:
        project = ensure_org_people_access(user, session.get(Project, project_id))
        body = check_body(body_from_form(form))
        usable = {e.id: e for e in generation.usable_endpoints(session, project=project)}
        if any(i not in usable for i in body.endpoints):
            raise Invalid("model endpoint not found", details={"field": "endpoints"}, reason="endpoint_unknown")
        return generation.create_batch(session, project=project, endpoints=[usable[i] for i in body.endpoints],
                                       actor=user, template=body.template,
                                       params=body.model_dump(exclude={"endpoints", "template"}), via="console")

    batch, errors = submit(db, work, translator(request), input_of)
    if batch is not None:
        return RedirectResponse(f"/console/projects/{project_id}/generate#batch-{batch.id}", status_code=303)
    return _page(request, user, db, project_id=project_id, values=values, errors=errors, status=422)
