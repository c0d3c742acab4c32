"""Ranking tasks: aggregate annotators' orders of a task's responses (Borda, Kemeny)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._base import BaseEstimator
from ._validation import ConvergenceWarning, as_index_array, check_n_iter, check_positive
from .structured import TaskResult, WorkerAnswer, check_items


def borda_scores(orders: Sequence[Sequence[int]], n_items: int | None = None) -> np.ndarray:
    """Mean Borda score per item, in [0, 1] (1 = ranked first by everyone).

    Each order lists item indices best first. In an order of the ``m`` items, position
    ``r`` earns ``(m - 1 - r) / (m - 1)``; items an annotator left out share the points
    of the remaining positions equally (a partial order says nothing about them).
    """
    if len(orders) == 0:
        raise ValueError("no orders given")
    clean = [as_index_array(list(o), "order") for o in orders]
    for o in clean:
        if np.unique(o).size != o.size:
            raise ValueError("an order lists an item twice")
    found = max((int(o.max()) + 1 for o in clean if o.size), default=0)
    m = found if n_items is None else int(n_items)
    if m < found:
        raise ValueError(f"n_items={n_items} but item {found - 1} was ranked")
    if m < 2:
        return np.ones(m)
    total = np.zeros(m)
    for o in clean:
        pts = np.empty(m)
        ranked = (m - 1 - np.arange(o.size)) / (m - 1)
        rest = np.setdiff1d(np.arange(m), o)
        pts[o] = ranked
        if rest.size:
            # positions o.size .. m-1 are left for the unranked items
            pts[rest] = np.mean((m - 1 - np.arange(o.size, m)) / (m - 1))
        total += pts
    return total / len(clean)


class Borda(BaseEstimator):
    """Borda count per task.

    ``fit(tasks, orders, n_items=None)``: ``tasks[i]`` is the task of ``orders[i]``, an
    annotator's order of that task's items (best first). ``n_items`` is an int or one
    int per task. Fitted: ``scores_`` (list of arrays, one per task, see
    :func:`borda_scores`) and ``orders_`` (consensus orders, ties to the lower index).
    Tasks without any order get empty arrays.
    """

    def __init__(self) -> None:
        pass

    def fit(
        self, tasks: object, orders: Sequence[Sequence[int]], *, n_items: object = None
    ) -> Borda:
        t = as_index_array(tasks, "tasks")
        if t.size == 0:
            raise ValueError("no orders given")
        if len(orders) != t.size:
            raise ValueError("tasks and orders must have equal length")
        n_tasks = int(t.max()) + 1
        per_task: list[list[Sequence[int]]] = [[] for _ in range(n_tasks)]
        for task, order in zip(t.tolist(), orders, strict=True):
            per_task[task].append(order)
        sizes = np.broadcast_to(np.asarray(n_items if n_items is not None else -1), (n_tasks,))
        self.scores_, self.orders_ = [], []
        for task, group in enumerate(per_task):
            if not group:
                self.scores_.append(np.zeros(0))
                self.orders_.append(np.zeros(0, dtype=np.int64))
                continue
            size = int(sizes[task])
            s = borda_scores(group, None if size < 0 else size)
            self.scores_.append(s)
            self.orders_.append(np.argsort(-s, kind="stable"))
        return self


def kendall_tau(x: Sequence[int] | np.ndarray, y: Sequence[int] | np.ndarray) -> float:
    """Kendall's tau between two orders of the same items 0..k-1 (best first); 1 if k < 2."""
    k = len(x)
    if k < 2:
        return 1.0
    px, py = np.empty(k, np.int64), np.empty(k, np.int64)
    px[np.asarray(x)] = np.arange(k)
    py[np.asarray(y)] = np.arange(k)
    agree = np.sign(px[:, None] - px[None, :]) * np.sign(py[:, None] - py[None, :])
    return float(agree.sum()) / (k * (k - 1))


def mallows_expected_distance(theta: np.ndarray, k: np.ndarray) -> np.ndarray:
    """E[Kendall distance] under Mallows(theta) on k items (Fligner and Verducci 1986):
    ``k e^-t / (1 - e^-t) - sum_j j e^-jt / (1 - e^-jt)``; ``k (k - 1) / 4`` at theta 0."""
    theta = np.maximum(np.asarray(theta, dtype=np.float64), 1e-6)  # the limit at 0 is smooth
    k = np.asarray(k, dtype=np.float64)
    out = k * np.exp(-theta) / -np.expm1(-theta)
    for j in range(1, int(k.max(initial=1)) + 1):
        jt = j * theta
        out -= np.where(j <= k, j * np.exp(-jt) / -np.expm1(-jt), 0.0)
    return out


def _above(orders: list[np.ndarray], k: int) -> np.ndarray:
    """(R, k, k) indicators: answer r ranks i above j."""
    pos = np.empty((len(orders), k), np.int64)
    for r, o in enumerate(orders):
        pos[r, o] = np.arange(k)
    return (pos[:, :, None] < pos[:, None, :]).astype(np.float64)


