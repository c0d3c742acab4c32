"""The answer matrix behind every confusion-matrix EM.

All answers are flattened once into a sparse count matrix ``B`` of shape
(n_tasks, n_workers * n_labels) with ``B[t, w * K + l]`` = how many times worker ``w``
answered ``l`` on task ``t``. Then, for per-worker confusion matrices
``pi[w, k, l] = P(w answers l | true class k)``:

* E-step: ``loglik[k, t] = sum over answers log pi[w, k, l]`` is ``(B @ L).T`` with
  ``L[w * K + l, k] = log pi[w, k, l]`` -- one sparse product, no loop over tasks or workers;
* M-step: the expected counts ``n[w, k, l] = sum over answers P(true k)`` are
  ``probas @ B`` -- one more sparse product.

Posteriors are kept as (K, T) arrays: reductions over K then run across K contiguous rows,
several times faster than reducing the short last axis of a (T, K) array.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import scipy.sparse as sp

from ._validation import Answers


class AnswerMatrix:
    """Sparse (task, worker-label) counts built once per fit."""

    def __init__(self, data: Answers) -> None:
        k = data.n_labels
        self.n_tasks, self.n_workers, self.n_labels = data.n_tasks, data.n_workers, k
        self.n_answers = data.n_answers
        cols = data.workers * k + data.labels
        shape = (data.n_tasks, data.n_workers * k)
        ones = np.ones(data.n_answers)
        if np.all(data.tasks[1:] >= data.tasks[:-1]):
            # answers already grouped by task (as a query ordered by task returns them):
            # the CSR rows are the input itself, no sort needed. A repeated answer stays
            # a repeated entry, which sparse products add up.
            indptr = np.zeros(data.n_tasks + 1, dtype=np.int64)
            np.cumsum(np.bincount(data.tasks, minlength=data.n_tasks), out=indptr[1:])
            self.B = sp.csr_matrix((ones, cols, indptr), shape=shape)
        else:
            # COO -> CSR sorts by task and sums repeated (task, worker, label) entries:
            # a repeated answer counts as repeated evidence
            self.B = sp.csr_matrix((ones, (data.tasks, cols)), shape=shape)
        self.answered = np.diff(self.B.indptr) > 0
        self._cols = cols

    @cached_property
    def worker_label_counts(self) -> np.ndarray:
        """(W, K) number of answers of each label by each worker."""
        w, k = self.n_workers, self.n_labels
        return np.bincount(self._cols, minlength=w * k).reshape(w, k).astype(np.float64)

    def loglik(self, log_conf: np.ndarray) -> np.ndarray:
        """(K, T) sum of log pi[w, k, l] over each task's answers; log_conf is (W, K, K)."""
        w, k = self.n_workers, self.n_labels
        flat = np.ascontiguousarray(log_conf.transpose(0, 2, 1)).reshape(w * k, k)
        return np.ascontiguousarray((self.B @ flat).T)

    def expected_counts(self, probas_t: np.ndarray) -> np.ndarray:
        """(W, K, K) expected counts n[w, true k, answered l] under posteriors (K, T)."""
        w, k = self.n_workers, self.n_labels
        c = np.asarray(probas_t @ self.B)
        return c.reshape(k, w, k).transpose(1, 0, 2)


def normalize_log(loglik_t: np.ndarray) -> tuple[np.ndarray, float]:
    """Posteriors from (K, T) unnormalised log-probabilities, in place, and the log evidence.

    Subtracting the per-task maximum before ``exp`` avoids underflow: a task with many
    answers has log-likelihoods far below -745 where ``exp`` would give 0 for every class.
    """
    m = loglik_t.max(axis=0)
    loglik_t -= m
    np.exp(loglik_t, out=loglik_t)
    s = loglik_t.sum(axis=0)
    loglik_t /= s
    return loglik_t, float(np.sum(m + np.log(s)))
