"""Adaptive redundancy: decide after each answer whether a task needs another one.

A task is complete once it has at least ``min_answers`` answers and the posterior of its
most likely label reaches ``target``; otherwise it asks for one more answer, up to
``max_answers``, where it completes whatever the confidence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._base import best_label
from .online import WorkerModel


@dataclass(frozen=True)
class Decision:
    """``done``: the task needs no more answers; ``label``: most likely label (-1 with no
    answers); ``confidence``: its posterior probability; ``posterior``: all of them."""

    done: bool
    label: int
    confidence: float
    posterior: np.ndarray


def decide(
    workers: object,
    labels: object,
    model: WorkerModel,
    *,
    min_answers: int = 1,
    max_answers: int = 5,
    target: float = 0.95,
) -> Decision:
    """Apply the redundancy policy to one task's answers so far.

    ``workers[i]`` gave ``labels[i]``; ``model`` holds the fitted worker confusion
    matrices and class priors (``WorkerModel.from_estimator(DawidSkene().fit(...))``).
    Workers unknown to the model count with the average confusion matrix.
    """
    if not 1 <= min_answers <= max_answers:
        raise ValueError("need 1 <= min_answers <= max_answers")
    if not 0.0 < target <= 1.0:
        raise ValueError("target must be in (0, 1]")
    w = np.asarray(workers, dtype=np.int64).reshape(-1)
    posterior = model.posterior(w, labels)
    n = w.size
    label = best_label(posterior) if n else -1  # ties: lowest label index
    confidence = float(posterior[label]) if n else 0.0
    done = n >= max_answers or (n >= min_answers and confidence >= target)
    return Decision(done=done, label=label, confidence=confidence, posterior=posterior)