def _consensus(wins: np.ndarray, method: str) -> np.ndarray:
    """Weighted Borda order (stable: equal scores keep the lower index first), then for
    ``kemeny`` adjacent swaps while one strictly lowers the weighted Kendall distance
    (local Kemenization, Dwork et al. 2001)."""
    order = np.argsort(-wins.sum(axis=1), kind="stable")
    if method == "kemeny":
        cur = order.tolist()
        swapped = True
        while swapped:
            swapped = False
            for r in range(len(cur) - 1):
                x, y = cur[r], cur[r + 1]
                if wins[y, x] > wins[x, y]:
                    cur[r], cur[r + 1] = y, x
                    swapped = True
        order = np.asarray(cur, dtype=np.int64)
    return order


class RankingAggregator(BaseEstimator):
    """Ranking tasks: a reliability-weighted consensus order of a task's responses.

    Answers: ``{"order": [i, ...]}``, a permutation of ``0 .. k-1``, best first.
    ``context``: ``{"k": number of responses}`` (None: the length of the first answer).

    Model: Mallows with one dispersion per annotator: an answer ``pi`` to a task with
    true order ``sigma`` has probability ``exp(-theta_w d(pi, sigma)) / Z(theta_w)``,
    ``d`` the Kendall distance (Mallows 1957; Klementiev, Roth and Small 2008). As
    ``Z`` does not depend on ``sigma``, the most likely order minimises
    ``sum_w theta_w d(pi_w, sigma)``: a weighted Kemeny order. ``method="kemeny"``
    approximates it by the weighted Borda order refined by adjacent swaps (local
    Kemenization: no adjacent swap improves it; it keeps the Condorcet winner first);
    ``method="borda"`` stops at the weighted Borda order.

    ``fit`` alternates consensus orders and dispersions: ``theta_w`` matches the
    expected Mallows distance to the worker's observed distances to the consensus
    (maximum likelihood), with ``prior_answers`` pseudo-answers at dispersion
    ``prior_theta``; it is floored at 0 (a random or reversed annotator gets no weight).
    Unknown workers (-1, or not in the fit) get the answer-weighted mean dispersion;
    without a fit every worker has ``prior_theta``.

    Result: ``response = {"order": [...]}``. ``confidence``: the expected share of
    response pairs the consensus orders as the truth does, ``mean over consensus pairs
    (i above j) of sigmoid(W_ij - W_ji)`` with ``W_ij`` the dispersion-weighted count of
    answers putting i above j (the Mallows posterior with pairs treated as
    independent). ``extra``: ``agreement`` = weighted mean of ``(1 + tau) / 2`` of the
    answers with the consensus (Kendall's tau; weights ``theta``, equal when all are 0)
    and ``scores`` (weighted Borda score of each response in [0, 1]). ``needs_review``
    when ``agreement < review_threshold``. Equal scores: the lower response index first.

    Fitted: ``results_``, ``thetas_`` (per worker), ``params_`` =
    ``{"method", "thetas", "default_theta"}``.
    """

    def __init__(
        self,
        method: str = "kemeny",
        n_iter: int = 50,
        tol: float = 1e-4,
        prior_theta: float = 1.0,
        prior_answers: float = 2.0,
        review_threshold: float = 0.75,
    ) -> None:
        self.method = method
        self.n_iter = n_iter
        self.tol = tol
        self.prior_theta = prior_theta
        self.prior_answers = prior_answers
        self.review_threshold = review_threshold
        self.thetas_ = np.zeros(0)
        self.default_theta_ = float(prior_theta)

    def _check(self) -> None:
        if self.method not in ("kemeny", "borda"):
            raise ValueError(f"method must be 'kemeny' or 'borda', got {self.method!r}")
        check_n_iter(self.n_iter)
        check_positive(self.prior_theta, "prior_theta", strict=False)
        check_positive(self.prior_answers, "prior_answers", strict=False)

    @staticmethod
    def _orders(answers: Sequence[WorkerAnswer], context: Any) -> tuple[list[int], list[np.ndarray], int]:
        k = None if context is None else int(context["k"])
        workers, orders = [], []
        for w, ans in answers:
            o = np.asarray(ans["order"], dtype=np.int64)
            if k is None:
                k = o.size
            if o.size != k or not np.array_equal(np.sort(o), np.arange(k)):
                raise ValueError(f"order must be a permutation of 0..{k - 1}, got {ans['order']}")
            workers.append(w)
            orders.append(o)
        return workers, orders, 0 if k is None else k

    def _weights(self, workers: Sequence[int]) -> np.ndarray:
        w = np.asarray(workers, dtype=np.int64)
        known = (w >= 0) & (w < self.thetas_.size)
        out = np.full(w.size, self.default_theta_)
        out[known] = self.thetas_[w[known]]
        return out

    def _decide(self, workers: Sequence[int], orders: list[np.ndarray], k: int) -> TaskResult:
        return self._solve(workers, orders, k)[0]

    def _solve(self, workers: Sequence[int], orders: list[np.ndarray],
               k: int) -> tuple[TaskResult, np.ndarray]:
        """The task's result and the Kendall tau of each answer with the consensus."""
        if not orders or k == 0:
            return TaskResult({"order": list(range(k))}, 0.0, True, {"agreement": 0.0}), np.ones(
                len(orders))
        weights = self._weights(workers)
        above = _above(orders, k)
        wins = np.tensordot(weights, above, axes=1)  # W[i, j]: weight ranking i above j
        order = _consensus(wins, self.method)
        if k < 2:
            return TaskResult({"order": order.tolist()}, 1.0, False,
                              {"agreement": 1.0, "scores": [1.0]}), np.ones(len(orders))
        i, j = np.triu_indices(k, 1)
        margin = wins[order[i], order[j]] - wins[order[j], order[i]]
        confidence = float(np.mean(1.0 / (1.0 + np.exp(-margin))))
        # tau of each answer with the consensus from its concordant pairs
        concordant = above[:, order[i], order[j]].sum(axis=1)
        taus = 4.0 * concordant / (k * (k - 1)) - 1.0
        share = weights if weights.sum() > 0 else np.ones(weights.size)
        agreement = float(np.dot(share, (1.0 + taus) / 2.0) / share.sum())
        total = weights.sum()
        scores = wins.sum(axis=1) / ((k - 1) * total) if total > 0 else np.full(k, 0.5)
        extra = {"agreement": agreement, "scores": [float(x) for x in scores]}
        return TaskResult({"order": order.tolist()}, confidence,
                          agreement < self.review_threshold, extra), taus

    def fit(self, items: Sequence[Sequence[WorkerAnswer]], *, n_workers: int,
            contexts: Sequence[Any] | None = None) -> RankingAggregator:
        check_items(items, n_workers, contexts)
        self._check()
        parsed = [self._orders(a, None if contexts is None else contexts[i])
                  for i, a in enumerate(items)]
        t = np.array([i for i, p in enumerate(parsed) for _ in p[0]], dtype=np.int64)
        w = np.array([x for p in parsed for x in p[0]], dtype=np.int64)
        ks = np.array([p[2] for p in parsed], dtype=np.int64)
        known = w >= 0
        n_ans = np.bincount(w[known], minlength=n_workers).astype(np.float64)
        k0 = float(np.median(ks[t])) if t.size else 2.0
        prior_d = self.prior_answers * mallows_expected_distance(np.array([self.prior_theta]),
                                                                 np.array([k0]))[0]
        self.thetas_ = np.full(n_workers, float(self.prior_theta))
        self.default_theta_ = float(self.prior_theta)
        self.converged_ = False
        for it in range(1, self.n_iter + 1):
            taus = [self._solve(*p)[1] for p in parsed]
            # observed Kendall distance of every answer to its task's consensus
            tau = np.concatenate(taus) if taus else np.zeros(0)
            dist = (1.0 - tau) * ks[t] * (ks[t] - 1) / 4.0
            new = self._m_step(dist[known], w[known], ks[t[known]], n_workers, k0, prior_d)
            delta = float(np.max(np.abs(new - self.thetas_), initial=0.0))
            self.thetas_ = new
            self.default_theta_ = (float(np.dot(n_ans, new) / n_ans.sum()) if n_ans.sum() > 0
                                   else float(self.prior_theta))
            self.n_iter_ = it
            if delta < self.tol:
                self.converged_ = True
                break
        if not self.converged_:
            warnings.warn("RankingAggregator did not converge", ConvergenceWarning, stacklevel=2)
        self.results_ = [self._decide(*p) for p in parsed]
        self.params_ = {"method": self.method, "thetas": self.thetas_.tolist(),
                        "default_theta": self.default_theta_}
        return self

    def _m_step(self, dist: np.ndarray, w: np.ndarray, k: np.ndarray, n_workers: int,
                k0: float, prior_d: float) -> np.ndarray:
        """Per-worker theta solving sum E_theta[d] = sum d (pseudo-answers included);
        the expected distance falls as theta grows, so bisection on [0, 20] converges."""
        observed = np.bincount(w, dist, minlength=n_workers) + prior_d
        lo, hi = np.zeros(n_workers), np.full(n_workers, 20.0)
        for _ in range(40):
            mid = (lo + hi) / 2.0
            expected = np.bincount(w, mallows_expected_distance(mid[w], k), minlength=n_workers) + (
                self.prior_answers * mallows_expected_distance(mid, np.full(n_workers, k0)))
            too_far = expected > observed  # theta too small: expects more disagreement
            lo = np.where(too_far, mid, lo)
            hi = np.where(too_far, hi, mid)
        return (lo + hi) / 2.0

    def load_params(self, params: dict[str, Any]) -> RankingAggregator:
        self.method = str(params["method"])
        self.thetas_ = np.asarray(params["thetas"], dtype=np.float64)
        self.default_theta_ = float(params["default_theta"])
        self.params_ = params
        return self

    def aggregate(self, answers: Sequence[WorkerAnswer], context: Any = None) -> TaskResult:
        return self._decide(*self._orders(answers, context))


def answer_score(answer: Any, response: dict[str, Any], context: Any = None) -> float:
    """``(1 + Kendall tau) / 2`` of the answer's order with the consensus order, in [0, 1]."""
    return (1.0 + kendall_tau(answer["order"], response["order"])) / 2.0
