"""GLAD: worker ability times task easiness."""

from __future__ import annotations

import numpy as np

from ._base import EMClassifier, check_shrinkage, class_priors, uniform_init
from ._sparse import normalize_log
from ._validation import Answers, check_positive

_TINY = 1e-300


def _log_sigmoid(x: np.ndarray) -> np.ndarray:
    # log(1 / (1 + e^-x)) = -log(1 + e^-x), computed without overflow for large |x|
    return -np.logaddexp(0.0, -x)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.exp(_log_sigmoid(x))


class GLAD(EMClassifier):
    """GLAD: generative model of labels, abilities and difficulties.

    Model: worker ``w`` answers task ``t`` correctly with probability
    ``sigmoid(alpha_w * beta_t)``, otherwise uniformly one of the other K - 1 labels.
    ``alpha_w`` in (-inf, inf) is the worker's ability (negative: adversarial),
    ``beta_t > 0`` the task's easiness (``difficulties_`` holds ``1 / beta``).
    Gaussian priors: ``alpha ~ N(alpha_mean, 1 / alpha_precision)``,
    ``log beta ~ N(0, 1 / beta_precision)``.

    Class priors are uniform by default (``prior_shrinkage=1``), as in the paper: learned
    priors let the majority class absorb ambiguous tasks on sparse, skewed data. EM starts
    from the soft majority vote; the M-step takes ``m_step_iter`` damped Newton
    steps on the alphas, then on the log-betas (each is a set of independent 1-d concave
    problems, solved for all workers or tasks at once with ``np.bincount``).

    Whitehill, J., Ruvolo, P., Wu, T., Bergsma, J. and Movellan, J. (2009). Whose vote
    should count more: optimal integration of labels from labelers of unknown expertise.
    NeurIPS 22.
    """

    def __init__(
        self,
        n_iter: int = 100,
        tol: float = 1e-5,
        alpha_mean: float = 1.0,
        alpha_precision: float = 4.0,
        beta_precision: float = 4.0,
        m_step_iter: int = 2,
        alpha_prior: float = 1.0,
        prior_shrinkage: float = 1.0,
    ) -> None:
        self.n_iter = n_iter
        self.tol = tol
        self.alpha_mean = alpha_mean
        self.alpha_precision = alpha_precision
        self.beta_precision = beta_precision
        self.m_step_iter = m_step_iter
        self.alpha_prior = alpha_prior
        self.prior_shrinkage = prior_shrinkage

    def _validate_params(self) -> None:
        super()._validate_params()
        for name in ("alpha_precision", "beta_precision", "alpha_prior"):
            check_positive(getattr(self, name), name, strict=False)
        check_shrinkage(self.prior_shrinkage)
        if int(self.m_step_iter) != self.m_step_iter or self.m_step_iter < 1:
            raise ValueError("m_step_iter must be a positive integer")

    def _fit(self, data: Answers, gold: np.ndarray | None) -> np.ndarray:
        self._data = data
        k, t = data.n_labels, data.n_tasks
        self._cell = data.labels * t + data.tasks  # flat index into (K, T) arrays
        self._answered = np.bincount(data.tasks, minlength=t) > 0
        self._log_wrong = np.log(max(k - 1, 1))
        self.alphas_ = np.full(data.n_workers, float(self.alpha_mean))
        self._log_betas = np.zeros(t)
        self.priors_ = np.full(k, 1.0 / k)
        probas = self._run_em(data, gold, uniform_init(data))
        self.betas_ = np.exp(self._log_betas)
        del self._data, self._cell, self._answered, self._log_betas
        return probas

    @property
    def skills_(self) -> np.ndarray:
        return self.alphas_

    @property
    def difficulties_(self) -> np.ndarray:
        return 1.0 / self.betas_

    def _scores(self) -> np.ndarray:
        d = self._data
        return self.alphas_[d.workers] * np.exp(self._log_betas[d.tasks])

    def _e_step(self) -> tuple[np.ndarray, float]:
        d = self._data
        k, t = d.n_labels, d.n_tasks
        s = self._scores()
        log_right = _log_sigmoid(s)
        log_wrong = _log_sigmoid(-s) - self._log_wrong
        # every answer says "wrong" for all classes, plus (right - wrong) for its own label
        loglik = np.bincount(self._cell, weights=log_right - log_wrong, minlength=k * t)
        loglik = loglik.reshape(k, t)
        loglik += np.bincount(d.tasks, weights=log_wrong, minlength=t)
        loglik += np.log(np.maximum(self.priors_, _TINY))[:, None]
        return normalize_log(loglik)

    def _m_step(self, probas_t: np.ndarray) -> None:
        d = self._data
        p_right = probas_t.ravel()[self._cell]  # P(answer is the true class)
        grad: np.ndarray
        curv: np.ndarray
        for _ in range(int(self.m_step_iter)):
            # ability: d/d alpha of log-lik is (p - sigmoid(s)) * beta; concave in alpha
            beta = np.exp(self._log_betas[d.tasks])
            sig = _sigmoid(self.alphas_[d.workers] * beta)
            grad = np.bincount(d.workers, (p_right - sig) * beta, minlength=d.n_workers)
            grad = grad - self.alpha_precision * (self.alphas_ - self.alpha_mean)
            curv = np.bincount(d.workers, sig * (1 - sig) * beta**2, minlength=d.n_workers)
            curv = curv + self.alpha_precision
            # damped Newton: a step of at most 1 keeps the update inside the region where
            # the quadratic approximation holds when sigmoid saturates
            self.alphas_ = self.alphas_ + np.clip(grad / np.maximum(curv, 1e-12), -1.0, 1.0)
            # easiness in log space keeps beta > 0; Fisher scoring (expected curvature)
            a = self.alphas_[d.workers]
            s = a * beta
            sig = _sigmoid(s)
            grad = np.bincount(d.tasks, (p_right - sig) * s, minlength=d.n_tasks)
            grad = grad - self.beta_precision * self._log_betas
            curv = np.bincount(d.tasks, sig * (1 - sig) * s**2, minlength=d.n_tasks)
            curv = curv + self.beta_precision
            self._log_betas = self._log_betas + np.clip(grad / np.maximum(curv, 1e-12), -1.0, 1.0)
        self.priors_ = class_priors(
            probas_t, self._answered, self.alpha_prior, self.prior_shrinkage
        )
