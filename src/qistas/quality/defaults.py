"""The method the platform uses when a project owner picks none."""

from __future__ import annotations

from ._base import BaseClassifier
from .selection import AutoClassifier

#: Name of the default classification aggregator. No single model wins everywhere: MACE,
#: best on average over seven public crowdsourcing sets, fell 6 points under majority
#: vote on a binary set with 3 answers per item where Dawid-Skene was 4 points above it.
#: So the default chooses per project, from the project's own answers (and gold, when
#: some is given), among majority vote, one-coin Dawid-Skene, MACE and Dawid-Skene by
#: cross-fitted agreement with held-out answers (docs/benchmarks-quality.md); the
#: chosen model's name is in ``chosen_``.
DEFAULT_CLASSIFIER = "AutoClassifier"


def default_classifier() -> BaseClassifier:
    """A new, unfitted instance of the default classification aggregator."""
    return AutoClassifier()
