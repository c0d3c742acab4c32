"""Pairwise preferences (RLHF "which response is better"): Bradley-Terry models.

Comparisons are three equal-length arrays: item indices ``a`` and ``b`` and the outcome
``y`` = score of ``a``: 1.0 when ``a`` was preferred, 0.0 when ``b`` was, 0.5 for a tie.
(Per-comparison labels "a" / "b" / "tie" can also be aggregated per pair with any
classifier in :mod:`qistas.quality.classification`.)
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.optimize import minimize

from ._base import BaseEstimator
from ._validation import ConvergenceWarning, as_index_array, check_n_iter, check_positive
from .structured import TaskResult, WorkerAnswer, check_items


def _check_comparisons(
    a: object, b: object, y: object, n_items: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    ia, ib = as_index_array(a, "a"), as_index_array(b, "b")
    yy = np.asarray(y, dtype=np.float64)
    if not (ia.shape == ib.shape == yy.shape):
        raise ValueError("a, b and y must have equal length")
    if ia.size == 0:
        raise ValueError("no comparisons: a, b and y are empty")
    if np.any((yy < 0) | (yy > 1)) or not np.all(np.isfinite(yy)):
        raise ValueError("y must be in [0, 1]: 1 = a preferred, 0 = b preferred, 0.5 = tie")
    if np.any(ia == ib):
        raise ValueError("an item cannot be compared with itself")
    found = int(max(ia.max(), ib.max())) + 1
    if n_items is None:
        n_items = found
    elif n_items < found:
        raise ValueError(f"n_items={n_items} but an index {found - 1} was found")
    return ia, ib, yy, int(n_items)


def _log_sigmoid(x: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -x)


def _fit_scores(
    ia: np.ndarray,
    ib: np.ndarray,
    y: np.ndarray,
    n: int,
    prior: float,
    start: np.ndarray,
    tol: float,
    max_iter: int,
) -> tuple[np.ndarray, bool, int]:
    """Penalised Bradley-Terry maximum likelihood in log-strengths ``s`` (L-BFGS).

    Every item also plays ``prior`` virtual games against a virtual item of score 0 and
    wins half of them: items that won (or lost) everything keep a finite score.
    """

    def objective(s: np.ndarray) -> tuple[float, np.ndarray]:
        d = s[ia] - s[ib]
        # log-sigmoid via logaddexp: no overflow for large score gaps
        nll = -np.sum(y * _log_sigmoid(d) + (1 - y) * _log_sigmoid(-d))
        nll -= 0.5 * prior * np.sum(_log_sigmoid(s) + _log_sigmoid(-s))
        g_pair = y - 1.0 / (1.0 + np.exp(-d))  # d(loglik)/d(d)
        grad = -(np.bincount(ia, g_pair, minlength=n) - np.bincount(ib, g_pair, minlength=n))
        grad -= 0.5 * prior * (1.0 - 2.0 / (1.0 + np.exp(-s)))
        return float(nll), grad

    res = minimize(
        objective,
        start,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": max_iter, "gtol": tol, "ftol": 1e-15},
    )
    return res.x, bool(res.success), int(res.nit)


class BradleyTerry(BaseEstimator):
    """Bradley-Terry: ``P(i preferred to j) = p_i / (p_i + p_j)``, fitted by L-BFGS.

    ``scores_`` are ``log p`` centred to mean 0 (higher = better); ``ranking_`` lists the
    items best first. Ties count as half a win for each side. ``prior`` virtual games
    against an average item regularise items with few comparisons.

    Bradley, R. A. and Terry, M. E. (1952). Rank analysis of incomplete block designs.
    Biometrika 39.
    """

    def __init__(self, n_iter: int = 1000, tol: float = 1e-8, prior: float = 1.0) -> None:
        self.n_iter = n_iter
        self.tol = tol
        self.prior = prior

    def fit(self, a: object, b: object, y: object, *, n_items: int | None = None) -> BradleyTerry:
        check_n_iter(self.n_iter)
        check_positive(self.prior, "prior")
        ia, ib, yy, n = _check_comparisons(a, b, y, n_items)
        s, self.converged_, self.n_iter_ = _fit_scores(
            ia, ib, yy, n, self.prior, np.zeros(n), self.tol, self.n_iter
        )
        if not self.converged_:
            warnings.warn(
                f"{type(self).__name__} did not converge", ConvergenceWarning, stacklevel=2
            )
        self._set_scores(s)
        return self

    def _set_scores(self, s: np.ndarray) -> None:
        self.scores_ = s - s.mean()
        self.ranking_ = np.argsort(-self.scores_, kind="stable")

    def predict_proba(self, a: object, b: object) -> np.ndarray:
        """P(a preferred to b) for fitted items."""
        ia, ib = as_index_array(a, "a"), as_index_array(b, "b")
        return 1.0 / (1.0 + np.exp(self.scores_[ib] - self.scores_[ia]))


class CrowdBradleyTerry(BradleyTerry):
    """Bradley-Terry with a per-annotator reliability (CrowdBT).

    Annotator ``w`` reports the Bradley-Terry preference with probability ``eta_w`` and
    the opposite one otherwise: ``P(report a > b) = eta_w q + (1 - eta_w)(1 - q)`` with
    ``q = p_a / (p_a + p_b)``. EM: the E-step gives each comparison the posterior ``r``
    that it was reported truthfully; the M-step fits Bradley-Terry to outcomes weighted
    by ``r`` (warm-started from the previous scores) and sets ``eta_w`` to the
    Beta(``a``, ``b``)-smoothed mean of ``r``. ``reliabilities_`` holds ``eta`` (near 0:
    systematically reversed).

    Chen, X., Bennett, P. N., Collins-Thompson, K. and Horvitz, E. (2013). Pairwise
    ranking aggregation in a crowdsourced setting. WSDM.
    """

    def __init__(
        self,
        n_iter: int = 200,
        tol: float = 1e-6,
        prior: float = 1.0,
        a: float = 4.0,
        b: float = 1.0,
    ) -> None:
        super().__init__(n_iter=n_iter, tol=tol, prior=prior)
        self.a = a
        self.b = b

    def fit(  # type: ignore[override]
        self,
        a: object,
        b: object,
        y: object,
        workers: object,
        *,
        n_items: int | None = None,
        n_workers: int | None = None,
    ) -> CrowdBradleyTerry:
        check_n_iter(self.n_iter)
        check_positive(self.prior, "prior")
        ia, ib, yy, n = _check_comparisons(a, b, y, n_items)
        w = as_index_array(workers, "workers")
        if w.shape != ia.shape:
            raise ValueError("workers must have the same length as a, b and y")
        n_w = int(w.max()) + 1 if n_workers is None else int(n_workers)
        counts = np.bincount(w, minlength=n_w)
        eta = np.full(n_w, self.a / (self.a + self.b))
        scores = np.zeros(n)
        self.converged_ = False
        for it in range(1, self.n_iter + 1):
            q = 1.0 / (1.0 + np.exp(scores[ib] - scores[ia]))
            # likelihood of the report if truthful / if reversed (a tie is neutral)
            truthful = q**yy * (1 - q) ** (1 - yy)
            reversed_ = (1 - q) ** yy * q ** (1 - yy)
            num = eta[w] * truthful
            r = num / (num + (1 - eta[w]) * reversed_)
            eta = (np.bincount(w, r, minlength=n_w) + self.a) / (counts + self.a + self.b)
            y_eff = r * yy + (1 - r) * (1 - yy)
            new, _, _ = _fit_scores(ia, ib, y_eff, n, self.prior, scores, 1e-10, 200)
            delta = np.max(np.abs(new - scores))
            scores = new
            self.n_iter_ = it
            if delta <= self.tol:
                self.converged_ = True
                break
        if not self.converged_:
            warnings.warn("CrowdBradleyTerry did not converge", ConvergenceWarning, stacklevel=2)
        self._set_scores(scores)
        self.reliabilities_ = eta
        return self


# ---------------------------------------------------------------------------------------
# Per-task truth inference for pairwise tasks (the structured contract)
# ---------------------------------------------------------------------------------------

CHOICES = ("a", "b", "tie")
_TINY = 1e-300  # floor before log


def _davidson_proba(d: np.ndarray, order: float, log_tie: float) -> np.ndarray:
    """(T, 3) probabilities of a / b / tie given strength gaps ``d = s_a - s_b``.

    Davidson's model with an order effect: logits ``(d + order) / 2``, ``-(d + order) / 2``
    and ``log nu``; ``log_tie = -inf`` gives plain Bradley-Terry (no ties).
    """
    x = (d + order) / 2.0
    logits = np.stack([x, -x, np.full_like(x, log_tie)], axis=1)
    # softmax with max-subtraction: no overflow for large gaps
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


class _Strengths:
    """Davidson strengths fitted to soft task outcomes, with leave-one-out gaps.

    Maximises ``sum_t sum_c q_tc log P(c | s_a - s_b) - ridge / 2 * |s|^2`` by Newton's
    method (the objective is concave: the log of a softmax of linear logits). The
    Hessian is block-diagonal over the connected components of the graph of responses;
    components of equal size are solved together as one stacked array. ``gaps_loo``
    is each task's gap as fitted without that task (one Newton step from the optimum,
    Sherman-Morrison for the rank-one update: exact when the rest is quadratic).
    """

    def __init__(self, ia: np.ndarray, ib: np.ndarray, n_keys: int) -> None:
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        self.ia, self.ib = ia, ib
        graph = coo_matrix((np.ones(ia.size), (ia, ib)), shape=(n_keys, n_keys))
        _, comp = connected_components(graph, directed=False)
        sizes = np.bincount(comp)
        # local index of each key inside its component
        order = np.argsort(comp, kind="stable")
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        local = np.empty(n_keys, dtype=np.int64)
        local[order] = np.arange(n_keys) - starts[comp[order]]
        self.groups = []
        for m in np.unique(sizes):
            comps = np.flatnonzero(sizes == m)
            row = np.full(sizes.size, -1)
            row[comps] = np.arange(comps.size)
            keys = np.flatnonzero(sizes[comp] == m)
            tasks = np.flatnonzero(sizes[comp[ia]] == m)
            self.groups.append((int(m), comps.size, keys, row[comp[keys]], local[keys], tasks,
                                row[comp[ia[tasks]]], local[ia[tasks]], local[ib[tasks]]))
        self.s = np.zeros(n_keys)

    def fit(self, q: np.ndarray, order: float, log_tie: float, ridge: float,
            n_steps: int) -> np.ndarray:
        """Newton steps on the strengths (warm start); returns leave-one-out gaps."""
        for _ in range(n_steps):
            g, h = self._site(q, order, log_tie)
            step = self._solve(g, h, ridge, inverse=False)
            self.s += step
            if np.max(np.abs(step), initial=0.0) < 1e-9:
                break
        g, h = self._site(q, order, log_tie)
        v = self._solve(g, h, ridge, inverse=True)
        d = self.s[self.ia] - self.s[self.ib]
        # removing task t: its site has gradient g and curvature h along u = e_a - e_b;
        # u' (H - h u u')^-1 u = v / (1 - h v)
        return d - g * v / np.maximum(1.0 - h * v, 1e-12)

    def _site(self, q: np.ndarray, order: float, log_tie: float) -> tuple[np.ndarray, ...]:
        p = _davidson_proba(self.s[self.ia] - self.s[self.ib], order, log_tie)
        diff = p[:, 0] - p[:, 1]
        g = ((q[:, 0] - q[:, 1]) - diff) / 2.0
        h = ((p[:, 0] + p[:, 1]) - diff**2) / 4.0
        return g, h

    def _solve(self, g: np.ndarray, h: np.ndarray, ridge: float, *, inverse: bool) -> np.ndarray:
        """Newton step (``inverse=False``) or ``u' H^-1 u`` per task (``inverse=True``)."""
        out = np.zeros(self.ia.size if inverse else self.s.size)
        for m, n_c, keys, krow, kloc, tasks, trow, la, lb in self.groups:
            hess = np.zeros((n_c, m, m))
            hess[:, np.arange(m), np.arange(m)] = ridge
            ht = h[tasks]
            np.add.at(hess, (trow, la, la), ht)
            np.add.at(hess, (trow, lb, lb), ht)
            np.add.at(hess, (trow, la, lb), -ht)
            np.add.at(hess, (trow, lb, la), -ht)
            if inverse:
                hinv = np.linalg.inv(hess)
                out[tasks] = (hinv[trow, la, la] + hinv[trow, lb, lb]
                              - 2.0 * hinv[trow, la, lb])
            else:
                grad = np.zeros((n_c, m))
                grad[krow, kloc] = -ridge * self.s[keys]
                np.add.at(grad, (trow, la), g[tasks])
                np.add.at(grad, (trow, lb), -g[tasks])
                out[keys] = np.linalg.solve(hess, grad[..., None])[krow, kloc, 0]
        return out


