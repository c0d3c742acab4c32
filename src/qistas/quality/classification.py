"""Truth inference for single-label classification: votes and Dawid-Skene models.

Every estimator takes answers as three equal-length integer arrays (``tasks``,
``workers``, ``labels``) and sets ``labels_`` (n_tasks,), ``probas_`` (n_tasks, n_labels).
"""

from __future__ import annotations

import numpy as np

from ._base import BaseClassifier, EMClassifier, check_shrinkage, class_priors, uniform_init
from ._sparse import AnswerMatrix, normalize_log
from ._validation import Answers, as_index_array, check_n_iter, check_positive
from .online import posterior_for_task

_TINY = 1e-300  # floor before log when a smoothing prior is switched off


class MajorityVote(BaseClassifier):
    """Plurality vote; ``probas_`` are vote shares.

    Ties go to the lowest label index. Tasks with no answer get a uniform row and
    label -1.
    """

    def __init__(self) -> None:
        pass

    def _fit(self, data: Answers, gold: np.ndarray | None) -> np.ndarray:
        return uniform_init(data)


class WeightedMajorityVote(BaseClassifier):
    """Vote where each worker's answer counts with a weight.

    With ``weights`` given (length n_workers) those are used as they are. Otherwise the
    weights are learned as each worker's agreement rate with the current consensus,
    repeated ``n_iter`` times (one pass is the "worker agreement with aggregate" method,
    Wawa). ``probas_`` are weighted vote shares. ``weights_`` holds the weights used.
    """

    def __init__(self, weights: object = None, n_iter: int = 1) -> None:
        self.weights = weights
        self.n_iter = n_iter

    def _validate_params(self) -> None:
        check_n_iter(self.n_iter)

    def _fit(self, data: Answers, gold: np.ndarray | None) -> np.ndarray:
        k, t = data.n_labels, data.n_tasks
        idx = data.labels * t + data.tasks
        if self.weights is not None:
            weights = np.asarray(self.weights, dtype=np.float64)
            if weights.shape != (data.n_workers,) or np.any(weights < 0):
                raise ValueError(f"weights must be {data.n_workers} non-negative numbers")
            rounds = 1
        else:
            weights = np.ones(data.n_workers)
            rounds = self.n_iter + 1
        n_per_worker = np.bincount(data.workers, minlength=data.n_workers)
        for r in range(rounds):
            scores = np.bincount(idx, weights=weights[data.workers], minlength=k * t)
            scores = scores.reshape(k, t)
            total = scores.sum(axis=0)
            probas = np.full((k, t), 1.0 / k)
            ok = total > 0
            probas[:, ok] = scores[:, ok] / total[ok]
            if gold is not None:
                known = np.flatnonzero(gold >= 0)
                probas[:, known] = 0.0
                probas[gold[known], known] = 1.0
            if r == rounds - 1:
                break
            # agreement of each answer with the consensus label (soft: its vote share)
            agree = probas[data.labels, data.tasks]
            hits = np.bincount(data.workers, weights=agree, minlength=data.n_workers)
            weights = hits / np.maximum(n_per_worker, 1)
        self.weights_ = weights
        return probas


class DawidSkene(EMClassifier):
    """Dawid-Skene: one full confusion matrix per worker, fitted by EM.

    Model: task ``t`` has a true class ``z_t ~ Categorical(priors)``; worker ``w`` answers
    ``l`` with probability ``confusions[w, z_t, l]``, independently across answers.
    EM starts from the soft majority vote (an M-step first), then alternates the
    posterior of every ``z_t`` (E-step) and maximum a posteriori confusions and priors
    (M-step).

    Each confusion row has a Dirichlet prior adding ``alpha`` pseudo-answers to every cell
    and ``alpha_diag`` more on the diagonal, so a worker with a handful of answers gets a
    smooth, mildly-better-than-chance matrix (a row with no evidence: 0.75 on the diagonal
    for two classes, 0.6 for four) instead of a degenerate one made of zeros and ones
    that would let a newcomer's single answer outweigh an experienced worker.
    ``priors_`` get ``alpha_prior`` pseudo-tasks per class.

    Tasks given in ``gold`` are clamped to their known class at every E-step, and the
    first M-step uses the gold tasks only, so a worker's confusions start from what gold
    shows of them rather than from the majority vote. Tasks with
    no answer get the class prior ``priors_`` as their posterior and label -1.

    Dawid, A. P. and Skene, A. M. (1979). Maximum likelihood estimation of observer
    error-rates using the EM algorithm. Applied Statistics 28(1), 20-28.
    """

    def __init__(
        self,
        n_iter: int = 100,
        tol: float = 1e-5,
        alpha: float = 0.5,
        alpha_diag: float = 1.0,
        alpha_prior: float = 1.0,
        prior_shrinkage: float = 0.0,
    ) -> None:
        self.n_iter = n_iter
        self.tol = tol
        self.alpha = alpha
        self.alpha_diag = alpha_diag
        self.alpha_prior = alpha_prior
        self.prior_shrinkage = prior_shrinkage

    def _validate_params(self) -> None:
        super()._validate_params()
        for name in ("alpha", "alpha_diag", "alpha_prior"):
            check_positive(getattr(self, name), name, strict=False)
        check_shrinkage(self.prior_shrinkage)

    def _fit(self, data: Answers, gold: np.ndarray | None) -> np.ndarray:
        self._answers = AnswerMatrix(data)
        k = data.n_labels
        self._pseudo = np.full((k, k), float(self.alpha)) + float(self.alpha_diag) * np.eye(k)
        init = uniform_init(data)
        if gold is not None and np.any(gold >= 0):
            # first M-step from the gold tasks alone: workers seen on gold start from their
            # measured confusions (even when the crowd's majority is systematically
            # wrong), the others from the smoothing prior
            init[:, gold < 0] = 0.0
        probas = self._run_em(data, gold, init)
        del self._answers
        return probas

    def _m_step(self, probas_t: np.ndarray) -> None:
        ans = self._answers
        counts = ans.expected_counts(probas_t) + self._pseudo
        # rows are P(answer | true class): normalise over the last axis
        self.confusions_ = counts / counts.sum(axis=2, keepdims=True)
        self.priors_ = class_priors(probas_t, ans.answered, self.alpha_prior, self.prior_shrinkage)

    def _e_step(self) -> tuple[np.ndarray, float]:
        # log-space: products of many small probabilities become sums
        log_conf = np.log(np.maximum(self.confusions_, _TINY))
        loglik = self._answers.loglik(log_conf)
        loglik += np.log(np.maximum(self.priors_, _TINY))[:, None]
        return normalize_log(loglik)

    @property
    def skills_(self) -> np.ndarray:
        """Per-worker accuracy implied by the confusions and class priors."""
        diag = np.diagonal(self.confusions_, axis1=1, axis2=2)
        return diag @ self.priors_

    def predict_proba_one(self, workers: object, labels: object) -> np.ndarray:
        """Posterior of one new task from its answers, without refitting.

        Workers unseen at fit time (index >= n_workers_ or -1) use the average confusion.
        """
        return posterior_for_task(workers, labels, self.confusions_, self.priors_)


