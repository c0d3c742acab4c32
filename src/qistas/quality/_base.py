"""Estimator base classes: parameters, cloning and the shared classifier contract."""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import numpy as np

from ._validation import (
    Answers,
    ConvergenceWarning,
    check_answers,
    check_gold,
    check_n_iter,
    check_positive,
)


class BaseEstimator:
    """Parameters live in ``__init__`` and are read back by name, as in scikit-learn."""

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values() if p.name != "self"]

    def get_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> BaseEstimator:
        valid = set(self._param_names())
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"unknown parameter {name!r} for {type(self).__name__}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def clone(estimator: BaseEstimator) -> BaseEstimator:
    """A new unfitted estimator with the same parameters."""
    return type(estimator)(**estimator.get_params())


#: Posteriors within this relative distance of a task's maximum count as tied with it.
#: Posteriors of tied classes are sums of the same log terms in a different order, so
#: they can differ in the last bits (a 1/1/1 vote gives 0.33333333333333354 for one of
#: the three); 1e-9 is far above that rounding and far below any real difference.
TIE_RTOL = 1e-9


def best_labels(probas_t: np.ndarray, rtol: float = TIE_RTOL) -> np.ndarray:
    """Index of the most likely class of each column of (K, T) posteriors.

    Tie rule: every class whose posterior is within ``rtol`` (relative) of the column's
    maximum is tied, and the lowest index among them wins -- the first label in the
    project's label order. So a tie is never decided by float rounding.
    """
    p = np.asarray(probas_t, dtype=np.float64)
    top = p.max(axis=0)
    # argmax of a boolean array is the first True: the lowest tied index
    return np.argmax(p >= top * (1.0 - rtol), axis=0).astype(np.int64)


def best_label(posterior: np.ndarray, rtol: float = TIE_RTOL) -> int:
    """Most likely class of one task's posterior (K,), ties to the lowest index."""
    return int(best_labels(np.asarray(posterior, dtype=np.float64)[:, None], rtol)[0])


def labels_from_probas(probas_t: np.ndarray, answered: np.ndarray) -> np.ndarray:
    """Most likely label per task from (K, T) posteriors, by the tie rule of
    :func:`best_labels` (posteriors equal within a relative 1e-9 go to the lowest index).

    Tasks without any answer get -1.
    """
    labels = best_labels(probas_t)
    labels[~answered] = -1
    return labels


def uniform_init(data: Answers) -> np.ndarray:
    """Soft majority vote as (K, T): vote shares, uniform where a task has no answer."""
    k, t = data.n_labels, data.n_tasks
    votes = np.bincount(data.labels * t + data.tasks, minlength=k * t).reshape(k, t)
    total = votes.sum(axis=0)
    out = votes / np.maximum(total, 1)
    out[:, total == 0] = 1.0 / k
    return out


class BaseClassifier(BaseEstimator):
    """Shared ``fit`` for estimators that infer one true class per task.

    Subclasses implement ``_fit(data, gold) -> probas (K, T)`` and may set more fitted
    attributes. ``probas_`` is exposed as (n_tasks, n_labels).
    """

    supports_gold = True

    def fit(
        self,
        tasks: object,
        workers: object,
        labels: object,
        *,
        n_labels: int | None = None,
        n_tasks: int | None = None,
        n_workers: int | None = None,
        gold: object = None,
    ) -> BaseClassifier:
        """Fit on answers ``labels[i]`` given by ``workers[i]`` to ``tasks[i]``.

        ``gold``, when given, has length ``n_tasks`` and holds the known label of a task
        or -1; known tasks are clamped to their gold label during inference.
        """
        data = check_answers(
            tasks, workers, labels, n_tasks=n_tasks, n_workers=n_workers, n_labels=n_labels
        )
        g = check_gold(gold, data.n_tasks, data.n_labels)
        self._validate_params()
        answered = np.bincount(data.tasks, minlength=data.n_tasks) > 0
        probas_t = self._fit(data, g)
        self.n_tasks_, self.n_workers_, self.n_labels_ = data.n_tasks, data.n_workers, data.n_labels
        self.labels_ = labels_from_probas(probas_t, answered)
        if g is not None:
            known = g >= 0
            self.labels_[known] = g[known]
        self.probas_ = np.ascontiguousarray(probas_t.T)
        return self

    def fit_predict(self, tasks: object, workers: object, labels: object, **kw: Any) -> np.ndarray:
        return self.fit(tasks, workers, labels, **kw).labels_

    def fit_predict_proba(
        self, tasks: object, workers: object, labels: object, **kw: Any
    ) -> np.ndarray:
        return self.fit(tasks, workers, labels, **kw).probas_

    def _validate_params(self) -> None:
        """Check ``__init__`` parameters; called at the start of ``fit``."""

    def _fit(self, data: Answers, gold: np.ndarray | None) -> np.ndarray:
        raise NotImplementedError


