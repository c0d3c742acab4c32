"""Input checks shared by every estimator.

Answers are three equal-length integer arrays: ``tasks``, ``workers`` and ``labels``.
Sizes default to ``max index + 1`` and may be given explicitly (a platform knows how many
tasks a project has, including tasks nobody has answered yet).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class ConvergenceWarning(UserWarning):
    """An iterative estimator stopped at ``n_iter`` before meeting its tolerance."""


@dataclass(frozen=True)
class Answers:
    """Validated answers: int64 index arrays and the sizes they index into."""

    tasks: np.ndarray
    workers: np.ndarray
    labels: np.ndarray
    n_tasks: int
    n_workers: int
    n_labels: int

    @property
    def n_answers(self) -> int:
        return int(self.tasks.shape[0])


def as_index_array(values: object, name: str) -> np.ndarray:
    """Return ``values`` as a 1-d int64 array of non-negative indices, or raise ValueError."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-d array, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)):
            if not np.all(arr == np.round(arr)):
                raise ValueError(f"{name} must hold integer indices")
        elif arr.dtype != bool:
            raise ValueError(f"{name} must hold integer indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    if arr.size and arr.min() < 0:
        raise ValueError(f"{name} must be non-negative indices")
    return arr


def _size(given: int | None, arr: np.ndarray, name: str) -> int:
    inferred = int(arr.max()) + 1 if arr.size else 0
    if given is None:
        return inferred
    given = int(given)
    if given < inferred:
        raise ValueError(f"{name}={given} but an index {inferred - 1} was found")
    return given


def check_answers(
    tasks: object,
    workers: object,
    labels: object,
    *,
    n_tasks: int | None = None,
    n_workers: int | None = None,
    n_labels: int | None = None,
) -> Answers:
    """Validate three equal-length index arrays; empty input raises ValueError."""
    t = as_index_array(tasks, "tasks")
    w = as_index_array(workers, "workers")
    labs = as_index_array(labels, "labels")
    if not (t.shape[0] == w.shape[0] == labs.shape[0]):
        raise ValueError(
            f"tasks, workers and labels must have equal length, got "
            f"{t.shape[0]}, {w.shape[0]}, {labs.shape[0]}"
        )
    if t.shape[0] == 0:
        raise ValueError("no answers: tasks, workers and labels are empty")
    k = _size(n_labels, labs, "n_labels")
    if k < 1:
        raise ValueError("n_labels must be at least 1")
    return Answers(
        tasks=t,
        workers=w,
        labels=labs,
        n_tasks=_size(n_tasks, t, "n_tasks"),
        n_workers=_size(n_workers, w, "n_workers"),
        n_labels=k,
    )


def check_gold(gold: object, n_tasks: int, n_labels: int) -> np.ndarray | None:
    """Validate a gold array of length ``n_tasks`` holding a label index or -1 (unknown)."""
    if gold is None:
        return None
    g = np.asarray(gold)
    if g.shape != (n_tasks,):
        raise ValueError(f"gold must have shape ({n_tasks},), got {g.shape}")
    if not np.issubdtype(g.dtype, np.integer):
        raise ValueError("gold must hold integer label indices (-1 for unknown)")
    g = g.astype(np.int64)
    if g.size and (g.min() < -1 or g.max() >= n_labels):
        raise ValueError(f"gold values must be -1 or in [0, {n_labels})")
    return g


def check_positive(value: float, name: str, *, strict: bool = True) -> float:
    value = float(value)
    if not np.isfinite(value) or value < 0 or (strict and value == 0):
        bound = "> 0" if strict else ">= 0"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def check_n_iter(n_iter: int) -> int:
    if int(n_iter) != n_iter or n_iter < 1:
        raise ValueError(f"n_iter must be a positive integer, got {n_iter}")
    return int(n_iter)
