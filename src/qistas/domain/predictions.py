"""Models in the loop: predictions imported with tasks, shown to annotators as a pre-fill.

A task may carry up to ``MAX_PREDICTIONS`` predictions, each ``{"model", "answer", "score"?}``:
the answer validated and normalised by the task type like an annotator's, the score a number
in [0, 1]. The ``model`` string names a model version ("sentiment-v3"): reports group by it.

A project's ``prefill`` setting decides what annotators see:

- ``mode``: ``"never"`` (the default: nothing is read on the take), ``"always"`` (the
  best-scoring prediction) or ``"above"`` (the best-scoring one whose score is at least
  ``min_score``; an unscored prediction is never above anything);
- ``show_model``: whether the annotator is told which model made it (by default, never).

The annotation records the model whose prediction was shown (``prefill_model``) and whether
the answer submitted is that prediction, normalised answers compared (``prefill_kept``):
the report's measure of anchoring. Both are judged at submit against the project's setting
then, the one that decided the pre-fill unless it changed while the task was on screen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qistas.db.enums import TaskStatus
from qistas.db.models import Annotation, Project, Task
from qistas.domain.jsonsafe import check_storable
from qistas.domain.tasktypes import Spec, TaskType, validate_answer
from qistas.errors import Invalid

MAX_PREDICTIONS = 20
MAX_MODEL_CHARS = 200
MODES = ("never", "always", "above")
PREDICTION_KEYS = {"model", "answer", "score"}


@dataclass(frozen=True)
class PrefillPolicy:
    mode: str = "never"
    min_score: float = 0.0
    show_model: bool = False


NEVER = PrefillPolicy()


def parse_prefill(raw: dict[str, Any] | None) -> PrefillPolicy:
    """The policy from a project's ``prefill`` field; a bad field is 422 naming it."""
    if not raw:
        return NEVER
    if not isinstance(raw, dict):
        raise Invalid("prefill must be an object", details={"field": "prefill"})
    unknown = raw.keys() - PrefillPolicy.__dataclass_fields__.keys()
    if unknown:
        name = sorted(unknown)[0]
        raise Invalid(f"prefill.{name} is not a known field", details={"field": f"prefill.{name}"})
    policy = PrefillPolicy(**raw)
    score = policy.min_score
    checks = (
        ("mode", policy.mode in MODES, "'never', 'always' or 'above'"),
        ("min_score", isinstance(score, int | float) and not isinstance(score, bool) and 0 <= score <= 1,
         "a number in [0, 1]"),
        ("show_model", isinstance(policy.show_model, bool), "true or false"),
    )
    for name, ok, what in checks:
        if not ok:
            raise Invalid(f"prefill.{name} must be {what}", details={"field": f"prefill.{name}"})
    return policy


def shows_prefill(raw: dict[str, Any] | None) -> bool:
    """Whether the project may show a pre-fill at all: the take's only cost when it does not."""
    return bool(raw) and raw.get("mode", "never") != "never"  # type: ignore[union-attr]


def check_predictions(spec: Spec, data: dict[str, Any], raw: Any) -> list[dict[str, Any]] | None:
    """An import row's ``predictions``, validated and normalised; None for none."""
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise Invalid("predictions must be a list")
    if len(raw) > MAX_PREDICTIONS:
        raise Invalid(f"predictions: at most {MAX_PREDICTIONS} per task")
    checked = []
    for i, item in enumerate(raw):
        field = f"predictions[{i}]"
        if not isinstance(item, dict):
            raise Invalid(f"{field} must be an object with model and answer")
        unknown = item.keys() - PREDICTION_KEYS
        if unknown:
            raise Invalid(f"{field}.{sorted(unknown)[0]} is not a known field")
        model = item.get("model")
        if not isinstance(model, str) or not 1 <= len(model) <= MAX_MODEL_CHARS:
            raise Invalid(f"{field}.model must be a string of 1 to {MAX_MODEL_CHARS} characters")
        check_storable(model, f"{field}.model")
        score = item.get("score")
        if score is not None and (isinstance(score, bool) or not isinstance(score, int | float)
                                  or not 0 <= score <= 1):
            raise Invalid(f"{field}.score must be a number in [0, 1]")
        if "answer" not in item:
            raise Invalid(f"{field}.answer is required")
        check_storable(item["answer"], f"{field}.answer")
        try:
            answer = validate_answer(spec, data, item["answer"])
        except Invalid as exc:
            # The answer validator names fields "answer...": here the client wrote predictions[i].answer.
            raise Invalid(f"{field}." + exc.message) from None
        checked.append({"model": model, "answer": answer, "score": None if score is None else float(score)})
    return checked or None


