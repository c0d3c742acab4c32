"""Models in the loop in the console: the organization's model endpoints (its owners and the
admins), and a project's models (its organization's owners and members): pre-label jobs with
their counts, failures and cost, a form that starts one, and the project's ``prefill`` and
``model_annotators`` settings.

Both pages are server-rendered with plain forms; a form sent back shows each problem in the
reader's words next to its field. The project page's script (``static/console_models.js``)
follows a job that is queued or running through ``GET /api/v1/prelabel-jobs/{id}`` until it
ends, then reads the project's usage again.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from qistas.api.deps import AppSettings, Db
from qistas.api.schemas.models import ModelEndpointCreate, PrelabelCreate
from qistas.db.models import ModelEndpoint, PrelabelJob, Project
from qistas.db.types import utcnow
from qistas.db.unit_of_work import read, write
from qistas.domain import generation, projects, users
from qistas.domain import model_endpoints as endpoints
from qistas.domain.destinations import Policy
from qistas.domain.model_annotators import DEFAULT_MIN_HUMAN, MAX_HUMAN
from qistas.domain.predictions import MODES as PREFILL_MODES
from qistas.domain.predictions import parse_prefill
from qistas.domain.sealing import Keyring
from qistas.errors import Conflict, Invalid, NotFound
from qistas.policies import ensure_endpoint_manager, ensure_org_people_access, is_admin
from qistas.web.messages import isolate, script_strings
from qistas.web.pages.common import CheckedForm, PageId, PageUser, form_str, render, translator
from qistas.web.pages.forms import field_errors, inputs_named, submit, validated

router = APIRouter(include_in_schema=False)


# --- the organization's model endpoints -------------------------------------------------------

ENDPOINT_INPUTS = ("name", "base_url", "model", "api_key", "max_concurrency", "requests_per_minute", "timeout_seconds",
                   "price_input_per_1k", "price_output_per_1k", "org", "allow_private")
ENDPOINT_DEFAULTS = {"max_concurrency": "4", "timeout_seconds": "60"}
_OPTIONAL = ("api_key", "requests_per_minute", "price_input_per_1k", "price_output_per_1k", "max_concurrency",
             "timeout_seconds", "org")


def endpoint_body(form: FormData, *, admin: bool) -> dict[str, Any]:
    """What the form asks for, in the API's shape; an empty field takes the API's default."""
    body: dict[str, Any] = {name: form_str(form, name) for name in ("name", "base_url", "model")}
    for name in _OPTIONAL:
        value = form.get(name) if name == "api_key" else form_str(form, name)
        if isinstance(value, str) and value:
            body[name] = value
    if not admin:
        body.pop("org", None)
    body["allow_private"] = admin and form.get("allow_private") == "on"
    return body


def endpoint_view(e: ModelEndpoint, org: str | None) -> dict[str, Any]:
    return {"id": e.id, "org": org, "name": e.name, "base_url": e.base_url, "model": e.model,
            "max_concurrency": e.max_concurrency, "requests_per_minute": e.requests_per_minute,
            "timeout_seconds": e.timeout_seconds, "price_input_per_1k": e.price_input_per_1k,
            "price_output_per_1k": e.price_output_per_1k, "has_api_key": e.api_key_sealed is not None,
            "allow_private": e.allow_private}


def _endpoints_page(request: Request, user: Any, db: Any, *, values: dict[str, Any],
                    errors: dict[str, str] | None = None, status: int = 200, notice: str | None = None) -> HTMLResponse:
    def work(session: Session) -> list[dict[str, Any]]:
        found = endpoints.list_endpoints(session, actor=user)
        slugs = users.slugs_of(session, org_ids={e.org_id for e in found}) if is_admin(user) else {}
        return [endpoint_view(e, slugs.get(e.org_id)) for e in found]

    listed = read(db, work)
    errors = errors or {}
    first_error = next((name for name in ENDPOINT_INPUTS if name in errors), None)
    return render(request, "console_endpoints.html", status=status, title=translator(request)("endpoints.title"),
                  endpoints=listed, values=values, errors=errors, first_error=first_error,
                  admin=is_admin(user), notice=notice)


@router.get("/console/model-endpoints", response_class=HTMLResponse)
def endpoints_page(request: Request, user: PageUser, db: Db) -> HTMLResponse:
    return _endpoints_page(request, user, db, values=dict(ENDPOINT_DEFAULTS))


@router.post("/console/model-endpoints", response_class=HTMLResponse)
def register_endpoint(request: Request, user: PageUser, form: CheckedForm, db: Db, settings: AppSettings) -> Response:
    admin = is_admin(user)
    # Kept as typed, for a form sent back; never the key.
    values: dict[str, Any] = {k: form_str(form, k) for k in ENDPOINT_INPUTS if k not in ("api_key", "allow_private")}
    values["allow_private"] = admin and form.get("allow_private") == "on"
    if not admin:  # a member is refused before anything is checked
        write(db, lambda session: ensure_endpoint_manager(user, user.org_id))

    def work(session: Session) -> ModelEndpoint:
        body = validated(ModelEndpointCreate, endpoint_body(form, admin=admin))
        try:
            org = endpoints.endpoint_org(session, actor=user, slug=body.org, allow_private=body.allow_private)
        except NotFound as exc:  # an organization outside reach: the one field that names one
            raise Invalid(exc.message, details={"field": "org"}, reason="not_found") from None  # its words
        return endpoints.create_endpoint(session, org=org, fields=body.model_dump(exclude={"org", "api_key"}),
                                         api_key=body.api_key, policy=Policy.from_settings(settings),
                                         keyring=Keyring.from_settings(settings), actor=user, via="console")

    endpoint, errors = submit(db, work, translator(request), inputs_named(ENDPOINT_INPUTS))
    if endpoint is not None:
        return RedirectResponse(f"/console/model-endpoints#endpoint-{endpoint.id}", status_code=303)
    return _endpoints_page(request, user, db, values=values, errors=errors, status=422)


@router.post("/console/model-endpoints/{endpoint_id}/delete", response_class=HTMLResponse)
def remove_endpoint(endpoint_id: PageId, request: Request, user: PageUser, _form: CheckedForm, db: Db) -> Response:
    def work(session: Session) -> str:
        endpoint = endpoints.get_endpoint(session, endpoint_id=endpoint_id)
        ensure_endpoint_manager(user, endpoint.org_id)
        endpoints.delete_endpoint(session, endpoint=endpoint, actor=user, via="console")
        return endpoint.name

    name = write(db, work)
    return _endpoints_page(request, user, db, values=dict(ENDPOINT_DEFAULTS),
                           notice=translator(request)("endpoints.deleted", name=isolate(name)))


# --- a project's models -----------------------------------------------------------------------

JOB_INPUTS = ("endpoint", "template_system", "template_user", "as", "only_pending", "standing")
SETTING_INPUTS = ("prefill_mode", "prefill_min_score", "prefill_show_model", "model_annotators_min_human_answers")


def job_view(job: PrelabelJob, model: str) -> dict[str, Any]:
    return {"id": job.id, "status": job.status, "as": job.mode, "model": model, "standing": job.standing,
            "tasks_total": job.tasks_total,
            "done": job.done, "failed": job.failed, "skipped": job.skipped, "failures": list(job.failures or []),
            "requests": job.requests, "input_tokens": job.input_tokens, "output_tokens": job.output_tokens,
            "cost": job.cost, "error": job.error, "template": dict(job.template or {}), "created_at": job.created_at}


def settings_values(project: Project) -> dict[str, Any]:
    policy = parse_prefill(project.prefill)
    return {"prefill_mode": policy.mode, "prefill_min_score": str(policy.min_score),
            "prefill_show_model": policy.show_model,
            "model_annotators_min_human_answers":
                str((project.model_annotators or {}).get("min_human_answers", DEFAULT_MIN_HUMAN))}


def _number(form: FormData, name: str, field: str, kind: type) -> Any:
    text = form_str(form, name)
    try:
        return kind(text)
    except ValueError:
        reason = "int_parsing" if kind is int else "float_parsing"
        raise Invalid(f"{field} must be a number", details={"field": field}, reason=reason) from None


def settings_changes(form: FormData) -> dict[str, Any]:
    """The form's settings in the shape PATCH /projects takes."""
    return {"prefill": {"mode": form_str(form, "prefill_mode"),
                        "min_score": _number(form, "prefill_min_score", "prefill.min_score", float),
                        "show_model": form.get("prefill_show_model") == "on"},
            "model_annotators": {"min_human_answers": _number(form, "model_annotators_min_human_answers",
                                                              "model_annotators.min_human_answers", int)}}


