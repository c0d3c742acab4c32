"""Numeric ratings (e.g. 1-7 Likert): consensus with per-annotator bias, scale and noise.

:class:`RatingAggregator` works on index arrays; :class:`RatingConsensus` implements the
structured contract (:mod:`qistas.quality.structured`): answers ``{"rating": int}``, a
task's ``context`` is its scale ``{"min": lo, "max": hi}`` (``None``: 1..5).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.special import ndtri

from ._base import BaseEstimator
from ._validation import ConvergenceWarning, as_index_array, check_n_iter, check_positive
from .structured import TaskResult, WorkerAnswer, check_items


class RatingAggregator(BaseEstimator):
    """Mean rating corrected for each annotator's bias, scale and noise.

    Model: ``r = bias_w + scale_w * score_t + noise`` with ``noise ~ N(0, sigma_w^2)``.
    A lenient annotator has a positive bias, one who uses only the middle of the scale a
    scale below 1, a careless one a large sigma. Alternating weighted least squares:

    * task scores: precision-weighted mean of ``(r - bias_w) / scale_w``;
    * per annotator: ridge regression of their ratings on the task scores, shrinking the
      bias towards 0 and the scale towards 1 with strength ``shrinkage`` (in pseudo-
      ratings), so an annotator with three ratings is barely corrected;
    * sigma: residual variance plus ``shrinkage`` pseudo-ratings of the pooled variance.

    After each round the scores are mapped back so that the answer-weighted mean bias is
    0 and mean scale 1: scores stay on the rating scale. Tasks without ratings get NaN.
    Fitted: ``scores_``, ``biases_``, ``scales_``, ``sigmas_``.
    """

    def __init__(
        self,
        n_iter: int = 100,
        tol: float = 1e-6,
        shrinkage: float = 5.0,
        clip: tuple[float, float] | None = None,
    ) -> None:
        self.n_iter = n_iter
        self.tol = tol
        self.shrinkage = shrinkage
        self.clip = clip

    def fit(
        self,
        tasks: object,
        workers: object,
        ratings: object,
        *,
        n_tasks: int | None = None,
        n_workers: int | None = None,
    ) -> RatingAggregator:
        check_n_iter(self.n_iter)
        lam = check_positive(self.shrinkage, "shrinkage", strict=False)
        t, w = as_index_array(tasks, "tasks"), as_index_array(workers, "workers")
        r = np.asarray(ratings, dtype=np.float64)
        if not (t.shape == w.shape == r.shape):
            raise ValueError("tasks, workers and ratings must have equal length")
        if t.size == 0:
            raise ValueError("no ratings given")
        if not np.all(np.isfinite(r)):
            raise ValueError("ratings must be finite numbers")
        n_t = int(t.max()) + 1 if n_tasks is None else int(n_tasks)
        n_w = int(w.max()) + 1 if n_workers is None else int(n_workers)
        cnt_t = np.bincount(t, minlength=n_t).astype(float)
        cnt_w = np.bincount(w, minlength=n_w).astype(float)
        rated = cnt_t > 0
        bias, scale = np.zeros(n_w), np.ones(n_w)
        pooled = max(float(np.var(r)), 1e-6)
        sigma2 = np.full(n_w, pooled)
        grand = float(r.mean())
        score = np.full(n_t, grand)
        score[rated] = np.bincount(t, r, minlength=n_t)[rated] / cnt_t[rated]
        self.converged_ = False
        for it in range(1, self.n_iter + 1):
            old = score.copy()
            # task scores: each rating implies (r - b) / s with variance sigma^2 / s^2;
            # a weak pull (one pseudo-rating of pooled precision) to the grand mean
            prec = scale[w] ** 2 / sigma2[w]
            implied = (r - bias[w]) / scale[w]
            num = np.bincount(t, prec * implied, minlength=n_t) + grand / pooled
            den = np.bincount(t, prec, minlength=n_t) + 1.0 / pooled
            score = num / den
            # annotators: minimise sum (r - b - s x)^2 + lam b^2 + lam (s - 1)^2, a 2x2
            # linear system per annotator solved in closed form for all of them at once
            x = score[t]
            sx, sxx = np.bincount(w, x, minlength=n_w), np.bincount(w, x * x, minlength=n_w)
            sr, srx = np.bincount(w, r, minlength=n_w), np.bincount(w, r * x, minlength=n_w)
            a11, a12, a22 = cnt_w + lam, sx, sxx + lam
            det = a11 * a22 - a12 * a12
            bias = (a22 * sr - a12 * (srx + lam)) / det
            scale = (a11 * (srx + lam) - a12 * sr) / det
            scale = np.maximum(scale, 0.05)  # a flat or inverted scale is noise, not signal
            resid = r - bias[w] - scale[w] * x
            sigma2 = (np.bincount(w, resid**2, minlength=n_w) + lam * pooled) / (cnt_w + lam)
            sigma2 = np.maximum(sigma2, 1e-6 * pooled)
            # identifiability: answer-weighted mean bias 0 and mean scale 1
            mb = float(np.sum(cnt_w * bias) / cnt_w.sum())
            ms = float(np.sum(cnt_w * scale) / cnt_w.sum())
            score = mb + ms * score
            bias = bias - scale * mb / ms
            scale = scale / ms
            self.n_iter_ = it
            if np.max(np.abs(score - old)) <= self.tol:
                self.converged_ = True
                break
        if not self.converged_:
            warnings.warn("RatingAggregator did not converge", ConvergenceWarning, stacklevel=2)
        if self.clip is not None:
            score = np.clip(score, *self.clip)
        score[~rated] = np.nan
        self.scores_, self.biases_, self.scales_ = score, bias, scale
        self.sigmas_ = np.sqrt(sigma2)
        return self


def _scale(context: Any) -> tuple[float, float]:
    """``(min, max)`` of a rating task; ``None`` means the product's default 1..5."""
    if context is None:
        return 1.0, 5.0
    lo, hi = float(context["min"]), float(context["max"])
    if not hi > lo:
        raise ValueError(f"rating scale max {hi} must be above min {lo}")
    return lo, hi