class OneCoinDawidSkene(EMClassifier):
    """One-coin Dawid-Skene: each worker has one accuracy, errors spread uniformly.

    Model: ``P(w answers l | z) = skill_w`` if ``l == z`` else
    ``(1 - skill_w) / (K - 1)``; class priors are learned. Each skill has a Beta prior of
    ``a`` correct and ``b`` wrong pseudo-answers: a worker with two answers cannot reach
    skill 0 or 1. With ``floor_at_chance`` a skill never drops below ``1 / K``: in a
    symmetric model a below-chance worker would be read as evidence *against* their own
    answer, and on sparse data with many weak workers that feedback, together with learned
    class priors, collapses every task onto one class (crowd-kit's one-coin model does so
    on TREC relevance). Class priors are uniform by default (``prior_shrinkage=1``) for
    the same reason; use :class:`DawidSkene` or :class:`MACE` when label use is skewed.

    Ghosh, A., Kale, S. and McAfee, P. (2011). Who moderates the moderators? EC'11;
    Zhang, Y. et al. (2014). Spectral methods meet EM. NeurIPS.
    """

    def __init__(
        self,
        n_iter: int = 100,
        tol: float = 1e-5,
        a: float = 2.0,
        b: float = 1.0,
        floor_at_chance: bool = True,
        alpha_prior: float = 1.0,
        prior_shrinkage: float = 1.0,
    ) -> None:
        self.n_iter = n_iter
        self.tol = tol
        self.a = a
        self.b = b
        self.floor_at_chance = floor_at_chance
        self.alpha_prior = alpha_prior
        self.prior_shrinkage = prior_shrinkage

    def _validate_params(self) -> None:
        super()._validate_params()
        for name in ("a", "b", "alpha_prior"):
            check_positive(getattr(self, name), name, strict=False)
        check_shrinkage(self.prior_shrinkage)

    def _fit(self, data: Answers, gold: np.ndarray | None) -> np.ndarray:
        self._answers = AnswerMatrix(data)
        probas = self._run_em(data, gold, uniform_init(data))
        del self._answers
        return probas

    def _m_step(self, probas_t: np.ndarray) -> None:
        ans = self._answers
        counts = ans.expected_counts(probas_t)
        correct = np.trace(counts, axis1=1, axis2=2)
        total = ans.worker_label_counts.sum(axis=1)
        self.skills_ = (correct + self.a) / (total + self.a + self.b)
        if self.floor_at_chance:
            self.skills_ = np.maximum(self.skills_, 1.0 / ans.n_labels)
        self.priors_ = class_priors(probas_t, ans.answered, self.alpha_prior, self.prior_shrinkage)

    @property
    def confusions_(self) -> np.ndarray:
        return one_coin_confusions(self.skills_, self.n_labels_)

    def _e_step(self) -> tuple[np.ndarray, float]:
        k = self._answers.n_labels
        log_conf = np.log(np.maximum(one_coin_confusions(self.skills_, k), _TINY))
        loglik = self._answers.loglik(log_conf)
        loglik += np.log(np.maximum(self.priors_, _TINY))[:, None]
        return normalize_log(loglik)

    def predict_proba_one(self, workers: object, labels: object) -> np.ndarray:
        """Posterior of one new task from its answers, without refitting."""
        return posterior_for_task(workers, labels, self.confusions_, self.priors_)


def one_coin_confusions(skills: np.ndarray, n_labels: int) -> np.ndarray:
    """(W, K, K) confusion matrices with ``skill`` on the diagonal, the rest spread evenly."""
    skills = np.asarray(skills, dtype=np.float64)
    off = (1.0 - skills) / max(n_labels - 1, 1)
    conf = np.repeat(off[:, None, None], n_labels, axis=1).repeat(n_labels, axis=2)
    idx = np.arange(n_labels)
    conf[:, idx, idx] = skills[:, None]
    return conf


def majority_vote(tasks: object, labels: object, *, n_labels: int | None = None) -> np.ndarray:
    """Plurality label per task index (-1 where a task has no answer)."""
    t = as_index_array(tasks, "tasks")
    return MajorityVote().fit(t, np.zeros_like(t), labels, n_labels=n_labels).labels_