def _models_page(request: Request, user: Any, db: Any, *, project_id: int, job_values: dict[str, Any] | None = None,
                 setting_values: dict[str, Any] | None = None, errors: dict[str, str] | None = None,
                 status: int = 200, notice: str | None = None) -> HTMLResponse:
    def work(session: Session) -> dict[str, Any]:
        project = ensure_org_people_access(user, session.get(Project, project_id))
        return {"project": project, "usage": endpoints.usage(session, project=project),
                "jobs": [job_view(j, endpoints.model_of(session, j))
                         for j in endpoints.list_jobs(session, project=project)],
                "endpoints": [{"id": e.id, "name": endpoints.model_name(e)}
                              for e in generation.usable_endpoints(session, project=project)],
                "settings": settings_values(project)}

    found = read(db, work)
    t = translator(request)
    project = found["project"]
    errors = errors or {}
    if job_values is None:  # a new job starts from the newest one's prompt
        last = found["jobs"][0]["template"] if found["jobs"] else {}
        job_values = {"as": "predictions", "only_pending": True, "endpoint": "",
                      "template_system": last.get("system", ""), "template_user": last.get("user", "")}
    if not job_values.get("endpoint") and len(found["endpoints"]) == 1:
        job_values = {**job_values, "endpoint": str(found["endpoints"][0]["id"])}  # the only one: chosen
    first_error = next((name for name in (*JOB_INPUTS, *SETTING_INPUTS) if name in errors), None)
    strings = {"status": {s: t("gen_status." + s) for s in endpoints.STATUSES}, "job_error": t("prelabel.job_error"),
               "failures": t("prelabel.failures"), "task": t("prelabel.task"), "offline": t("ws.offline"),
               "errors": script_strings(t)}
    return render(request, "console_models.html", status=status, title=isolate(project.name), project=project,
                  jobs=found["jobs"], usage=found["usage"], endpoints=found["endpoints"], job_values=job_values,
                  setting_values=setting_values or found["settings"], errors=errors, first_error=first_error,
                  strings=strings, prefill_modes=PREFILL_MODES, max_human=MAX_HUMAN, notice=notice)


