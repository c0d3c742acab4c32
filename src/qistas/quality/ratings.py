"""Numeric ratings (e.g. 1-7 Likert): consensus with per-annotator bias and scale."""

from __future__ import annotations

import warnings

import numpy as np

from ._base import BaseEstimator
from ._validation import ConvergenceWarning, as_index_array, check_n_iter, check_positive


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