def _fit_offsets(d: np.ndarray, q: np.ndarray, order: float, log_tie: float,
                 allow_tie: bool) -> tuple[float, float]:
    """Newton steps on the order effect and the tie parameter, gaps held fixed."""
    for _ in range(20):
        p = _davidson_proba(d, order, log_tie)
        g_o = float(np.sum((q[:, 0] - q[:, 1]) - (p[:, 0] - p[:, 1]))) / 2.0
        h_o = float(np.sum((p[:, 0] + p[:, 1]) - (p[:, 0] - p[:, 1]) ** 2)) / 4.0
        # a weak N(0, 4) prior on both keeps them finite when an outcome is never seen
        step_o = (g_o - order / 4.0) / (h_o + 0.25)
        order += step_o
        step_t = 0.0
        if allow_tie:
            g_t = float(np.sum(q[:, 2] - p[:, 2]))
            h_t = float(np.sum(p[:, 2] * (1.0 - p[:, 2])))
            step_t = (g_t - log_tie / 4.0) / (h_t + 0.25)
            log_tie += step_t
        if max(abs(step_o), abs(step_t)) < 1e-10:
            break
    return order, log_tie


class _Channel:
    """Dawid-Skene over one decision (the overall choice or one criterion)."""

    def __init__(self, n_classes: int) -> None:
        self.k = n_classes
        # rows: true choice (a, b[, tie]); columns: answer (a, b, tie)
        self.confusions = np.zeros((0, n_classes, 3))
        self.default = np.full((n_classes, 3), 1.0 / 3)
        self.order = 0.0
        self.log_tie = 0.0 if n_classes == 3 else -np.inf
        self.scores: dict[Any, float] = {}

    def log_prior(self, d: np.ndarray) -> np.ndarray:
        return np.log(np.maximum(_davidson_proba(d, self.order, self.log_tie)[:, : self.k],
                                 _TINY))

    def conf_of(self, w: np.ndarray) -> np.ndarray:
        """(n, K, 3) confusion of each worker; unknown workers get ``default``."""
        known = (w >= 0) & (w < self.confusions.shape[0])
        out = np.broadcast_to(self.default, (w.size, self.k, 3)).copy()
        out[known] = self.confusions[w[known]]
        return out

    def to_params(self) -> dict[str, Any]:
        return {
            "confusions": self.confusions.tolist(),
            "default_confusion": self.default.tolist(),
            "order_effect": float(self.order),
            "log_tie": None if self.k == 2 else float(self.log_tie),
            "keys": list(self.scores),
            "scores": [float(v) for v in self.scores.values()],
        }

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> _Channel:
        default = np.asarray(params["default_confusion"], dtype=np.float64)
        ch = cls(default.shape[0])
        ch.confusions = np.asarray(params["confusions"], dtype=np.float64).reshape(-1, ch.k, 3)
        ch.default = default
        ch.order = float(params["order_effect"])
        ch.log_tie = -np.inf if params["log_tie"] is None else float(params["log_tie"])
        ch.scores = dict(zip(params["keys"], params["scores"], strict=True))
        return ch