@router.get("/console/projects/{project_id}/models", response_class=HTMLResponse)
def models_page(project_id: PageId, request: Request, user: PageUser, db: Db) -> HTMLResponse:
    saved = request.query_params.get("saved") == "1"
    return _models_page(request, user, db, project_id=project_id, notice="prelabel.saved" if saved else None)


@router.post("/console/projects/{project_id}/prelabel", response_class=HTMLResponse)
def start_job(project_id: PageId, request: Request, user: PageUser, form: CheckedForm, db: Db) -> Response:
    values: dict[str, Any] = {k: form_str(form, k) for k in JOB_INPUTS if k not in ("only_pending", "standing")}
    values["only_pending"] = form.get("only_pending") == "on"
    values["standing"] = form.get("standing") == "on"
    template = {"user": form_str(form, "template_user")}
    if form_str(form, "template_system"):
        template["system"] = form_str(form, "template_system")

    def work(session: Session) -> PrelabelJob:
        project = ensure_org_people_access(user, session.get(Project, project_id))
        if not values["endpoint"].isdigit():
            raise Invalid("choose a model endpoint", details={"field": "endpoint"}, reason="endpoint_unknown")
        body = validated(PrelabelCreate, {
            "endpoint": values["endpoint"], "template": template, "as": values["as"] or "predictions",
            "only_pending": values["only_pending"] or values["as"] == "annotations", "standing": values["standing"]})
        try:
            return endpoints.create_job(
                session, project=project, endpoint=endpoints.get_endpoint(session, endpoint_id=body.endpoint),
                actor=user, template=body.template, only_pending=body.only_pending, mode=body.as_,
                standing=body.standing, via="console")
        except NotFound:  # another organization's, or none: the field names it
            raise Invalid("model endpoint not found", details={"field": "endpoint"}, reason="endpoint_unknown") \
                from None

    job, errors = submit(db, work, translator(request), inputs_named(JOB_INPUTS))
    if job is not None:
        return RedirectResponse(f"/console/projects/{project_id}/models#job-{job.id}", status_code=303)
    return _models_page(request, user, db, project_id=project_id, job_values=values, errors=errors, status=422)


@router.post("/console/prelabel-jobs/{job_id}/stop", response_class=HTMLResponse)
def stop_job(job_id: PageId, request: Request, user: PageUser, _form: CheckedForm, db: Db) -> Response:
    def work(session: Session) -> int:
        job = endpoints.get_job(session, job_id=job_id, actor=user)
        project = ensure_org_people_access(user, session.get(Project, job.project_id))
        endpoints.stop_job(session, job=job, actor=user, now=utcnow(), via="console")
        return project.id

    project_id = write(db, work)
    return RedirectResponse(f"/console/projects/{project_id}/models#job-{job_id}", status_code=303)


@router.post("/console/projects/{project_id}/models/settings", response_class=HTMLResponse)
def save_settings(project_id: PageId, request: Request, user: PageUser, form: CheckedForm, db: Db) -> Response:
    values = {k: form_str(form, k) for k in SETTING_INPUTS}
    values["prefill_show_model"] = form.get("prefill_show_model") == "on"  # type: ignore[assignment]

    def work(session: Session) -> None:
        project = ensure_org_people_access(user, session.get(Project, project_id))
        projects.update_project(session, project=project, actor=user, changes=settings_changes(form), now=utcnow())

    try:
        write(db, work)
    except (Invalid, Conflict) as exc:
        errors = field_errors(translator(request), [exc], inputs_named(SETTING_INPUTS))
        if "" in errors:  # a problem of no one field: shown above the settings, not the job's form
            errors["settings"] = errors.pop("")
        return _models_page(request, user, db, project_id=project_id, setting_values=values, errors=errors,
                            status=422 if isinstance(exc, Invalid) else 409)
    return RedirectResponse(f"/console/projects/{project_id}/models?saved=1#model-settings", status_code=303)
