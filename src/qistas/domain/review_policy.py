"""A project's review policy: which tasks a reviewer checks before they are delivered.

A task whose annotations are all in is either delivered at once or held for review. The
policy holds it when any of its rules says so:

- ``share``: a sampled share of tasks. The draw is a hash of the task's id, not a random
  number: the same task is always in or out of the sample, whichever server settles it, and a
  replay gives the same sample.
- ``below_confidence``: every task whose aggregated answer is less sure than this.
- ``disagreement``: every task whose answers disagree beyond the type's tolerance (the
  aggregator's ``needs_review``).
- ``probation``: every task answered by an annotator still within their first ``probation``
  answers in the project.

``reopen`` says what a customer's rejection at audit does: ``"annotate"`` (one more
annotation, then review by the policy) or ``"review"`` (straight back to a reviewer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from qistas.errors import Invalid

REOPEN = ("annotate", "review")
# Knuth's multiplicative hash constant (2^32 / golden ratio): consecutive ids spread evenly.
_GOLDEN = 2654435761


@dataclass(frozen=True)
class ReviewPolicy:
    share: float = 0.0
    below_confidence: float = 0.0
    probation: int = 0
    disagreement: bool = False
    reopen: str = "annotate"

    @property
    def active(self) -> bool:
        """Whether any task can be held for review."""
        return self.share > 0 or self.below_confidence > 0 or self.probation > 0 or self.disagreement


NO_REVIEW = ReviewPolicy()


def parse_policy(raw: dict[str, Any] | None) -> ReviewPolicy:
    """The policy from a project's ``review`` field; a bad field is 422 naming it."""
    if raw is None:
        return NO_REVIEW
    if not isinstance(raw, dict):
        raise Invalid("review must be an object", details={"field": "review"})
    unknown = raw.keys() - ReviewPolicy.__dataclass_fields__.keys()
    if unknown:
        name = sorted(unknown)[0]
        raise Invalid(f"review.{name} is not a known field", details={"field": f"review.{name}"})
    policy = ReviewPolicy(**raw)

    def number_in_unit(value: Any) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1

    checks = (
        ("share", number_in_unit(policy.share), "a number in [0, 1]"),
        ("below_confidence", number_in_unit(policy.below_confidence), "a number in [0, 1]"),
        ("probation", isinstance(policy.probation, int) and not isinstance(policy.probation, bool)
         and 0 <= policy.probation <= 1_000_000, "an integer in [0, 1000000]"),
        ("disagreement", isinstance(policy.disagreement, bool), "true or false"),
        ("reopen", policy.reopen in REOPEN, "'annotate' or 'review'"),
    )
    for name, ok, what in checks:
        if not ok:
            raise Invalid(f"review.{name} must be {what}", details={"field": f"review.{name}"})
    return policy


def sampled(task_id: int, share: float) -> bool:
    """Whether the task falls in a ``share`` sample: a fixed draw per task id."""
    if share <= 0:
        return False
    if share >= 1:
        return True
    return ((task_id * _GOLDEN) % 2**32) / 2**32 < share


def holds(
    policy: ReviewPolicy, *, task_id: int, confidence: float | None, needs_review: bool, on_probation: bool
) -> bool:
    """Whether a settled task waits for a reviewer rather than being delivered."""
    if not policy.active:
        return False
    if policy.disagreement and needs_review:
        return True
    if policy.below_confidence > 0 and (confidence is None or confidence < policy.below_confidence):
        return True
    if on_probation and policy.probation > 0:
        return True
    return sampled(task_id, policy.share)
