"""Bounding boxes: reliability-weighted consensus boxes per image, worker reliability per project.

Answers are ``{"boxes": [{"x", "y", "w", "h", "label"}]}`` in pixels; a task's ``context``
is ``None`` or ``{"width": w, "height": h}`` (consensus boxes are then clipped to the image).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from ._base import BaseEstimator
from ._validation import check_n_iter, check_positive
from .consensus import Box, _as_box, _cluster, box_iou
from .structured import TaskResult, WorkerAnswer, check_items

_EPS = 1e-12  # weight sums closer than this count as equal (ties are rules, not rounding)


@dataclass(frozen=True)
class Cluster:
    """One consensus box: its ``members`` (``(answer index, box)``, the seed first), the
    weighted-median ``box``, its ``support`` and ``agreement`` and the members' ``weights``."""

    members: list[tuple[int, Box]]
    box: Box
    support: float
    agreement: float
    weights: list[float]

    @property
    def confidence(self) -> float:
        return self.support * self.agreement


def _boxes(answer: Any) -> list[Box]:
    if isinstance(answer, dict):
        answer = answer.get("boxes", [])
    return [_as_box(b) for b in answer]


def _match(a: list[Box], b: list[Box], min_iou: float) -> list[tuple[int, int, float]]:
    """Maximum-IoU one-to-one matching of same-label boxes (Hungarian algorithm); pairs
    below ``min_iou`` never match. Returns ``(i, j, iou)`` triples.

    Boxes of different labels never match (IoU 0), so each label is matched on its own;
    a label with one box on a side needs no assignment problem (equal IoUs go to the
    first pair in order)."""
    out: list[tuple[int, int, float]] = []
    for label in {box[4] for box in a} & {box[4] for box in b}:
        ia = [i for i, box in enumerate(a) if box[4] == label]
        ib = [j for j, box in enumerate(b) if box[4] == label]
        if len(ia) == 1 or len(ib) == 1:
            i, j, best = max(((i, j, box_iou(a[i], b[j])) for i in ia for j in ib), key=lambda p: p[2])
            if best >= min_iou:
                out.append((i, j, best))
            continue
        iou = np.array([[box_iou(a[i], b[j]) for j in ib] for i in ia])
        # pairs under the threshold get a gain of 0 so the assignment never prefers them
        gain = np.where(iou >= min_iou, iou + 1.0, 0.0)
        rows, cols = linear_sum_assignment(gain, maximize=True)
        out += [(ia[r], ib[c], float(iou[r, c])) for r, c in zip(rows, cols, strict=True) if iou[r, c] >= min_iou]
    return sorted(out)


def boxes_match(answer: Any, gold: Any, *, min_iou: float = 0.5) -> bool:
    """True when ``answer`` has exactly the gold boxes: a one-to-one matching of same-label
    boxes pairs every gold box with an answer box at IoU >= ``min_iou`` and the answer has
    no box left over."""
    a, g = _boxes(answer), _boxes(gold)
    return len(a) == len(g) and len(_match(a, g, min_iou)) == len(g)


def answer_score(answer: Any, response: Any, context: Any = None) -> float:
    """IoU-weighted F1 of ``answer`` against the consensus ``response``, in [0, 1].

    Boxes are matched one to one (same label, IoU >= 0.5, most total IoU); each match
    counts its IoU instead of 1: ``2 * sum(IoU) / (n_answer + n_response)``. Two empty
    answers score 1. ``context`` is unused (boxes are in pixels either way).
    """
    a, r = _boxes(answer), _boxes(response)
    if not a and not r:
        return 1.0
    return 2.0 * sum(m[2] for m in _match(a, r, 0.5)) / (len(a) + len(r))


def _weighted_median(values: Sequence[float], weights: Sequence[float]) -> float:
    """Weighted median; when the cumulative weight hits exactly half (within ``_EPS``),
    the midpoint of the two middle values, so equal weights give the ordinary median.
    (Plain Python: a cluster holds a handful of boxes, where numpy's overhead dominates.)"""
    pairs = sorted(zip(values, weights, strict=True), key=lambda p: p[0])  # stable
    total = sum(w for _, w in pairs)
    half, tol = total / 2.0, _EPS * total
    running = 0.0
    for k, (v, w) in enumerate(pairs):
        running += w
        if running >= half - tol:
            if abs(running - half) <= tol and k + 1 < len(pairs):
                return float((v + pairs[k + 1][0]) / 2.0)
            return float(v)
    return float(pairs[-1][0])