def chosen(policy: PrefillPolicy, predictions: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    """The prediction to pre-fill with: the best-scoring the mode allows (the first of equals)."""
    if policy.mode == "never" or not predictions:
        return None
    best: dict[str, Any] | None = None
    best_key = -2.0
    for prediction in predictions:
        score = prediction.get("score")
        if policy.mode == "above" and (score is None or score < policy.min_score):
            continue
        key = -1.0 if score is None else score  # an unscored one only when nothing is scored
        if key > best_key:
            best, best_key = prediction, key
    return best


def prefill_view(raw_policy: dict[str, Any] | None, predictions: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    """What the annotator receives: the answer, and the model only when the project says so."""
    policy = parse_prefill(raw_policy)
    prediction = chosen(policy, predictions)
    if prediction is None:
        return None
    return {"answer": prediction["answer"], "model": prediction["model"] if policy.show_model else None}


def anchoring(raw_policy: dict[str, Any] | None, predictions: list[dict[str, Any]] | None,
              answer: Any) -> tuple[str | None, bool | None]:
    """(model shown, whether the normalised answer is its prediction) for a submitted answer."""
    if not shows_prefill(raw_policy):
        return None, None
    prediction = chosen(parse_prefill(raw_policy), predictions)
    if prediction is None:
        return None, None
    return prediction["model"], prediction["answer"] == answer


def model_report(session: Session, *, project: Project, spec: Spec, task_type: TaskType[Any]) -> list[dict[str, Any]]:
    """Per model version: tasks predicted; agreement with the final answers of completed tasks
    (the type's per-answer score, and per final label for types with categories); the
    answers it pre-filled and the share the annotators kept (anchoring)."""
    labels = task_type.categories(spec)
    models: dict[str, dict[str, Any]] = {}

    def entry(model: str) -> dict[str, Any]:
        return models.setdefault(model, {"tasks": 0, "scores": [], "per_label": {}, "shown": 0, "kept": 0})

    rows = session.execute(select(Task.status, Task.response, Task.predictions).where(
        Task.project_id == project.id, Task.predictions.is_not(None)))
    for status, response, predictions in rows:
        final = response if status == TaskStatus.COMPLETED and response is not None else None
        for model in {p["model"] for p in predictions or ()}:
            entry(model)["tasks"] += 1
        if final is None:
            continue
        final_label = task_type.category(spec, final) if labels else None
        for prediction in predictions or ():
            stats = entry(prediction["model"])
            score = task_type.answer_score(spec, {}, prediction["answer"], final)
            stats["scores"].append(score)
            if final_label is not None:
                stats["per_label"].setdefault(final_label, []).append(
                    task_type.category(spec, prediction["answer"]) == final_label)
    shown = session.execute(
        select(Annotation.prefill_model, Annotation.prefill_kept, func.count())
        .where(Annotation.project_id == project.id, Annotation.prefill_model.is_not(None))
        .group_by(Annotation.prefill_model, Annotation.prefill_kept))
    for model, kept, count in shown:
        stats = entry(str(model))
        stats["shown"] += count
        stats["kept"] += count if kept else 0
    report = []
    for model in sorted(models):
        stats = models[model]
        scores = stats["scores"]
        item: dict[str, Any] = {
            "model": model,
            "tasks": stats["tasks"],
            "compared": len(scores),
            "agreement": round(sum(scores) / len(scores), 4) if scores else None,
            "prefilled": stats["shown"],
            "kept": stats["kept"],
            "kept_share": round(stats["kept"] / stats["shown"], 4) if stats["shown"] else None,
        }
        if labels:
            item["labels"] = [
                {"label": label, "compared": len(hits := stats["per_label"].get(label, [])),
                 "agreement": round(sum(hits) / len(hits), 4) if hits else None}
                for label in labels
            ]
        report.append(item)
    return report
