"""Reliability-weighted consensus of objects drawn on an image: the machinery polygons and
keypoint instances share.

An answer holds a list of objects; two objects of one task are compared by a similarity in
[0, 1] (mask IoU for polygons, OKS for keypoint instances), 0 when their labels differ.
Per task, objects are clustered across annotators, one object per annotator per cluster; a
cluster that enough of the annotators' reliability weight supports becomes one consensus
object. Per project, each annotator's reliability is learned by alternating consensus and
agreement with it. Subclasses say how an answer parses into objects, how two objects compare,
how a cluster becomes one object and how an object is written back.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np
from scipy.optimize import linear_sum_assignment

from ._base import BaseEstimator
from ._validation import check_n_iter, check_positive
from .consensus import _cluster
from .structured import TaskResult, WorkerAnswer, check_items

_EPS = 1e-12  # weight sums closer than this count as equal (ties are rules, not rounding)

T = TypeVar("T")
Similarity = Callable[[Any, Any], float]


def match(a: Sequence[T], b: Sequence[T], similarity: Callable[[T, T], float],
          least: float) -> list[tuple[int, int, float]]:
    """Most-similar one-to-one matching of ``a``'s and ``b``'s objects (Hungarian algorithm);
    pairs below ``least`` never match. Returns ``(i, j, similarity)`` triples, sorted."""
    if not a or not b:
        return []
    sim = np.array([[similarity(x, y) for y in b] for x in a])
    # pairs under the threshold gain nothing, so the assignment never prefers them
    gain = np.where(sim >= least, sim + 1.0, 0.0)
    rows, cols = linear_sum_assignment(gain, maximize=True)
    return sorted((int(r), int(c), float(sim[r, c])) for r, c in zip(rows, cols, strict=True) if sim[r, c] >= least)


def matched_f1(a: Sequence[T], b: Sequence[T], similarity: Callable[[T, T], float], least: float) -> float:
    """Similarity-weighted F1 of two object lists: ``2 * sum(similarity of matched pairs) /
    (len(a) + len(b))``; two empty lists agree fully."""
    if not a and not b:
        return 1.0
    return 2.0 * sum(m[2] for m in match(a, b, similarity, least)) / (len(a) + len(b))


class ObjectAggregator(BaseEstimator, Generic[T]):
    """Consensus objects of one image weighted by each annotator's learned reliability.

    Per task, annotators are visited from the most to the least reliable (ties: lower worker
    index, then answer order); each object joins the cluster whose seed (its most reliable
    object) is most similar to it at ``least`` or more and that holds no object of the same
    annotator, else it starts a cluster. A cluster is kept when its *support*, the
    reliability weight of its annotators over the weight of everyone who answered the task,
    is at least ``min_support``; the subclass's ``_merge`` makes its object.

    Confidence: an object's ``confidence`` is ``support * agreement``, ``agreement`` the
    weighted mean similarity of the cluster's objects with the consensus object. The task's
    ``confidence`` is the smaller of the lowest object confidence and ``1 - missed``,
    ``missed`` the support of the strongest cluster left out; an image everybody left empty
    has confidence 1. ``needs_review`` below ``review_below``. ``extra``:
    ``{"agreement": mean similarity-weighted F1 of the answers with the consensus}``.

    Reliability (``fit``): consensus of every task with the current weights -> each
    annotator's quality ``q_w``, their mean F1 against the consensus, shrunk towards the
    mean of all answers by ``prior_answers`` pseudo-answers -> weights ``q_w ** 2``; until
    no weight moves by more than ``tol``. Unknown workers get the prior quality. This is the
    truth-discovery iteration (Li et al., 2014, "Resolving conflicts in heterogeneous data by
    truth discovery and source reliability estimation", SIGMOD), as ``BoxAggregator`` runs it.

    ``params_``: ``{"quality": [q_w per worker], "prior_quality": float}``.
    """

    #: The answer's key holding the objects (``"polygons"``, ``"instances"``).
    key: ClassVar[str]

    labels: list[str] | None
    min_support: float
    prior_answers: float
    review_below: float
    n_iter: int
    tol: float

    # ---- what a subclass provides -------------------------------------------------
    @property
    def least(self) -> float:
        """The similarity at which two objects may be one."""
        raise NotImplementedError

    def _parse(self, raw: Any) -> T:
        raise NotImplementedError

    def _label(self, item: T) -> Any:
        raise NotImplementedError

    def similarity(self, a: T, b: T) -> float:
        """In [0, 1]; 0 when the labels differ."""
        raise NotImplementedError

    def _merge(self, members: list[T], weights: list[float], context: Any) -> T:
        raise NotImplementedError

    def _write(self, item: T, confidence: float | None) -> dict[str, Any]:
        raise NotImplementedError

    def _order(self, written: dict[str, Any]) -> tuple[Any, ...]:
        return ()

    def _extra(self, consensus: list[T]) -> dict[str, Any]:
        """What a task's result adds about its consensus objects (in the response's order)."""
        return {}

    # ---- answers ------------------------------------------------------------------
    def objects(self, answer: Any) -> list[T]:
        """An answer's (or a response's) objects."""
        raw = answer.get(self.key, []) if isinstance(answer, dict) else answer
        found = [self._parse(item) for item in raw]
        if self.labels is not None:
            allowed = set(self.labels)
            for item in found:
                if self._label(item) not in allowed:
                    raise ValueError(f"unknown label {self._label(item)!r}")
        return found

    def score(self, answer: Any, response: Any) -> float:
        """One answer's similarity-weighted F1 against a response, in [0, 1]."""
        return matched_f1(self.objects(answer), self.objects(response), self.similarity, self.least)

    def matches(self, answer: Any, gold: Any, least: float) -> bool:
        """Every gold object matched one to one at ``least`` or more, and nothing left over."""
        a, g = self.objects(answer), self.objects(gold)
        return len(a) == len(g) and len(match(a, g, self.similarity, least)) == len(g)

    # ---- worker model -------------------------------------------------------------
    def _quality(self, worker: int) -> float:
        q: list[float] = getattr(self, "quality_", [])
        prior: float = getattr(self, "prior_quality_", 1.0)
        return q[worker] if 0 <= worker < len(q) else prior

    def load_params(self, params: dict[str, Any]) -> ObjectAggregator[T]:
        self.quality_ = [float(q) for q in params["quality"]]
        self.prior_quality_ = float(params["prior_quality"])
        self.params_ = {"quality": list(self.quality_), "prior_quality": self.prior_quality_}
        return self

    # ---- one task -----------------------------------------------------------------
    def aggregate(self, answers: Sequence[WorkerAnswer], context: Any = None) -> TaskResult:
        """Consensus objects of one image from ``(worker, answer)`` pairs."""
        return self._aggregate([(w, self.objects(a)) for w, a in answers], context)

    def _aggregate(self, parsed: list[tuple[int, list[T]]], context: Any) -> TaskResult:
        if not parsed:
            return TaskResult({self.key: []}, 0.0, True, {"agreement": float("nan")})
        weight = [self._quality(w) ** 2 for w, _ in parsed]
        if sum(weight) <= 0:  # everyone at quality 0: count heads instead
            weight = [1.0] * len(parsed)
        total = sum(weight)
        order = sorted(range(len(parsed)), key=lambda i: (-weight[i], parsed[i][0], i))
        known: dict[tuple[int, int], float] = {}

        def similarity(a: T, b: T) -> float:  # each pair once per task (objects live for the call)
            key = (id(a), id(b))
            if key not in known:
                known[key] = self.similarity(a, b)
            return known[key]

        clusters = _cluster([parsed[i][1] for i in order], similarity, self.least)
        kept: list[tuple[T, float]] = []
        missed = 0.0
        for members in clusters:
            who = [order[position] for position, _ in members]
            support = sum(weight[i] for i in who) / total
            if support < self.min_support - _EPS:
                missed = max(missed, support)
                continue
            items, ws = [item for _, item in members], [weight[i] for i in who]
            merged = self._merge(items, ws, context)
            sims = [similarity(item, merged) for item in items]
            agreement = sum(w * s for w, s in zip(ws, sims, strict=True)) / sum(ws)
            kept.append((merged, support * agreement))
        kept.sort(key=lambda pair: self._order(self._write(pair[0], None)))
        written = [self._write(item, confidence) for item, confidence in kept]
        confidence = min([1.0 - missed, *(c for _, c in kept)])
        consensus = [item for item, _ in kept]
        scores = [matched_f1(items, consensus, similarity, self.least) for _, items in parsed]
        return TaskResult({self.key: written}, float(confidence), confidence < self.review_below,
                          {"agreement": sum(scores) / len(scores), **self._extra(consensus)})

    # ---- project ------------------------------------------------------------------
    def fit(self, items: Sequence[Sequence[WorkerAnswer]], *, n_workers: int,
            contexts: Sequence[Any] | None = None) -> ObjectAggregator[T]:
        """Learn each worker's reliability from all tasks; sets ``results_``, ``params_``,
        ``quality_``, ``prior_quality_``, ``n_iter_``, ``converged_``."""
        check_items(items, n_workers, contexts)
        check_n_iter(self.n_iter)
        check_positive(self.prior_answers, "prior_answers", strict=False)
        if not 0.0 < self.least <= 1.0:
            raise ValueError(f"the matching threshold must be in (0, 1], got {self.least}")
        parsed = [[(w, self.objects(a)) for w, a in answers] for answers in items]
        ctx = list(contexts) if contexts is not None else [None] * len(items)
        self.quality_ = [1.0] * n_workers
        self.prior_quality_ = 1.0
        self.converged_ = False
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

    def _m_step(self, parsed: list[list[tuple[int, list[T]]]], results: list[TaskResult], n_workers: int) -> None:
        """Quality = mean agreement with the consensus, shrunk to the mean of all answers by
        ``prior_answers`` pseudo-answers (a beta-binomial style posterior mean)."""
        total, count = np.zeros(n_workers), np.zeros(n_workers)
        for task, res in zip(parsed, results, strict=True):
            consensus = self.objects(res.response)
            for w, items in task:
                if w >= 0:
                    total[w] += matched_f1(items, consensus, self.similarity, self.least)
                    count[w] += 1
        n = count.sum()
        prior = float(total.sum() / n) if n > 0 else 1.0
        k = float(self.prior_answers)
        q = (total + k * prior) / np.maximum(count + k, _EPS)
        self.quality_ = [float(v) if math.isfinite(v) else prior for v in q]
        self.prior_quality_ = prior