def _round_half_up(x: float, lo: float, hi: float) -> int:
    """Nearest integer on the scale; an estimate within 1e-9 of a half goes up (towards
    ``max``), so 2.5 and 2.4999999999 both give 3 whatever the float arithmetic did."""
    k = math.floor(x)
    if x - k >= 0.5 - 1e-9:
        k += 1
    return int(min(max(k, math.ceil(lo)), math.floor(hi)))


def answer_score(answer: Any, response: Any, context: Any = None) -> float:
    """``1 - |answer - consensus| / (max - min)`` in [0, 1]; the consensus is the
    response's ``estimate`` when it carries one, else its ``rating``."""
    lo, hi = _scale(context)
    a = float(answer["rating"] if isinstance(answer, dict) else answer)
    r = float(response.get("estimate", response["rating"]))
    return float(min(max(1.0 - abs(a - r) / (hi - lo), 0.0), 1.0))


class RatingConsensus(BaseEstimator):
    """Per-task rating consensus with each annotator's noise (and optionally bias) learned.

    Ratings are first put on a common unit, ``u = (r - min) / (max - min)``, so tasks on
    different scales (0..100 and -100..100, say) share one worker model. Model:
    ``u = score_t + bias_w + noise``, ``noise ~ N(0, sigma_w^2)``, with hierarchical priors:

    * ``sigma_w^2``: ``prior_answers`` pseudo-answers at the pooled within-task variance
      (a scaled inverse-chi-square prior), so a worker with few answers keeps the pooled
      noise and their weight is never far from the plain mean's;
    * ``bias_w ~ N(0, tau^2)`` when ``correct_bias``; ``tau^2`` is estimated by empirical
      Bayes (variance of the raw offsets minus their sampling variance, Morris 1983), so
      each offset is shrunk by ``n_w / (n_w + sigma_w^2 / tau^2)``.

    Task score: the precision-weighted mean of ``u - bias_w`` (flat prior), reported as
    ``extra["estimate"]`` on the task's scale and clipped to it. Its standard error is
    ``sqrt(phi_t / sum(1 / sigma_w^2))`` where ``phi_t`` is the task's dispersion (the
    weighted squared residuals over ``n - 1``, with one pseudo-answer at 1), so answers
    that disagree more than their noise predicts widen the interval. ``extra["interval"]``
    is the central ``level`` normal interval, clipped to the scale. ``response["rating"]``
    is the estimate rounded to the nearest integer, halves up. ``confidence`` is
    ``1 - interval width / (max - min)``: 1 for a pinned-down score, 0 when the interval
    spans the scale; ``needs_review`` when it is below ``review_below``.

    Why bias correction is off by default: on bounded scales where most ratings sit at the
    floor (emotion intensities 0..100), a worker's offset is not constant over the scale --
    a "harsh" rater still says 0 where everyone says 0 and differs only on the strong
    items -- so subtracting a constant offset moves the many floor tasks away from their
    score. On the SemEval affect ratings even the offsets measured against the expert
    scores raise the mean absolute error (12.12 vs 12.02 for the plain mean), while
    weighting by learned noise lowers it (11.95). Turn ``correct_bias`` on for interval
    scales where leniency is a shift (the simulated case of :class:`RatingAggregator`).

    ``params_``: ``{"sigmas": [sigma_w], "biases": [bias_w], "prior_sigma": float,
    "tau": float}`` in scale units of ``max - min = 1``; unknown workers get
    ``prior_sigma`` and no bias. Unfitted, every worker has noise ``prior_sigma`` (0.25).

    Whitehill, J. et al. (2009) and Raykar, V. et al. (2010), "Learning from crowds", JMLR
    11 (the regression form with per-annotator precision); Morris, C. (1983), "Parametric
    empirical Bayes inference", JASA 78 (the shrinkage of the offsets).
    """

    def __init__(
        self,
        *,
        correct_bias: bool = False,
        prior_answers: float = 5.0,
        level: float = 0.9,
        review_below: float = 0.5,
        n_iter: int = 100,
        tol: float = 1e-6,
    ) -> None:
        self.correct_bias = correct_bias
        self.prior_answers = prior_answers
        self.level = level
        self.review_below = review_below
        self.n_iter = n_iter
        self.tol = tol

    def load_params(self, params: dict[str, Any]) -> RatingConsensus:
        self.sigmas_ = np.asarray(params["sigmas"], dtype=np.float64)
        self.biases_ = np.asarray(params["biases"], dtype=np.float64)
        self.prior_sigma_ = float(params["prior_sigma"])
        self.tau_ = float(params["tau"])
        self.params_ = self._params()
        return self

    def _params(self) -> dict[str, Any]:
        return {"sigmas": [float(s) for s in self.sigmas_],
                "biases": [float(b) for b in self.biases_],
                "prior_sigma": float(self.prior_sigma_), "tau": float(self.tau_)}

    def _worker(self, w: int) -> tuple[float, float]:
        sig = getattr(self, "sigmas_", None)
        prior = float(getattr(self, "prior_sigma_", 0.25))
        if sig is None or not 0 <= w < len(sig):
            return prior, 0.0
        return float(sig[w]), float(self.biases_[w])

    def aggregate(self, answers: Sequence[WorkerAnswer], context: Any = None) -> TaskResult:
        """Consensus rating of one task from ``(worker, {"rating": int})`` pairs."""
        lo, hi = _scale(context)
        if not answers:
            return TaskResult({"rating": _round_half_up((lo + hi) / 2, lo, hi)}, 0.0, True,
                              {"estimate": (lo + hi) / 2, "interval": [lo, hi]})
        u = np.empty(len(answers))
        prec = np.empty(len(answers))
        for i, (w, a) in enumerate(answers):
            r = float(a["rating"] if isinstance(a, dict) else a)
            if not lo <= r <= hi:
                raise ValueError(f"rating {r} outside the scale {lo}..{hi}")
            s, b = self._worker(w)
            u[i], prec[i] = (r - lo) / (hi - lo) - b, 1.0 / (s * s)
        est, se = _posterior(u, prec)
        return self._result(est, se, lo, hi)

    def _result(self, est: float, se: float, lo: float, hi: float) -> TaskResult:
        z = float(ndtri(0.5 + self.level / 2))
        e = min(max(est, 0.0), 1.0)
        a, b = max(est - z * se, 0.0), min(est + z * se, 1.0)
        span = hi - lo
        estimate = lo + span * e
        confidence = float(min(max(1.0 - (b - a), 0.0), 1.0))
        return TaskResult(
            {"rating": _round_half_up(estimate, lo, hi)}, confidence,
            confidence < self.review_below,
            {"estimate": estimate, "interval": [lo + span * a, lo + span * b]},
        )

    def fit(self, items: Sequence[Sequence[WorkerAnswer]], *, n_workers: int,
            contexts: Sequence[Any] | None = None) -> RatingConsensus:
        """Learn worker noise (and bias); sets ``results_``, ``params_``, ``sigmas_``,
        ``biases_``, ``prior_sigma_``, ``tau_``, ``n_iter_``, ``converged_``."""
        check_items(items, n_workers, contexts)
        check_n_iter(self.n_iter)
        k0 = check_positive(self.prior_answers, "prior_answers", strict=False)
        if not 0.0 < self.level < 1.0:
            raise ValueError(f"level must be in (0, 1), got {self.level}")
        scales = [_scale(None if contexts is None else c) for c in (contexts or [None] * len(items))]
        t, w, u = _flatten(items, scales)
        n_t, n_w = len(items), n_workers + 1  # the last slot pools unknown workers (-1)
        w = np.where(w < 0, n_workers, w)
        cnt_w = np.bincount(w, minlength=n_w).astype(float)
        cnt_t = np.bincount(t, minlength=n_t).astype(float)
        mean = np.bincount(t, u, minlength=n_t) / np.maximum(cnt_t, 1)
        # pooled noise: within-task variance (n - 1 divisor), the prior of every worker
        multi = cnt_t[t] > 1
        dof = float(np.sum(cnt_t[cnt_t > 1] - 1))
        pooled = float(np.sum((u - mean[t])[multi] ** 2) / dof) if dof > 0 else 0.0625
        pooled = max(pooled, 1e-6)
        sigma2, bias, tau2 = np.full(n_w, pooled), np.zeros(n_w), 0.0
        score = np.full(n_t, np.inf)  # the first pass always runs an M-step
        self.converged_ = False
        for it in range(1, self.n_iter + 1):
            old = score
            score, post_var = self._e_step(t, w, u, sigma2, bias, n_t)
            sigma2, bias, tau2 = self._m_step(t, w, u, score, post_var, cnt_w, pooled, k0)
            self.n_iter_ = it
            if np.max(np.abs(score - old)) <= self.tol:
                self.converged_ = True
                break
        if not self.converged_:
            warnings.warn("RatingConsensus did not converge", ConvergenceWarning, stacklevel=2)
        self.sigmas_, self.biases_ = np.sqrt(sigma2[:n_workers]), bias[:n_workers]
        self.prior_sigma_, self.tau_ = math.sqrt(pooled), math.sqrt(tau2)
        self.params_ = self._params()
        self.results_ = [self.aggregate(a, None if contexts is None else contexts[i])
                         for i, a in enumerate(items)]
        return self

    @staticmethod
    def _e_step(t: np.ndarray, w: np.ndarray, u: np.ndarray, sigma2: np.ndarray,
                bias: np.ndarray, n_t: int) -> tuple[np.ndarray, np.ndarray]:
        """Posterior of each task score (flat prior): mean = precision-weighted mean of the
        bias-corrected ratings, variance = 1 / total precision."""
        prec = 1.0 / sigma2[w]
        den = np.maximum(np.bincount(t, prec, minlength=n_t), 1e-300)
        return np.bincount(t, prec * (u - bias[w]), minlength=n_t) / den, 1.0 / den

    def _m_step(self, t: np.ndarray, w: np.ndarray, u: np.ndarray, score: np.ndarray,
                post_var: np.ndarray, cnt_w: np.ndarray, pooled: float, k0: float
                ) -> tuple[np.ndarray, np.ndarray, float]:
        """Noise: expected squared residual under the score's posterior, E[(u - s)^2] =
        (u - mean)^2 + var (without the variance term, a worker who dominates a task's
        mean looks more precise than they are and gains still more weight), plus the
        prior's ``k0`` pseudo-answers; then the shrunk offsets (see the class doc)."""
        n_w = cnt_w.shape[0]
        res = u - score[t]
        sq = res**2 + post_var[t]
        sigma2 = (np.bincount(w, sq, minlength=n_w) + k0 * pooled) / (cnt_w + k0)
        bias, tau2 = np.zeros(n_w), 0.0
        if self.correct_bias:
            seen = cnt_w > 0
            raw = np.bincount(w, res, minlength=n_w)[seen] / cnt_w[seen]
            # empirical Bayes: spread of the offsets beyond their sampling noise
            tau2 = max(float(np.var(raw) - np.mean(sigma2[seen] / cnt_w[seen])), 0.0)
            if tau2 > 0:
                bias[seen] = raw * cnt_w[seen] / (cnt_w[seen] + sigma2[seen] / tau2)
                bias -= np.sum(cnt_w * bias) / cnt_w.sum()  # offsets average 0 over answers
            sq = (res - bias[w]) ** 2 + post_var[t]
            sigma2 = (np.bincount(w, sq, minlength=n_w) + k0 * pooled) / (cnt_w + k0)
        # floor: a worker who always agrees still has some noise (no infinite weight)
        return np.maximum(sigma2, 1e-4 * pooled), bias, tau2


def _flatten(items: Sequence[Sequence[WorkerAnswer]], scales: list[tuple[float, float]]
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t, w, u = [], [], []
    for i, answers in enumerate(items):
        lo, hi = scales[i]
        for worker, a in answers:
            r = float(a["rating"] if isinstance(a, dict) else a)
            if not lo <= r <= hi:
                raise ValueError(f"task {i}: rating {r} outside the scale {lo}..{hi}")
            t.append(i)
            w.append(worker)
            u.append((r - lo) / (hi - lo))
    return (np.asarray(t, dtype=np.int64), np.asarray(w, dtype=np.int64),
            np.asarray(u, dtype=np.float64))


def _posterior(u: np.ndarray, prec: np.ndarray) -> tuple[float, float]:
    """Precision-weighted mean and its standard error, inflated by the task's dispersion
    ``phi = (sum prec * resid^2 + 1) / (n - 1 + 1)``: one pseudo-answer at phi = 1 keeps a
    lone answer at its noise and lets agreement narrow, disagreement widen, the interval."""
    total = float(prec.sum())
    est = float(prec @ u / total)
    phi = (float(prec @ (u - est) ** 2) + 1.0) / len(u)
    return est, math.sqrt(phi / total)
