"""FraudDetector on synthetic answers: each planted kind raises its flag, honest workers none."""

from __future__ import annotations

import numpy as np
import pytest

from qistas.quality.fraud import FraudDetector


def _answers(seed: int = 0) -> tuple[np.ndarray, ...]:
    """16 honest workers (65-95% right), 3 spammers, 2 one-label fast clickers and a pair
    sharing one answer key (70% right); every gold task goes to everyone, as the engine serves gold."""
    rng = np.random.default_rng(seed)
    n_tasks, honest = 600, 16
    truth = rng.integers(0, 2, n_tasks)
    is_gold = rng.random(n_tasks) < 0.2
    accuracy = rng.uniform(0.65, 0.95, honest)
    key = np.where(rng.random(n_tasks) < 0.7, truth, 1 - truth)
    clock = np.zeros(honest + 7)
    rows = []
    for t in range(n_tasks):
        who = np.arange(honest + 7) if is_gold[t] else rng.choice(honest + 7, 5, replace=False)
        for w in who:
            if w < honest:
                answer, seconds = (truth[t] if rng.random() < accuracy[w] else 1 - truth[t]), rng.lognormal(2.3, 0.5)
            elif w < honest + 3:
                answer, seconds = rng.integers(0, 2), rng.lognormal(2.3, 0.5)
            elif w < honest + 5:
                answer, seconds = 0, rng.lognormal(0.2, 0.3)
            else:
                answer, seconds = key[t], rng.lognormal(2.3, 0.5)
            clock[w] += seconds + rng.uniform(0, 0.3 if honest + 3 <= w < honest + 5 else 2)
            rows.append((w, t, answer, seconds, clock[w], truth[t] if is_gold[t] else -1))
    return tuple(np.array(column) for column in zip(*rows, strict=True))


def test_planted_kinds_raise_their_flags_and_honest_workers_none() -> None:
    w, t, a, s, at, g = _answers()
    d = FraudDetector().fit(w, t, a, s, at, gold=g)
    assert all(not flags for flags in d.flags_[:16]), d.flags_[:16]
    assert sum("chance" in flags for flags in d.flags_[16:19]) >= 2
    for clicker in (19, 20):
        assert {"fast", "burst", "one_answer"} <= d.flags_[clicker]
    assert [(p.a, p.b) for p in d.pairs_] == [(21, 22)]
    assert 1.5 < d.floors_[0] < 3.5


def test_two_one_label_workers_are_not_copying_each_other() -> None:
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 2, 100)
    w = np.repeat([0, 1, 2, 3], 100)
    t = np.tile(np.arange(100), 4)
    a = np.concatenate([np.zeros(100), np.zeros(100), truth, np.where(rng.random(100) < 0.9, truth, 1 - truth)])
    d = FraudDetector().fit(w, t, a.astype(int), np.full(400, 10.0), np.arange(400) * 12.0, gold=np.tile(truth, 4))
    assert d.pairs_ == []  # they share every wrong answer, exactly as two independent one-label workers would
    assert "one_answer" in d.flags_[0] and "one_answer" in d.flags_[1]


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="one entry per answer"):
        FraudDetector().fit([0, 1], [0], [0, 1], [1.0, 1.0], [0.0, 1.0])
    with pytest.raises(ValueError, match="non-negative"):
        FraudDetector().fit([0, -1], [0, 0], [0, 1], [1.0, 1.0], [0.0, 1.0])