class PairwiseAggregator(BaseEstimator):
    """Pairwise preference tasks: Dawid-Skene with a Bradley-Terry-Davidson prior.

    Answers: ``{"choice": "a" | "b" | "tie"}``, with ``criteria`` given also
    ``{"criteria": {name: "a" | "b" | "tie"}}`` (a criterion left out is not answered).
    ``context``: None, or ``{"a": key_a, "b": key_b}``, stable identities (str or int:
    a hash of the text, say) of the two responses.

    Model, per decision (the overall choice, and each criterion on its own): task ``t``
    has a true choice ``z_t``; worker ``w`` answers ``c`` with probability
    ``confusion_w[z_t, c]`` (Dawid and Skene 1979), each row smoothed by a Dirichlet prior
    of ``alpha`` pseudo-answers per cell and ``alpha_diag`` more on the diagonal.
    The prior of ``z_t`` is Davidson's Bradley-Terry model with ties and an order
    effect: ``P(a) : P(b) : P(tie) = e^{(d+o)/2} : e^{-(d+o)/2} : nu`` with
    ``d = s_a - s_b`` the gap between the strengths of the two responses (Gaussian prior
    of precision ``ridge``), ``o`` a preference for the first position and ``nu`` the
    propensity to tie (Davidson 1970; Davidson and Beaver 1977). With ``d = 0`` this is
    any distribution over a / b / tie: the class prior of plain Dawid-Skene.

    EM: the E-step takes each task's posterior; the M-step fits the confusions, then
    the strengths, ``o`` and ``nu`` to the posteriors (one soft outcome per task; Newton,
    see :class:`_Strengths`). A task's own prior uses the gap fitted *without* that task
    (approximate leave-one-out), so its answers are never counted twice: responses that
    recur across tasks lend each task the evidence of the others (transitivity), and
    where no response recurs every gap is 0 and the model is plain Dawid-Skene.

    ``allow_tie=False``: the truth is "a" or "b" (tie answers are still read, as
    evidence through each worker's confusion); plain Bradley-Terry prior.

    ``aggregate`` uses the fitted confusions and, when both keys were seen, the fitted
    strengths ``scores_`` (including every fitted task). Unknown workers (-1, or not in
    the fit) get the answer-weighted mean confusion; with no fit every worker has the
    smoothing prior's confusion and the classes are equally likely.

    Result: ``response = {"choice": c}`` (plus ``"criteria": {name: c}``);
    ``confidence`` = posterior of the chosen overall choice;
    ``extra = {"posterior": {c: p}, "criteria_confidence": {name: p}, "scores": {"a": s, "b": s}}``
    (``scores``: the two responses' Bradley-Terry strengths, when both recur in the fit);
    ``needs_review`` when ``confidence < review_threshold``. Ties between posteriors
    (equal within 1e-9): "tie" when allowed (nothing separates the two responses; its
    posterior is then the confidence), else "a" before "b".

    Fitted: ``results_``, ``params_`` (``{"choices", "criteria", "channels":
    {"choice": {...}, name: {...}}}``, each channel with ``confusions`` (W x K x K,
    rows = true choice in ``choices`` order, columns = answer a / b / tie), ``default_confusion``, ``order_effect``,
    ``log_tie`` and the strengths as ``keys`` / ``scores``), ``scores_`` (key ->
    strength of the overall choice; comparable within responses linked by tasks, 0 for
    an average response), ``criteria_scores_`` (name -> key -> strength), ``n_iter_``.

    Dawid, A. P. and Skene, A. M. (1979). Applied Statistics 28(1). Davidson, R. R.
    (1970). On extending the Bradley-Terry model to accommodate ties. JASA 65.
    Davidson, R. R. and Beaver, R. J. (1977). On extending the Bradley-Terry model to
    incorporate within-pair order effects. Biometrics 33.
    """

    def __init__(
        self,
        criteria: Sequence[str] = (),
        allow_tie: bool = True,
        n_iter: int = 100,
        tol: float = 1e-5,
        alpha: float = 0.5,
        alpha_diag: float = 1.0,
        ridge: float = 1.0,
        review_threshold: float = 0.6,
    ) -> None:
        self.criteria = criteria
        self.allow_tie = allow_tie
        self.n_iter = n_iter
        self.tol = tol
        self.alpha = alpha
        self.alpha_diag = alpha_diag
        self.ridge = ridge
        self.review_threshold = review_threshold
        self._channels = self._fresh_channels()

    # -- setup --------------------------------------------------------------------------
    @property
    def _choices(self) -> tuple[str, ...]:
        return CHOICES if self.allow_tie else CHOICES[:2]

    def _names(self) -> list[str | None]:
        return [None, *self.criteria]

    def _fresh_channels(self) -> dict[str | None, _Channel]:
        k = 3 if self.allow_tie else 2
        chans = {name: _Channel(k) for name in [None, *self.criteria]}
        prior = self._pseudo(k)
        for ch in chans.values():
            ch.default = prior / prior.sum(axis=1, keepdims=True)
        return chans

    def _pseudo(self, k: int) -> np.ndarray:
        return np.full((k, 3), float(self.alpha)) + float(self.alpha_diag) * np.eye(k, 3)

    def _label(self, answer: Any, name: str | None) -> int:
        """Index of the answer's choice for one decision; -1 when not answered."""
        if not isinstance(answer, dict):
            raise ValueError(f"a pairwise answer must be a dict, got {answer!r}")
        if name is None:
            value = answer.get("choice")
        else:
            value = (answer.get("criteria") or {}).get(name)
            if value is None:
                return -1
        if value not in CHOICES:
            raise ValueError(f"choice must be one of {CHOICES}, got {value!r}")
        return CHOICES.index(value)

    def _collect(self, answers: Sequence[tuple[int, Any]], name: str | None,
                 n_workers: int) -> tuple[np.ndarray, np.ndarray]:
        """Workers (-1 when unknown) and answer indices in ``CHOICES`` of one decision."""
        ws, ls = [], []
        for w, ans in answers:
            lab = self._label(ans, name)
            if lab >= 0:
                ws.append(w if 0 <= w < n_workers else -1)
                ls.append(lab)
        return np.asarray(ws, dtype=np.int64), np.asarray(ls, dtype=np.int64)

    # -- fit ----------------------------------------------------------------------------
    def fit(
        self,
        items: Sequence[Sequence[WorkerAnswer]],
        *,
        n_workers: int,
        contexts: Sequence[Any] | None = None,
    ) -> PairwiseAggregator:
        check_items(items, n_workers, contexts)
        check_n_iter(self.n_iter)
        for param in ("alpha", "alpha_diag", "ridge", "tol"):
            check_positive(getattr(self, param), param, strict=param == "ridge")
        n_t = len(items)
        keyed, ia, ib, keys = _keys(contexts, n_t)
        self._channels = self._fresh_channels()
        posts: dict[str | None, np.ndarray] = {}
        self.n_iter_ = 0
        for name, ch in self._channels.items():
            rows = [self._collect(ans, name, n_workers) for ans in items]
            t = np.repeat(np.arange(n_t), [r[0].size for r in rows])
            w = np.concatenate([r[0] for r in rows]) if rows else np.zeros(0, np.int64)
            lab = np.concatenate([r[1] for r in rows]) if rows else np.zeros(0, np.int64)
            posts[name], n_it = self._fit_channel(ch, t, w, lab, n_t, n_workers,
                                                  keyed, ia, ib, keys)
            self.n_iter_ = max(self.n_iter_, n_it)
        self.scores_ = dict(self._channels[None].scores)
        self.criteria_scores_ = {c: dict(self._channels[c].scores) for c in self.criteria}
        self.results_ = [self._result({n: p[i] for n, p in posts.items()}, None if contexts is None else contexts[i])
                         for i in range(n_t)]
        self.params_ = {
            "choices": list(self._choices),
            "criteria": list(self.criteria),
            "channels": {"choice" if n is None else n: ch.to_params()
                         for n, ch in self._channels.items()},
        }
        return self

    def _fit_channel(self, ch: _Channel, t: np.ndarray, w: np.ndarray, lab: np.ndarray,
                     n_t: int, n_workers: int, keyed: np.ndarray, ia: np.ndarray,
                     ib: np.ndarray, keys: list[Any]) -> tuple[np.ndarray, int]:
        k = ch.k
        pseudo = self._pseudo(k)
        known = w >= 0
        # start: vote shares (a tie answer counts half for a and b when ties are not allowed)
        onehot = np.eye(3)[lab] if k == 3 else np.eye(3)[lab][:, :2] + np.eye(3)[lab][:, 2:] / 2
        q = np.full((n_t, k), 1e-3)
        np.add.at(q, t, onehot)
        q /= q.sum(axis=1, keepdims=True)
        strengths = _Strengths(ia, ib, len(keys)) if keys else None
        d_loo = np.zeros(n_t)
        n_it = 0
        for _ in range(self.n_iter):
            n_it += 1
            # M-step: confusions (Dirichlet-smoothed counts), then strengths and offsets
            # counts[w, :, l] += q[t]: answers in the flattened (worker, answer) layout
            flat = np.zeros((n_workers * 3, k))
            np.add.at(flat, w[known] * 3 + lab[known], q[t[known]])
            counts = flat.reshape(n_workers, 3, k).transpose(0, 2, 1)
            counts += pseudo
            ch.confusions = counts / counts.sum(axis=2, keepdims=True)
            used = counts.sum(axis=(1, 2)) - pseudo.sum()
            if used.sum() > 0:
                ch.default = np.tensordot(used / used.sum(), ch.confusions, axes=1)
            q3 = np.zeros((n_t, 3))
            q3[:, :k] = q
            if strengths is not None:
                d_loo[keyed] = strengths.fit(q3[keyed], ch.order, ch.log_tie, self.ridge, 3)
            # the offsets are those of the prior the E-step uses: on leave-one-out gaps
            ch.order, ch.log_tie = _fit_offsets(d_loo, q3, ch.order, ch.log_tie, k == 3)
            # E-step in log space: products of many small probabilities become sums
            logp = ch.log_prior(d_loo)
            np.add.at(logp, t, np.log(ch.conf_of(w)[np.arange(w.size), :, lab]))
            logp -= logp.max(axis=1, keepdims=True)
            new = np.exp(logp)
            new /= new.sum(axis=1, keepdims=True)
            delta = float(np.max(np.abs(new - q), initial=0.0))
            q = new
            if delta < self.tol:
                break
        else:
            warnings.warn("PairwiseAggregator did not converge", ConvergenceWarning, stacklevel=3)
        if strengths is not None:
            ch.scores = dict(zip(keys, strengths.s.tolist(), strict=True))
        return q, n_it

    # -- one task -----------------------------------------------------------------------
    def load_params(self, params: dict[str, Any]) -> PairwiseAggregator:
        if list(params["choices"]) != list(self._choices):
            raise ValueError(f"params are for choices {params['choices']}, not {self._choices}")
        chans = params["channels"]
        missing = [c for c in self.criteria if c not in chans]
        if missing:
            raise ValueError(f"params have no criteria {missing}")
        self._channels = {n: _Channel.from_params(chans["choice" if n is None else n])
                          for n in self._names()}
        self.scores_ = dict(self._channels[None].scores)
        self.criteria_scores_ = {c: dict(self._channels[c].scores) for c in self.criteria}
        self.params_ = params
        return self

    def aggregate(self, answers: Sequence[WorkerAnswer], context: Any = None) -> TaskResult:
        posts = {}
        for name, ch in self._channels.items():
            w, lab = self._collect(answers, name, ch.confusions.shape[0])
            d = 0.0
            if context is not None and ch.scores:
                d = ch.scores.get(context["a"], 0.0) - ch.scores.get(context["b"], 0.0)
            logp = ch.log_prior(np.array([d]))[0]
            if w.size:
                logp = logp + np.log(ch.conf_of(w)[np.arange(w.size), :, lab]).sum(axis=0)
            p = np.exp(logp - logp.max())
            posts[name] = p / p.sum()
        return self._result(posts, context)

    def _decide(self, p: np.ndarray) -> int:
        best = np.flatnonzero(p >= p.max() * (1.0 - 1e-9))
        if best.size > 1 and self.allow_tie:
            return 2  # a and b (or either and tie) equally likely: nothing separates them
        return int(best[0])

    def _result(self, posts: dict[str | None, np.ndarray], context: Any = None) -> TaskResult:
        choices = self._choices
        main = posts[None]
        top = self._decide(main)
        response: dict[str, Any] = {"choice": choices[top]}
        extra: dict[str, Any] = {"posterior": {c: float(v) for c, v in zip(choices, main,
                                                                              strict=True)}}
        if self.criteria:
            crit = {c: self._decide(posts[c]) for c in self.criteria}
            response["criteria"] = {c: choices[i] for c, i in crit.items()}
            extra["criteria_confidence"] = {c: float(posts[c][i]) for c, i in crit.items()}
        scores = self._channels[None].scores
        if context is not None and context.get("a") in scores and context.get("b") in scores:
            # The two responses' Bradley-Terry strengths, where they recur across tasks.
            extra["scores"] = {"a": float(scores[context["a"]]), "b": float(scores[context["b"]])}
        conf = float(main[top])
        return TaskResult(response, conf, conf < self.review_threshold, extra)


