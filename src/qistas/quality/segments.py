"""Time segments of a recording: consensus segments with boundaries from every annotator.

Answers are ``{"segments": [{"start", "end", "label"}]}`` in seconds, ``[start, end)``; a
task's ``context`` is ``None`` or ``{"duration": seconds}`` (consensus segments are then
kept within the recording).

A segment is a box of height one: ``[start, end)`` is the box ``(start, 0, end - start, 1)``,
whose IoU with another such box is the segments' temporal IoU (intersection over union of
their time ranges). So the aggregator is :class:`~qistas.quality.boxes.BoxAggregator`'s
reliability-weighted IoU clustering, read in time: same-label segments cluster at temporal
IoU >= ``min_iou``, a cluster is kept when its support (the reliability weight of its
annotators over everyone's) reaches ``min_support``, and its boundaries are the weighted
medians of its members' starts and ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._base import BaseEstimator
from .boxes import BoxAggregator, boxes_match
from .boxes import answer_score as box_score
from .structured import TaskResult, WorkerAnswer


def _as_boxes(answer: Any) -> dict[str, Any]:
    segments = answer.get("segments", []) if isinstance(answer, dict) else answer
    out = []
    for s in segments:
        start, end = float(s["start"]), float(s["end"])
        if end < start:
            raise ValueError(f"segment end {end} before start {start}")
        out.append({"x": start, "y": 0.0, "w": end - start, "h": 1.0, "label": s.get("label")})
    return {"boxes": out}


def _as_segments(response: dict[str, Any]) -> dict[str, Any]:
    out = []
    for b in response["boxes"]:
        # rounded to the microsecond: the medians' sums leave float noise (1.2 + 2.3 = 3.4999999999999996)
        segment = {"start": round(b["x"], 6), "end": round(b["x"] + b["w"], 6), "label": b["label"]}
        if "confidence" in b:
            segment["confidence"] = b["confidence"]
        out.append(segment)
    out.sort(key=lambda s: (s["start"], s["end"], str(s["label"])))
    return {"segments": out}


def _box_context(context: Any) -> Any:
    if isinstance(context, dict) and isinstance(context.get("duration"), int | float):
        return {"width": float(context["duration"]), "height": 1.0}
    return None


def _result(found: TaskResult) -> TaskResult:
    return TaskResult(_as_segments(found.response), found.confidence, found.needs_review, found.extra)


def temporal_iou(a: dict[str, Any], b: dict[str, Any]) -> float:
    """Intersection over union of two segments' time ranges (0 when their labels differ)."""
    if a.get("label") != b.get("label"):
        return 0.0
    inter = max(0.0, min(a["end"], b["end"]) - max(a["start"], b["start"]))
    union = max(a["end"], b["end"]) - min(a["start"], b["start"])
    return inter / union if union > 0 else float(a["start"] == b["start"] and a["end"] == b["end"])


def segments_match(answer: Any, gold: Any, *, min_iou: float = 0.5) -> bool:
    """True when ``answer`` has exactly the gold segments: a one-to-one matching of
    same-label segments pairs every gold segment with one at temporal IoU >= ``min_iou``,
    and none is left over."""
    return boxes_match(_as_boxes(answer), _as_boxes(gold), min_iou=min_iou)


def answer_score(answer: Any, response: Any, context: Any = None) -> float:
    """IoU-weighted F1 of ``answer``'s segments against the consensus, in [0, 1]
    (:func:`qistas.quality.boxes.answer_score` in time); two empty answers score 1."""
    return box_score(_as_boxes(answer), _as_boxes(response))


class SegmentAggregator(BaseEstimator):
    """Consensus time segments weighted by each annotator's learned reliability.

    :class:`~qistas.quality.boxes.BoxAggregator` on segments read as boxes of height one
    (see the module docstring): the parameters, the worker model (``params_``:
    ``{"quality": [...], "prior_quality": float}``) and the confidence are the box
    aggregator's. A segment's ``confidence`` is ``support * agreement`` (agreement: the
    weighted mean temporal IoU of the cluster's segments with the consensus segment); the
    task's ``confidence`` is the lowest segment confidence, lowered to ``1 - missed`` when a
    cluster some annotators marked was left out; a recording everybody left empty has
    confidence 1. ``needs_review`` below ``review_below``; ``extra``: ``{"agreement": mean
    IoU-F1 of the answers with the consensus}``.
    """

    def __init__(
        self,
        labels: list[str] | None = None,
        *,
        min_iou: float = 0.5,
        min_support: float = 0.5,
        prior_answers: float = 5.0,
        review_below: float = 0.5,
        n_iter: int = 20,
        tol: float = 1e-4,
    ) -> None:
        self.labels = labels
        self.min_iou = min_iou
        self.min_support = min_support
        self.prior_answers = prior_answers
        self.review_below = review_below
        self.n_iter = n_iter
        self.tol = tol

    def _boxes(self) -> BoxAggregator:
        box = getattr(self, "_box", None)
        if box is None:
            box = self._box = BoxAggregator(**self.get_params())
        return box

    def load_params(self, params: dict[str, Any]) -> SegmentAggregator:
        self._boxes().load_params(params)
        self.params_ = dict(self._box.params_)
        return self

    def aggregate(self, answers: Sequence[WorkerAnswer], context: Any = None) -> TaskResult:
        """Consensus segments of one recording from ``(worker, answer)`` pairs."""
        return _result(self._boxes().aggregate([(w, _as_boxes(a)) for w, a in answers], _box_context(context)))

    def fit(self, items: Sequence[Sequence[WorkerAnswer]], *, n_workers: int,
            contexts: Sequence[Any] | None = None) -> SegmentAggregator:
        """Learn each worker's reliability from all tasks; sets ``results_``, ``params_``,
        ``n_iter_``, ``converged_``."""
        box = self._boxes()
        box.fit([[(w, _as_boxes(a)) for w, a in answers] for answers in items], n_workers=n_workers,
                contexts=None if contexts is None else [_box_context(c) for c in contexts])
        self.results_ = [_result(r) for r in box.results_]
        self.params_ = dict(box.params_)
        self.n_iter_, self.converged_ = box.n_iter_, box.converged_
        return self
