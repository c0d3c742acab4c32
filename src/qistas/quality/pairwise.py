"""Pairwise preferences (RLHF "which response is better"): Bradley-Terry models.

Comparisons are three equal-length arrays: item indices ``a`` and ``b`` and the outcome
``y`` = score of ``a``: 1.0 when ``a`` was preferred, 0.0 when ``b`` was, 0.5 for a tie.
(Per-comparison labels "a" / "b" / "tie" can also be aggregated per pair with any
classifier in :mod:`qistas.quality.classification`.)
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import minimize

from ._base import BaseEstimator
from ._validation import ConvergenceWarning, as_index_array, check_n_iter, check_positive


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