def _keys(contexts: Sequence[Any] | None,
          n_t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[Any]]:
    """Tasks with both response keys, their key indices and the keys in first-seen order."""
    index: dict[Any, int] = {}
    keyed, ia, ib = [], [], []
    for i, ctx in enumerate(contexts if contexts is not None else [None] * n_t):
        if ctx is None or ctx.get("a") is None or ctx.get("b") is None:
            continue
        if ctx["a"] == ctx["b"]:
            raise ValueError(f"task {i}: both responses have the key {ctx['a']!r}")
        keyed.append(i)
        ia.append(index.setdefault(ctx["a"], len(index)))
        ib.append(index.setdefault(ctx["b"], len(index)))
    as_int = np.asarray
    return (as_int(keyed, dtype=np.int64), as_int(ia, dtype=np.int64),
            as_int(ib, dtype=np.int64), list(index))


def answer_score(answer: Any, response: dict[str, Any], context: Any = None) -> float:
    """Share of the decisions (overall choice, then each criterion of the consensus)
    where the answer agrees with the consensus, in [0, 1]."""
    got = [answer.get("choice") == response.get("choice")]
    mine = answer.get("criteria") or {}
    for name, value in (response.get("criteria") or {}).items():
        got.append(mine.get(name) == value)
    return float(np.mean(got))
