"""Choosing the classification model per project from the project's own answers."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ._base import BaseClassifier, EMClassifier, best_labels
from ._sparse import AnswerMatrix
from ._validation import Answers
from .classification import DawidSkene, OneCoinDawidSkene, one_coin_confusions
from .mace import MACE

_TINY = 1e-300

#: Candidates from the fewest parameters per worker to the most: ties of the selection
#: go to the earlier one.
CANDIDATES = ("MajorityVote", "OneCoinDawidSkene", "MACE", "DawidSkene")


class _SharedAccuracy(OneCoinDawidSkene):
    """Majority vote as a likelihood model: a one-coin model with one accuracy for all.

    Every answer is credited to a single worker, so EM learns one shared accuracy ``p``
    (floored at chance) with uniform class priors. The posterior of a task is then
    ``p^n_k ((1 - p) / (K - 1))^(n - n_k)`` normalised, increasing in the votes ``n_k``:
    its most likely label is the plurality vote, ties included (the tie rule of
    :func:`~qistas.quality._base.best_labels` gives the lowest index, as
    :class:`MajorityVote` does). ``confusions_`` repeats the shared matrix per worker.
    """

    def _fit(self, data: Answers, gold: np.ndarray | None) -> np.ndarray:
        self._real_workers = data.n_workers
        one = Answers(data.tasks, np.zeros_like(data.workers), data.labels,
                      data.n_tasks, 1, data.n_labels)
        return super()._fit(one, gold)

    @property
    def confusions_(self) -> np.ndarray:
        skills = np.full(self._real_workers, float(self.skills_[0]))
        return one_coin_confusions(skills, self.n_labels_)


_FACTORIES: dict[str, Callable[[], EMClassifier]] = {
    "MajorityVote": _SharedAccuracy,
    "OneCoinDawidSkene": OneCoinDawidSkene,
    "MACE": MACE,
    "DawidSkene": DawidSkene,
}


def _candidate(name: str) -> EMClassifier:
    """A fresh candidate model that does not warn when it stops unconverged: the
    selection scores what it reached either way."""
    est = _FACTORIES[name]()
    est.warns_unconverged = False
    return est


class AutoClassifier(BaseClassifier):
    """Picks, per project, the candidate model that best predicts held-out answers.

    Candidates (``candidates``, any of :data:`CANDIDATES`): majority vote (as a one-coin
    model with one accuracy shared by all workers, so that it has a likelihood and
    one-coin ``confusions_``), one-coin Dawid-Skene, MACE and Dawid-Skene.

    Selection by cross-fitting: the tasks are split into ``n_folds`` random folds; each
    candidate is fitted on the answers (and gold) of the other folds, and every answer of
    the held-out fold is predicted from the *other* answers of its task: the score is the
    posterior probability, under the fitted worker model and class priors, of the class
    that held-out answer names -- the expected agreement of the model's inference with
    an answer it never saw (a held-out answer is a noisy gold label: for workers better
    than chance, more agreement means more accurate inference). Workers absent from the
    training folds get the model's own prior for a new worker.

    Why not the held-out likelihood of the answer itself: its predictive probability
    contains the answering worker's own confusion row, so a model that describes each
    worker's label habits (Dawid-Skene's K(K-1) parameters per worker) scores better
    even where its inference of the truth is worse; on the public multi-class sets it
    chose Dawid-Skene 2.5-3 points below the best candidate. Here the held-out worker's
    parameters do not enter its answer's score: extra parameters count only through
    better inference from the others. Every candidate is scored on the same answers with
    parameters fitted without them, so in-sample fit earns nothing.

    The rule, in order:

    1. Gold veto: with at least ``min_gold`` gold tasks, each candidate's held-out
       accuracy on them is compared with the best candidate's; a candidate that loses
       significantly (the paired sign test on the tasks where the two disagree:
       ``losses - wins > 2 sqrt(losses + wins)``) is dropped. The test needs no large
       sample: five gold tasks all lost are already significant, which is why
       ``min_gold`` defaults to 5 (a project's first gold tasks must be able to show that
       the majority is wrong).
    2. Among the rest, the highest total held-out agreement, with the
       one-standard-error rule (Breiman et al. 1984): the first candidate in the order of
       :data:`CANDIDATES` (fewest parameters first) whose deficit to the best is within
       ``se_rule`` standard errors of the per-task paired differences is chosen.

    The chosen model is then fitted on all answers; its fitted attributes are exposed:
    ``labels_``, ``probas_``, ``confusions_`` (n_workers, K, K), ``priors_`` (K,).
    Also ``chosen_`` (the candidate's name), ``estimator_`` (the fitted model),
    ``scores_`` (mean held-out agreement per answer of each candidate), ``gold_accuracy_``
    (held-out accuracy on gold per candidate, or None) and ``dropped_`` (vetoed names).

    Cross-validation for model selection: Stone, M. (1974). Cross-validatory choice and
    assessment of statistical predictions. JRSS B 36(2); Breiman, L. et al. (1984).
    Classification and Regression Trees, 3.4.3 (the one-standard-error rule).
    """

    def __init__(
        self,
        candidates: Sequence[str] = CANDIDATES,
        n_folds: int = 5,
        se_rule: float = 1.0,
        min_gold: int = 5,
        random_state: int | None = 0,
    ) -> None:
        self.candidates = candidates
        self.n_folds = n_folds
        self.se_rule = se_rule
        self.min_gold = min_gold
        self.random_state = random_state

    def _validate_params(self) -> None:
        names = list(self.candidates)
        unknown = [c for c in names if c not in _FACTORIES]
        if not names or unknown or len(set(names)) != len(names):
            raise ValueError(f"candidates must be distinct names among {CANDIDATES}")
        if int(self.n_folds) != self.n_folds or self.n_folds < 2:
            raise ValueError("n_folds must be an integer >= 2")
        if self.se_rule < 0:
            raise ValueError("se_rule must be >= 0")

    def _fit(self, data: Answers, gold: np.ndarray | None) -> np.ndarray:
        names = [c for c in CANDIDATES if c in self.candidates]
        per_task, gold_hits = self._cross_fit(data, gold, names)
        n_gold = 0 if gold is None else int(np.sum(gold >= 0))
        self.scores_ = {c: float(per_task[c].sum() / data.n_answers) for c in names}
        self.gold_accuracy_ = None
        self.dropped_: list[str] = []
        alive = names
        if n_gold and n_gold >= self.min_gold:
            self.gold_accuracy_ = {c: float(gold_hits[c].mean()) for c in names}
            alive = self._gold_veto(gold_hits, names)
            self.dropped_ = [c for c in names if c not in alive]
        self.chosen_ = self._one_se(per_task, alive)
        est = _candidate(self.chosen_)
        est.fit(data.tasks, data.workers, data.labels, n_labels=data.n_labels,
                n_tasks=data.n_tasks, n_workers=data.n_workers, gold=gold)
        self.estimator_ = est
        self.confusions_ = np.asarray(est.confusions_)  # type: ignore[attr-defined]
        self.priors_ = np.asarray(est.priors_)  # type: ignore[attr-defined]
        return np.ascontiguousarray(est.probas_.T)

    def _cross_fit(
        self, data: Answers, gold: np.ndarray | None, names: list[str]
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Held-out agreement per task and held-out gold hits of each candidate."""
        rng = np.random.default_rng(self.random_state)
        fold = rng.permutation(data.n_tasks) % int(self.n_folds)
        per_task = {c: np.zeros(data.n_tasks) for c in names}
        known = np.zeros(data.n_tasks, dtype=bool) if gold is None else gold >= 0
        hits = {c: np.zeros(data.n_tasks) for c in names}
        for f in range(int(self.n_folds)):
            held = fold[data.tasks] == f
            if not held.any() or held.all():
                continue
            train, test = _subset(data, ~held), _subset(data, held)
            matrix = AnswerMatrix(test)
            g = None if gold is None else np.where(fold == f, -1, gold)
            cols = np.flatnonzero((fold == f) & known)
            for c in names:
                est = _candidate(c)
                est.fit(train.tasks, train.workers, train.labels, n_labels=data.n_labels,
                        n_tasks=data.n_tasks, n_workers=data.n_workers, gold=g)
                joint, agree = _heldout(matrix, test, est)
                per_task[c] += np.bincount(test.tasks, weights=agree, minlength=data.n_tasks)
                if cols.size and gold is not None:
                    post = np.exp(joint[:, cols] - _logsumexp(joint[:, cols]))
                    hits[c][cols] = best_labels(post) == gold[cols]
        return per_task, {c: hits[c][known] for c in names}

    def _gold_veto(self, gold_hits: dict[str, np.ndarray], names: list[str]) -> list[str]:
        best = max(names, key=lambda c: gold_hits[c].mean())
        alive = []
        for c in names:
            wins = np.sum((gold_hits[c] == 1) & (gold_hits[best] == 0))
            losses = np.sum((gold_hits[c] == 0) & (gold_hits[best] == 1))
            if losses - wins <= 2.0 * np.sqrt(losses + wins):
                alive.append(c)
        return alive

    def _one_se(self, per_task: dict[str, np.ndarray], names: list[str]) -> str:
        best = max(names, key=lambda c: per_task[c].sum())
        for c in names:  # fewest parameters first
            diff = per_task[best] - per_task[c]
            se = np.sqrt(diff.size) * diff.std()
            if diff.sum() <= self.se_rule * se:
                return c
        return best


def _subset(data: Answers, mask: np.ndarray) -> Answers:
    return Answers(data.tasks[mask], data.workers[mask], data.labels[mask],
                   data.n_tasks, data.n_workers, data.n_labels)


def _heldout(
    matrix: AnswerMatrix, test: Answers, est: BaseClassifier
) -> tuple[np.ndarray, np.ndarray]:
    """(K, T) log P(class, answers) of the held-out tasks, and per held-out answer the
    posterior, given the task's other answers, of the class that answer names."""
    conf = np.asarray(est.confusions_)  # type: ignore[attr-defined]
    priors = np.asarray(est.priors_)  # type: ignore[attr-defined]
    log_conf = np.log(np.maximum(conf, _TINY))
    joint = matrix.loglik(log_conf) + np.log(np.maximum(priors, _TINY))[:, None]
    # leave one answer out: remove its own term from its task's joint log-likelihood
    others = joint[:, test.tasks] - log_conf[test.workers, :, test.labels].T
    others -= _logsumexp(others)
    agree = np.exp(others[test.labels, np.arange(test.labels.size)])
    return joint, agree


def _logsumexp(x: np.ndarray) -> np.ndarray:
    m = x.max(axis=0)
    return m + np.log(np.exp(x - m).sum(axis=0))
