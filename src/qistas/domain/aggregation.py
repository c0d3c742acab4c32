"""Turning a task's annotations into a response with a confidence, and when to stop asking.

``Consensus`` is what a task's type decided (see ``domain/quality.py``, which asks the type's
aggregator); ``decide`` applies the project's redundancy policy to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Consensus:
    response: Any
    confidence: float
    method: str
    needs_review: bool = False
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    complete: bool
    required: int
    below_target: bool = False


def decide(
    *, n_annotations: int, required: int, lo: int, hi: int, target: float | None, confidence: float
) -> Decision:
    """Complete at ``min`` answers, or ask for one more while below ``target`` (up to ``max``).

    Without a target, a project whose ``max`` exceeds ``min`` asks for more until the
    answers agree (an effective target of 1.0); with ``min == max`` the overlap is fixed.
    """
    if target is None and hi > lo:
        target = 1.0
    if n_annotations < max(required, lo):
        return Decision(False, required)
    if target is None or confidence >= target:
        return Decision(True, required)
    if n_annotations < hi:
        return Decision(False, n_annotations + 1)
    return Decision(True, required, below_target=True)
