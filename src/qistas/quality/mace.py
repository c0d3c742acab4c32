"""MACE: multi-annotator competence estimation."""

from __future__ import annotations

import numpy as np

from ._base import EMClassifier, check_shrinkage, class_priors, uniform_init
from ._sparse import AnswerMatrix, normalize_log
from ._validation import Answers, check_positive
from .online import posterior_for_task

_TINY = 1e-300


class MACE(EMClassifier):
    """MACE: each worker either knows the answer or spams from a personal distribution.

    Model: for each answer, worker ``w`` is competent with probability ``theta_w`` and
    then answers the true class; otherwise they answer ``l`` with probability
    ``xi_w[l]`` whatever the truth. So ``P(l | z) = theta_w [l == z] + (1 - theta_w)
    xi_w[l]``: a spammer who always picks the same label gets a low ``theta`` and a peaked
    ``xi`` instead of dragging that label's posterior. True classes are uniform
    (``learn_priors=False``, as in the paper) or learned.

    Fitted by EM from the soft majority vote, with a Beta(``a``, ``b``) prior on every
    ``theta`` and ``smoothing`` pseudo-answers on every ``xi`` cell (pseudo-count MAP).
    ``n_restarts`` extra runs from random posteriors keep the best log-likelihood.

    Hovy, D., Berg-Kirkpatrick, T., Vaswani, A. and Hovy, E. (2013). Learning whom to
    trust with MACE. NAACL-HLT, 1120-1130.
    """

    def __init__(
        self,
        n_iter: int = 100,
        tol: float = 1e-5,
        a: float = 1.0,
        b: float = 1.0,
        smoothing: float = 1.0,
        alpha_prior: float = 1.0,
        prior_shrinkage: float = 0.7,
        n_restarts: int = 0,
        random_state: int | None = 0,
    ) -> None:
        self.n_iter = n_iter
        self.tol = tol
        self.a = a
        self.b = b
        self.smoothing = smoothing
        self.alpha_prior = alpha_prior
        self.prior_shrinkage = prior_shrinkage
        self.n_restarts = n_restarts
        self.random_state = random_state

    def _validate_params(self) -> None:
        super()._validate_params()
        for name in ("a", "b", "smoothing", "alpha_prior"):
            check_positive(getattr(self, name), name, strict=False)
        check_shrinkage(self.prior_shrinkage)
        if int(self.n_restarts) != self.n_restarts or self.n_restarts < 0:
            raise ValueError("n_restarts must be a non-negative integer")

    def _fit(self, data: Answers, gold: np.ndarray | None) -> np.ndarray:
        self._answers = AnswerMatrix(data)
        rng = np.random.default_rng(self.random_state)
        best = None
        for run in range(int(self.n_restarts) + 1):
            if run == 0:  # noqa: SIM108 - the first start and the random restarts read better apart
                init = uniform_init(data)
            else:
                init = rng.dirichlet(np.ones(data.n_labels), size=data.n_tasks).T.copy()
            self._reset(data)
            probas = self._run_em(data, gold, init)
            if best is None or self.log_likelihood_ > best[0]:
                best = (self.log_likelihood_, probas, self._state())
        assert best is not None
        self._restore(best[2])
        del self._answers
        return best[1]

    def _reset(self, data: Answers) -> None:
        self.competences_ = np.full(data.n_workers, 0.5)
        self.spam_dists_ = np.full((data.n_workers, data.n_labels), 1.0 / data.n_labels)
        self.priors_ = np.full(data.n_labels, 1.0 / data.n_labels)

    def _state(self) -> dict:
        keys = (
            "competences_",
            "spam_dists_",
            "priors_",
            "converged_",
            "n_iter_",
            "history_",
            "log_likelihood_",
        )
        return {k: getattr(self, k) for k in keys}

    def _restore(self, state: dict) -> None:
        for k, v in state.items():
            setattr(self, k, v)

    @property
    def confusions_(self) -> np.ndarray:
        """(W, K, K) P(answer l | true k) = theta [l == k] + (1 - theta) xi[l]."""
        return mace_confusions(self.competences_, self.spam_dists_)

    @property
    def skills_(self) -> np.ndarray:
        return self.competences_

    def _e_step(self) -> tuple[np.ndarray, float]:
        log_conf = np.log(np.maximum(self.confusions_, _TINY))
        loglik = self._answers.loglik(log_conf)
        loglik += np.log(np.maximum(self.priors_, _TINY))[:, None]
        return normalize_log(loglik)

    def _m_step(self, probas_t: np.ndarray) -> None:
        ans = self._answers
        theta, xi = self.competences_[:, None], self.spam_dists_
        # expected answers equal to the truth, per (worker, label): diagonal of the counts
        agree = np.diagonal(ans.expected_counts(probas_t), axis1=1, axis2=2)
        # of those, the share explained by competence rather than a lucky spam draw
        knowing = agree * theta / np.maximum(theta + (1.0 - theta) * xi, _TINY)
        spam = np.maximum(ans.worker_label_counts - knowing, 0.0)
        n = ans.worker_label_counts.sum(axis=1)
        self.competences_ = (knowing.sum(axis=1) + self.a) / (n + self.a + self.b)
        spam += self.smoothing
        self.spam_dists_ = spam / spam.sum(axis=1, keepdims=True)
        self.priors_ = class_priors(probas_t, ans.answered, self.alpha_prior, self.prior_shrinkage)

    def predict_proba_one(self, workers: object, labels: object) -> np.ndarray:
        """Posterior of one new task from its answers, without refitting."""
        return posterior_for_task(workers, labels, self.confusions_, self.priors_)


def mace_confusions(competences: np.ndarray, spam_dists: np.ndarray) -> np.ndarray:
    theta = np.asarray(competences, dtype=np.float64)
    xi = np.asarray(spam_dists, dtype=np.float64)
    k = xi.shape[1]
    conf = ((1.0 - theta)[:, None, None] * xi[:, None, :]).repeat(k, axis=1)
    idx = np.arange(k)
    conf[:, idx, idx] += theta[:, None]
    return conf