class BoxAggregator(BaseEstimator):
    """Consensus boxes weighted by each annotator's learned reliability.

    Per image, boxes of the same label are clustered by IoU: annotators are visited from
    the most to the least reliable (ties: lower worker index, then answer order) and each
    box joins the cluster whose seed (its most reliable box) overlaps it most at IoU
    >= ``min_iou``
    and that holds no box of the same annotator; otherwise it starts a cluster. A cluster
    is kept when its *support*, the reliability weight of its annotators over the weight
    of everyone who answered the task, is at least ``min_support``. Its box is the
    weighted median of each edge (left, top, right, bottom) of its members, which a single
    careless box cannot drag.

    Confidence. A box's ``confidence`` is ``support * agreement``, ``agreement`` the
    weighted mean IoU of the cluster's boxes with the consensus box. The task's
    ``confidence`` is the smaller of the lowest box confidence and ``1 - missed``,
    ``missed`` the support of the strongest cluster left out (a box that many thought was
    there); an image everybody left empty has confidence 1. ``needs_review`` when the task
    confidence is below ``review_below``. ``extra`` holds ``{"agreement": mean IoU-F1 of
    the answers with the consensus}``.

    Reliability (``fit``). Alternate: consensus of every task with the current weights ->
    each annotator's quality ``q_w``, their mean :func:`answer_score` against the
    consensus (IoU-weighted F1: a loose box, a missed box and an extra box all lower it),
    smoothed with ``prior_answers`` pseudo-answers of the mean quality of all answers
    (so a worker with few answers keeps about the average) -> weights ``q_w ** 2``, which
    halves a weak worker's say twice as fast as a linear weight. Unknown workers get the
    prior quality. Stops when no weight moves by more than ``tol``.

    ``params_``: ``{"quality": [q_w per worker], "prior_quality": float}``.

    This is the IoU-cluster consensus of crowd box annotation (Papadopoulos et al., 2017,
    "Extreme clicking for efficient object annotation", ICCV; the median-of-boxes rule of
    Su, Deng and Fei-Fei, 2012, "Crowdsourcing annotations for visual object detection",
    AAAI HCOMP workshop) with per-worker weights learned by the consensus-agreement
    iteration of truth-discovery methods (Li et al., 2014, "Resolving conflicts in
    heterogeneous data by truth discovery and source reliability estimation", SIGMOD).
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

    # ---- worker model -------------------------------------------------------------
    def _quality(self, worker: int) -> float:
        q: list[float] = getattr(self, "quality_", [])
        prior: float = getattr(self, "prior_quality_", 1.0)
        return q[worker] if 0 <= worker < len(q) else prior

    def load_params(self, params: dict[str, Any]) -> BoxAggregator:
        self.quality_ = [float(q) for q in params["quality"]]
        self.prior_quality_ = float(params["prior_quality"])
        self.params_ = {"quality": list(self.quality_), "prior_quality": self.prior_quality_}
        return self

    # ---- one task -----------------------------------------------------------------
    def aggregate(self, answers: Sequence[WorkerAnswer], context: Any = None) -> TaskResult:
        """Consensus boxes of one image from ``(worker, answer)`` pairs."""
        parsed = [(w, _boxes(a)) for w, a in answers]
        if self.labels is not None:
            allowed = set(self.labels)
            for _, bs in parsed:
                for b in bs:
                    if b[4] not in allowed:
                        raise ValueError(f"unknown box label {b[4]!r}")
        return self._aggregate(parsed, context)

    def _aggregate(self, parsed: list[tuple[int, list[Box]]], context: Any) -> TaskResult:
        if not parsed:
            return TaskResult({"boxes": []}, 0.0, True, {"agreement": float("nan")})
        kept, missed = self.consensus(parsed, context)
        boxes = []
        for found in kept:
            x, y, w, h, label = found.box
            boxes.append({"x": x, "y": y, "w": w, "h": h, "label": label, "confidence": found.confidence})
        boxes.sort(key=lambda b: (b["y"], b["x"], str(b["label"])))
        confidence = min([1.0 - missed, *(b["confidence"] for b in boxes)])
        response = {"boxes": boxes}
        scores = [answer_score(bs, response) for _, bs in parsed]
        extra = {"agreement": sum(scores) / len(scores)}
        return TaskResult(response, float(confidence), confidence < self.review_below, extra)

    def consensus(self, parsed: list[tuple[int, list[Box]]], context: Any = None) -> tuple[list[Cluster], float]:
        """The kept clusters of one task's boxes (``(worker, boxes)`` per answer, non-empty),
        and the support of the strongest cluster left out (0 when none was)."""
        weight = {i: self._quality(w) ** 2 for i, (w, _) in enumerate(parsed)}
        total = sum(weight.values())
        if total <= 0:  # everyone at quality 0: count heads instead
            weight = dict.fromkeys(weight, 1.0)
            total = float(len(weight))
        order = sorted(range(len(parsed)), key=lambda i: (-weight[i], parsed[i][0], i))
        kept, missed = [], 0.0
        for members in self._cluster(parsed, order):
            support = sum(weight[i] for i, _ in members) / total
            if support < self.min_support - _EPS:
                missed = max(missed, support)
                continue
            box = self._median_box(members, weight, context)
            ws = [weight[i] for i, _ in members]
            ious = [box_iou(b, box) for _, b in members]
            agreement = (sum(w * v for w, v in zip(ws, ious, strict=True)) / sum(ws) if sum(ws) > 0
                         else sum(ious) / len(ious))
            kept.append(Cluster(members, box, support, agreement, ws))
        return kept, missed

    def _cluster(self, parsed: list[tuple[int, list[Box]]], order: list[int]
                 ) -> list[list[tuple[int, Box]]]:
        """Greedy IoU clustering (``consensus._cluster``), the most reliable answers first, so
        each cluster's seed is its most reliable member's box."""
        clusters = _cluster([parsed[i][1] for i in order], box_iou, self.min_iou)
        return [[(order[position], box) for position, box in members] for members in clusters]

    @staticmethod
    def _median_box(members: list[tuple[int, Box]], weight: dict[int, float],
                    context: Any) -> Box:
        ws = [weight[i] for i, _ in members]
        if sum(ws) <= 0:
            ws = [1.0] * len(members)
        edges = [(b[0], b[1], b[0] + b[2], b[1] + b[3]) for _, b in members]
        x1, y1, x2, y2 = (_weighted_median([e[k] for e in edges], ws) for k in range(4))
        if isinstance(context, dict) and "width" in context and "height" in context:
            wd, ht = float(context["width"]), float(context["height"])
            x1, x2 = min(max(x1, 0.0), wd), min(max(x2, 0.0), wd)
            y1, y2 = min(max(y1, 0.0), ht), min(max(y2, 0.0), ht)
        return x1, y1, max(x2 - x1, 0.0), max(y2 - y1, 0.0), members[0][1][4]

    # ---- project ------------------------------------------------------------------
    def fit(self, items: Sequence[Sequence[WorkerAnswer]], *, n_workers: int,
            contexts: Sequence[Any] | None = None) -> BoxAggregator:
        """Learn each worker's reliability from all tasks; sets ``results_``, ``params_``,
        ``quality_``, ``prior_quality_``, ``n_iter_``, ``converged_``."""
        check_items(items, n_workers, contexts)
        check_n_iter(self.n_iter)
        check_positive(self.prior_answers, "prior_answers", strict=False)
        if not 0.0 < self.min_iou <= 1.0:
            raise ValueError(f"min_iou must be in (0, 1], got {self.min_iou}")
        parsed = [[(w, _boxes(a)) for w, a in answers] for answers in items]
        ctx = list(contexts) if contexts is not None else [None] * len(items)
        self.quality_ = [1.0] * n_workers
        self.prior_quality_ = 1.0
        self.converged_ = False
        results: list[TaskResult] = []
        for it in range(1, self.n_iter + 1):
            results = [self._aggregate(p, c) for p, c in zip(parsed, ctx, strict=True)]
            old = np.array(self.quality_) ** 2
            self._m_step(parsed, results, n_workers)
            self.n_iter_ = it
            if n_workers == 0 or np.max(np.abs(np.array(self.quality_) ** 2 - old)) <= self.tol:
                self.converged_ = True
                break
        self.results_ = [self._aggregate(p, c) for p, c in zip(parsed, ctx, strict=True)]
        self.params_ = {"quality": list(self.quality_), "prior_quality": self.prior_quality_}
        return self

    def _m_step(self, parsed: list[list[tuple[int, list[Box]]]], results: list[TaskResult],
                n_workers: int) -> None:
        """Quality = mean agreement with the consensus, shrunk to the mean of all answers
        by ``prior_answers`` pseudo-answers (a beta-binomial style posterior mean)."""
        total, count = np.zeros(n_workers), np.zeros(n_workers)
        for task, res in zip(parsed, results, strict=True):
            for w, bs in task:
                if w >= 0:
                    total[w] += answer_score(bs, res.response)
                    count[w] += 1
        n = count.sum()
        prior = float(total.sum() / n) if n > 0 else 1.0
        k = float(self.prior_answers)
        q = (total + k * prior) / np.maximum(count + k, _EPS)
        self.quality_ = [float(v) if math.isfinite(v) else prior for v in q]
        self.prior_quality_ = prior
