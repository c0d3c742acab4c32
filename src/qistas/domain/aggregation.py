"""Turning a task's annotations into a response with a confidence.

This is the seam the quality engine plugs into: ``aggregate`` gets the task's answers and
returns the consensus; ``decide`` applies the project's redundancy policy.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from qistas.domain.tasktypes import answer_key


@dataclass(frozen=True)
class Consensus:
    response: Any
    confidence: float
    method: str


@dataclass(frozen=True)
class Decision:
    complete: bool
    required: int
    below_target: bool = False


def aggregate(answers: list[Any]) -> Consensus:
    """Majority vote over exact answers; confidence is the winner's share of the votes.

    Ties go to the answer given first, so the result is deterministic.
    """
    keys = [answer_key(a) for a in answers]
    counts = Counter(keys)
    best = max(counts, key=lambda k: (counts[k], -keys.index(k)))
    return Consensus(answers[keys.index(best)], counts[best] / len(answers), "majority_vote")


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