def class_priors(
    probas_t: np.ndarray, answered: np.ndarray, alpha_prior: float, shrinkage: float
) -> np.ndarray:
    """Class priors from (K, T) posteriors of answered tasks.

    ``alpha_prior`` pseudo-tasks per class (Dirichlet smoothing), then a share
    ``shrinkage`` of the mass is moved to the uniform distribution: 0 learns the priors
    freely, 1 keeps them uniform. Shrinking stops a large majority class from swamping
    the minority classes of ambiguous tasks.
    """
    per_class = probas_t @ answered.astype(np.float64) + alpha_prior
    per_class /= per_class.sum()
    k = per_class.shape[0]
    return shrinkage / k + (1.0 - shrinkage) * per_class


def check_shrinkage(value: float) -> None:
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"prior_shrinkage must be in [0, 1], got {value}")


def clamp_gold(probas_t: np.ndarray, gold: np.ndarray | None) -> np.ndarray:
    """Replace the posterior of tasks with a known answer by a one-hot row (in place)."""
    if gold is not None:
        known = np.flatnonzero(gold >= 0)
        probas_t[:, known] = 0.0
        probas_t[gold[known], known] = 1.0
    return probas_t


class EMClassifier(BaseClassifier):
    """EM driver: subclasses give ``_init_params``, ``_e_step`` and ``_m_step``.

    Stops when the mean log-likelihood per answer changes by less than ``tol`` (1e-5 by
    default, crowd-kit's tolerance too; posteriors then agree with a 1e-6 run to a tenth
    of a point on the benchmark sets, in about half the iterations); sets
    ``converged_``, ``n_iter_`` and ``log_likelihood_`` (per answer, at the last E-step).
    """

    n_iter: int
    tol: float
    #: Whether a run that stops at ``n_iter`` warns (:class:`ConvergenceWarning`). Off for
    #: a model fitted as a candidate among others (:class:`~qistas.quality.selection.AutoClassifier`):
    #: a warnings filter set around it would be process-wide and not thread-safe, and refits
    #: run in threads of a server.
    warns_unconverged: bool = True

    def _validate_params(self) -> None:
        check_n_iter(self.n_iter)
        check_positive(self.tol, "tol", strict=False)

    def _run_em(self, data: Answers, gold: np.ndarray | None, probas_t: np.ndarray) -> np.ndarray:
        clamp_gold(probas_t, gold)
        self._m_step(probas_t)
        previous = -np.inf
        self.converged_ = False
        self.history_: list[float] = []
        for it in range(1, self.n_iter + 1):
            probas_t, loglik = self._e_step()
            clamp_gold(probas_t, gold)
            self._m_step(probas_t)
            loglik /= data.n_answers
            self.history_.append(loglik)
            self.n_iter_ = it
            if abs(loglik - previous) <= self.tol:
                self.converged_ = True
                break
            previous = loglik
        if not self.converged_ and self.warns_unconverged:
            warnings.warn(
                f"{type(self).__name__} did not converge in {self.n_iter} iterations "
                f"(tol={self.tol}); raise n_iter or tol",
                ConvergenceWarning,
                stacklevel=3,
            )
        self.log_likelihood_ = self.history_[-1]
        return probas_t

    def _m_step(self, probas_t: np.ndarray) -> None:
        raise NotImplementedError

    def _e_step(self) -> tuple[np.ndarray, float]:
        raise NotImplementedError
