"""Posterior of a single task from fitted worker models, without refitting.

A platform calls this after every annotation: the worker confusion matrices and class
priors come from the last batch fit (``DawidSkene().fit(...)``), the answers from the
task at hand. Cost: O(answers x classes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WorkerModel:
    """Fitted worker confusion matrices and class priors, ready to score new tasks.

    ``confusions[w, k, l]`` = P(worker w answers l | true class k); rows sum to 1.
    ``default_confusion`` is used for workers unknown to the model (index -1 or >= the
    number of workers); by default the answer-weighted average of all matrices is a
    reasonable stand-in for a newcomer.
    """

    confusions: np.ndarray
    priors: np.ndarray
    default_confusion: np.ndarray | None = None

    @classmethod
    def from_estimator(cls, estimator: object) -> WorkerModel:
        """Take ``confusions_`` and ``priors_`` from a fitted estimator."""
        conf = np.asarray(estimator.confusions_, dtype=np.float64)  # type: ignore[attr-defined]
        priors = np.asarray(estimator.priors_, dtype=np.float64)  # type: ignore[attr-defined]
        return cls(conf, priors)

    @property
    def n_labels(self) -> int:
        return int(self.priors.shape[0])

    def posterior(self, workers: object, labels: object) -> np.ndarray:
        return posterior_for_task(
            workers, labels, self.confusions, self.priors, self.default_confusion
        )


def posterior_for_task(
    workers: object,
    labels: object,
    confusions: np.ndarray,
    priors: np.ndarray,
    default_confusion: np.ndarray | None = None,
) -> np.ndarray:
    """P(true class | this task's answers) as an array of length K summing to 1.

    ``workers[i]`` answered ``labels[i]``. ``confusions`` is (W, K, K) with rows
    P(answer | true class); ``priors`` is (K,). A worker outside ``[0, W)`` (for example
    -1, or one who joined after the fit) uses ``default_confusion`` (K, K), which defaults
    to the mean of all workers' matrices. No answers: the priors.
    """
    conf = np.asarray(confusions, dtype=np.float64)
    pri = np.asarray(priors, dtype=np.float64)
    if conf.ndim != 3 or conf.shape[1] != conf.shape[2] or conf.shape[1] != pri.shape[0]:
        raise ValueError("confusions must be (W, K, K) and priors (K,)")
    w = np.asarray(workers, dtype=np.int64).reshape(-1)
    lab = np.asarray(labels, dtype=np.int64).reshape(-1)
    if w.shape != lab.shape:
        raise ValueError("workers and labels must have equal length")
    k = pri.shape[0]
    if lab.size and (lab.min() < 0 or lab.max() >= k):
        raise ValueError(f"labels must be in [0, {k})")
    # log-space sum over answers; max-subtraction keeps exp from underflowing
    logp = np.log(np.maximum(pri, 1e-300)).copy()
    known = (w >= 0) & (w < conf.shape[0])
    if np.any(known):
        logp += np.log(np.maximum(conf[w[known], :, lab[known]], 1e-300)).sum(axis=0)
    if not np.all(known):
        default = conf.mean(axis=0) if default_confusion is None else default_confusion
        default = np.asarray(default, dtype=np.float64)
        logp += np.log(np.maximum(default[:, lab[~known]], 1e-300)).sum(axis=1)
    logp -= logp.max()
    p = np.exp(logp)
    return p / p.sum()
