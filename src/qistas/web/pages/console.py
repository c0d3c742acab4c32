"""The owner console: projects with their progress, a project's page, its tasks, a new project."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from qistas.api.deps import AppSettings, Db, cursor_from_text
from qistas.api.recorded_reads import Read, read_then_record
from qistas.db.enums import Role, TaskStatus
from qistas.db.models import Annotation, Project, Review, Task
from qistas.db.types import utcnow
from qistas.db.unit_of_work import read, write
from qistas.domain import audit, insights, label_errors, projects, results, reviews
from qistas.domain.model_annotators import model_names
from qistas.domain.review_policy import REOPEN, parse_policy
from qistas.domain.security import pseudonym, pseudonyms
from qistas.domain.tasktypes import all_types, type_names
from qistas.errors import Forbidden, Invalid, NotFound
from qistas.policies import STAFF_ROLES, ensure_customer_access, ensure_may_create_project, may_review
from qistas.web import charts
from qistas.web.i18n import Translator
from qistas.web.messages import describe, isolate, script_strings
from qistas.web.pages.common import CheckedForm, PageId, PageUser, form_str, render, translator

router = APIRouter(include_in_schema=False)
PREVIEW_CHARS = 120


def _require_staff(user: Any) -> None:
    if user.role not in (*STAFF_ROLES, Role.ADMIN):
        raise Forbidden("the console is for an organization's people")


@router.get("/console", response_class=HTMLResponse)
def console_home(request: Request, user: PageUser, db: Db) -> HTMLResponse:
    _require_staff(user)

    def work(session: Session) -> list[dict[str, Any]]:
        found = projects.list_projects(session, actor=user)
        counts = insights.status_counts(session, project_ids=[p.id for p in found])
        answers = insights.answer_counts(session, project_ids=[p.id for p in found])
        items = []
        for p in found:
            c = counts.get(p.id, {})
            total = sum(c.values())
            items.append({"id": p.id, "name": p.name, "type": p.task_spec.get("type"), "total": total,
                          "completed": c.get(TaskStatus.COMPLETED, 0), "pending": c.get(TaskStatus.PENDING, 0),
                          "answers": answers.get(p.id, 0)})
        return items

    return render(request, "console_home.html", title=translator(request)("console.title"), projects=read(db, work))


# --- a new project ---------------------------------------------------------------------------

def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _int(form: Any, name: str, default: int | None = None, *, field: str) -> int | None:
    """The whole number in input ``name``; ``field`` names it as the API would (``redundancy.min``)."""
    raw = form_str(form, name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise Invalid(f"{field} must be a whole number", details={"field": field}, reason="int_parsing") from None


def form_fields() -> list[dict[str, Any]]:
    """The inputs of the new-project form: each spec key once, with the types that have it."""
    found: dict[str, dict[str, Any]] = {}
    for name in type_names():
        task_type = all_types()[name]
        for f in task_type.form_fields:
            spec_field = task_type.spec_model.model_fields.get(f.key)
            shown = spec_field.default if spec_field is not None and isinstance(spec_field.default, str) else ""
            entry = found.setdefault(f.key, {"key": f.key, "kind": f.kind, "label": f.label, "hint": f.hint,
                                             "types": [], "placeholder": shown})
            entry["types"].append(name)
            entry["placeholder"] = entry["placeholder"] or shown  # a default of any type that has one
    return list(found.values())


def spec_from_form(form: Any) -> dict[str, Any]:
    """The task spec the form describes, with only the keys its type knows."""
    kind = form_str(form, "type")
    if kind not in all_types():
        raise Invalid("choose a task type", details={"field": "task.type"}, reason="union_tag_invalid")
    spec: dict[str, Any] = {"type": kind}
    model_fields = all_types()[kind].spec_model.model_fields
    for f in all_types()[kind].form_fields:
        if f.kind == "bool":
            spec[f.key] = form.get(f.key) == "on"
        elif f.kind == "lines":
            lines = _lines(form_str(form, f.key))
            if lines or model_fields[f.key].is_required():  # empty: the spec's default (a document's one label)
                spec[f.key] = lines
        elif f.kind == "int":
            spec[f.key] = _int(form, f.key, f.default, field=f"task.{f.key}")
        elif form_str(form, f.key):
            spec[f.key] = form_str(form, f.key)
    return spec


def _new_form(request: Request, values: dict[str, Any], error: str | None = None, status: int = 200) -> HTMLResponse:
    return render(request, "console_new.html", status=status, title=translator(request)("new.title"),
                  types=type_names(), fields=form_fields(), values=values, error=error)


@router.get("/console/projects/new", response_class=HTMLResponse)
def new_project_form(request: Request, user: PageUser) -> HTMLResponse:
    ensure_may_create_project(user)
    values = {"type": "classification", "redundancy_min": "1", "redundancy_max": "1", "workforce": "shared"}
    for task_type in all_types().values():
        for f in task_type.form_fields:
            if f.default is not None and f.key not in values:
                values[f.key] = ("on" if f.default else "") if f.kind == "bool" else str(f.default)
    return _new_form(request, values)


@router.post("/console/projects/new", response_class=HTMLResponse)
def create_project(request: Request, user: PageUser, form: CheckedForm, db: Db) -> Response:
    org_id = ensure_may_create_project(user)
    values = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf"}
    try:
        lo = _int(form, "redundancy_min", 1, field="redundancy.min")
        target_raw = form_str(form, "redundancy_target")
        redundancy: dict[str, Any] = {"min": lo, "max": _int(form, "redundancy_max", lo, field="redundancy.max")}
        if target_raw:
            try:
                redundancy["target"] = float(target_raw)
            except ValueError:
                raise Invalid("redundancy.target must be a number", details={"field": "redundancy.target"},
                              reason="float_parsing") from None
        name = form_str(form, "name")
        if not name:
            raise Invalid("name the project", details={"field": "name"}, reason="missing")
        spec = spec_from_form(form)
        project = write(db, lambda session: projects.create_project(
            session, org_id=org_id, actor=user, name=name, task=spec, instructions=form_str(form, "instructions"),
            redundancy=redundancy, workforce=form_str(form, "workforce") or "shared"))
    except Invalid as exc:
        return _new_form(request, values, error=describe(translator(request), exc), status=422)
    return RedirectResponse(f"/console/projects/{project.id}", status_code=303)


# --- a project ---------------------------------------------------------------------------------

# Annotators listed on a project's page, those with the most answers first.
PEOPLE_LISTED = 100


@router.get("/console/projects/{project_id}", response_class=HTMLResponse)
def project_page(project_id: PageId, request: Request, user: PageUser, db: Db, settings: AppSettings) -> HTMLResponse:
    t = translator(request)
    now = utcnow()
    secret = settings.secret_key or ""

    def work(session: Session) -> tuple[dict[str, Any], Read]:
        project = ensure_customer_access(user, session.get(Project, project_id))
        stats = results.project_stats(session, project_id=project.id, now=now)
        found = insights.project_insights(session, project=project)
        hourly = insights.hourly_throughput(session, project_id=project.id, now=now)
        review = reviews.report(session, project=project,
                                name=pseudonyms(secret, project.id))
        # A reviewer among the organization's people: their way into the review queue.
        mine = reviews.waiting(session, project_ids=[project.id], reviewer_id=user.id).get(project.id, 0) \
            if may_review(user, project) else None
        return {"project": project, "stats": stats, "insights": found, "hourly": hourly, "review": review,
                "to_review": mine, "models": model_names(session, org_id=project.org_id)}, \
            Read("stats.read", "project", project.id, project.org_id)

    data = read_then_record(db, user, work)
    project, stats, found = data["project"], data["stats"], data["insights"]
    models = data["models"]  # people and models in two tables, a model by its name
    # The people with the most of the latest answers (insights' sample), at most PEOPLE_LISTED:
    # a large workforce put tens of thousands of rows on the page.
    humans = [r for r in found.annotators if r.annotator_id not in models]
    people = [{"name": pseudonym(secret, project.id, r.annotator_id), "annotations": r.annotations,
               "median_seconds": r.median_seconds, "agreement": r.agreement}
              for r in humans[:PEOPLE_LISTED]]
    machines = [{"name": models[r.annotator_id], "annotations": r.annotations, "agreement": r.agreement}
                for r in found.annotators if r.annotator_id in models]
    status_names: dict[str, str] = {s: t("status." + s) for s in TaskStatus}
    svg = {
        "status": charts.status_bar(stats["tasks"], label=t("project.by_status"), names=status_names,
                                    chart_id="chart-status"),
        "throughput": charts.bar_chart([(t("project.hour", hour=f"{when:%H}"), n) for when, n in data["hourly"]],
                                       label=t("project.throughput"), chart_id="chart-throughput", every=3),
        "agreement": charts.meter(found.pair_agreement, label=t("project.agreement"), chart_id="chart-agreement"),
        "confusion": charts.heatmap(found.categories, found.confusion, label=t("project.confusion"),
                                    chart_id="chart-confusion", row_title=t("project.confusion_rows"),
                                    col_title=t("project.confusion_cols")) if found.categories else None,
        "corrections": _corrections_chart(data["review"], t),
    }
    return render(request, "console_project.html", title=isolate(project.name), project=project, stats=stats,
                  insights=found, people=people, people_total=len(humans), machines=machines, svg=svg,
                  error_strings=script_strings(t),
                  review=data["review"],
                  policy=parse_policy(project.review_policy), reopen_choices=REOPEN, to_review=data["to_review"])


def _corrections_chart(report: dict[str, Any], t: Translator) -> Any:
    days = list(reversed(report["corrections_by_day"]))  # the report is newest first
    if not days:
        return None
    return charts.bar_chart([(d["day"][5:], d["corrections"]) for d in days], label=t("review.corrections"),
                            chart_id="chart-corrections", colour=charts.PALETTE[2], every=max(1, len(days) // 10))


@router.get("/console/projects/{project_id}/tasks", response_class=HTMLResponse)
def task_browser(project_id: PageId, request: Request, user: PageUser, db: Db, settings: AppSettings) -> HTMLResponse:
    status = request.query_params.get("status") or None
    below = request.query_params.get("below_target") == "on"
    unique_id = request.query_params.get("unique_id", "").strip() or None
    after = cursor_from_text(request.query_params.get("after"), field="after")
    limit = 50

    def work(session: Session) -> tuple[Project, list[Task]]:
        project = ensure_customer_access(user, session.get(Project, project_id))
        if status is not None and status not in list(TaskStatus):
            raise Invalid("unknown status", details={"field": "status"})
        query = select(Task).where(Task.project_id == project.id)
        if status:
            query = query.where(Task.status == status)
        if below:
            query = query.where(Task.below_target.is_(True))
        if unique_id:
            query = query.where(Task.unique_id == unique_id)
        if after is not None:
            query = query.where(Task.id > after)
        page = list(session.scalars(query.order_by(Task.id).limit(limit)))
        audit.record(session, actor=user, action="tasks.read", object_type="project", object_id=project.id,
                     org_id=project.org_id, details={"count": len(page), "via": "console"})
        return project, page

    project, page = write(db, work)
    rows = [{"id": task.id, "unique_id": task.unique_id, "status": task.status, "n": task.n_annotations,
             "required": task.required, "confidence": task.confidence, "method": task.method,
             "review": task.review_status, "audit": task.audit_status,
             "preview": _preview(task.data),
             "response": _preview(task.response) if task.response is not None else ""} for task in page]
    return render(request, "console_tasks.html", title=isolate(project.name), project=project, rows=rows,
                  status_filter=status, below=below, unique_id=unique_id or "",
                  next_after=page[-1].id if len(page) == limit else None, statuses=tuple(TaskStatus))


@router.get("/console/projects/{project_id}/label-errors", response_class=HTMLResponse)
def label_error_page(project_id: PageId, request: Request, user: PageUser, db: Db) -> HTMLResponse:
    """The delivered tasks likeliest wrong, each with a button that sends it to review."""

    def work(session: Session) -> tuple[tuple[Project, label_errors.LabelErrors], Read]:
        project = ensure_customer_access(user, session.get(Project, project_id))
        found = label_errors.likely_errors(session, project=project, limit=50)
        return (project, found), Read("label_errors.read", "project", project.id, project.org_id, {"via": "console"})

    project, found = read_then_record(db, user, work)
    t = translator(request)
    rows = [{"id": e.task.id, "unique_id": e.task.unique_id, "preview": _preview(e.task.data),
             "response": _preview(e.task.response) if e.task.response is not None else "", "p_wrong": e.p_wrong,
             "spread": " · ".join(f"{_preview(a)} × {n}" for a, n in e.answers)} for e in found.items]
    return render(request, "console_label_errors.html", title=isolate(project.name), project=project, rows=rows,
                  ranking=found.ranking, model=found.model,
                  strings={"sent": t("likely.sent"), "offline": t("ws.offline"), "errors": script_strings(t)})


def _preview(value: Any) -> str:
    text = " · ".join(f"{k}: {v}" for k, v in value.items()) if isinstance(value, dict) else str(value)
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


@router.get("/console/tasks/{task_id}", response_class=HTMLResponse)
def task_page(task_id: PageId, request: Request, user: PageUser, db: Db, settings: AppSettings) -> HTMLResponse:
    def work(session: Session) -> tuple[Project, Task, list[Annotation], list[Review]]:
        task = session.get(Task, task_id)
        try:
            project = ensure_customer_access(user, session.get(Project, task.project_id) if task else None)
        except NotFound:
            raise NotFound("task not found") from None
        assert task is not None
        found = list(session.scalars(select(Annotation).where(Annotation.task_id == task.id).order_by(Annotation.id)))
        verdicts = reviews.history(session, task_id=task.id)
        audit.record(session, actor=user, action="task.read", object_type="task", object_id=task.id,
                     org_id=project.org_id, details={"via": "console"})
        return project, task, found, verdicts

    project, task, found, verdicts = write(db, work)
    secret = settings.secret_key or ""
    annotations = [{"annotator": pseudonym(secret, project.id, a.annotator_id), "answer": a.answer,
                    "seconds": a.seconds, "created_at": a.created_at, "sent_back": a.rejected_at is not None,
                    "reason": a.rejection_reason} for a in found]
    history = [{"stage": v.stage, "action": v.action, "reason": v.reason, "answer": v.answer, "round": v.round,
                "when": v.ended_at, "who": pseudonym(secret, project.id, v.reviewer_id)} for v in verdicts]
    t = translator(request)
    return render(request, "console_task.html", title=isolate(project.name), project=project, task=task,
                  annotations=annotations, history=history, auditable=reviews.auditable(task, verdicts),
                  audit_strings={"reason_needed": t("audit.reason_needed"), "offline": t("ws.offline"),
                                 "errors": script_strings(t)})

