"""The redundancy decision and the majority vote behind it."""

from __future__ import annotations

import pytest

from qistas.domain.aggregation import Decision, decide


@pytest.mark.parametrize(("n", "required", "lo", "hi", "target", "confidence", "expected"), [
    # Fixed overlap: complete exactly at min == max, whatever the agreement.
    (1, 1, 1, 1, None, 1.0, Decision(True, 1)),
    (1, 2, 2, 2, None, 1.0, Decision(False, 2)),
    (2, 2, 2, 2, None, 0.5, Decision(True, 2)),
    (2, 2, 2, 2, 0.9, 0.5, Decision(True, 2, below_target=True)),
    # A target: complete once reached, else one more, up to max.
    (2, 2, 2, 4, 0.7, 1.0, Decision(True, 2)),
    (2, 2, 2, 4, 0.7, 0.5, Decision(False, 3)),
    (3, 3, 2, 4, 0.7, 2 / 3, Decision(False, 4)),
    (4, 4, 2, 4, 0.7, 0.75, Decision(True, 4)),
    (4, 4, 2, 4, 0.8, 0.75, Decision(True, 4, below_target=True)),
    (3, 3, 2, 4, 2 / 3, 2 / 3, Decision(True, 3)),  # reaching the target exactly is enough
    # Without a target a range asks until the answers agree.
    (2, 2, 2, 3, None, 0.5, Decision(False, 3)),
    (3, 3, 2, 3, None, 2 / 3, Decision(True, 3, below_target=True)),
    (1, 1, 1, 3, None, 1.0, Decision(True, 1)),
    # Never complete below min, nor below what the task already asked for.
    (1, 2, 2, 4, 0.5, 1.0, Decision(False, 2)),
    (2, 3, 2, 4, 0.5, 1.0, Decision(False, 3)),
])
def test_decide(n: int, required: int, lo: int, hi: int, target: float | None, confidence: float,
                expected: Decision) -> None:
    assert decide(n_annotations=n, required=required, lo=lo, hi=hi, target=target,
                  confidence=confidence) == expected


def test_decide_never_asks_beyond_max() -> None:
    for hi in range(1, 8):
        required, n = 1, 0
        while True:
            n += 1
            decision = decide(n_annotations=n, required=required, lo=1, hi=hi, target=0.99, confidence=0.5)
            assert decision.required <= hi
            required = decision.required
            if decision.complete:
                break
        assert n == hi
