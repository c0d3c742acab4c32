"""The method the platform uses when a project owner picks none."""

from __future__ import annotations

from ._base import BaseClassifier
from .mace import MACE

#: Name of the best-by-default classification aggregator. Chosen on the benchmark of
#: seven public crowdsourcing sets (docs/benchmarks-quality.md): MACE with uniform
#: Beta/Dirichlet smoothing and class priors shrunk towards uniform had the best mean
#: accuracy and stayed within half a point of the best method on every set.
DEFAULT_CLASSIFIER = "MACE"


def default_classifier() -> BaseClassifier:
    """A new, unfitted instance of the default classification aggregator."""
    return MACE()
