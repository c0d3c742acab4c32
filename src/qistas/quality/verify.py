"""Verifying a candidate (a generated item): accept it, fix it, or reject it.

Answers are ``{"verdict": "accept"}``, ``{"verdict": "fix", "text": str}`` or
``{"verdict": "reject"}``; ``context`` is ``{"candidate": str}``, the text under review.
See :class:`VerifyAggregator`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._base import BaseEstimator
from .structured import TaskResult, WorkerAnswer, check_items
from .text import TextAggregator
from .text import answer_score as text_score


def _words(text: str) -> str:
    return " ".join(text.split())


def _kept(answer: dict[str, Any], candidate: str) -> str | None:
    """The text an answer keeps: the candidate when accepted, the fix, or None when rejected."""
    if answer["verdict"] == "accept":
        return candidate
    if answer["verdict"] == "fix":
        return str(answer["text"])
    return None


class VerifyAggregator(BaseEstimator):
    """Keep or reject by vote, then the kept text by the text consensus.

    1. *Keep or reject*: each answer votes to keep the item (accept, fix) or to reject it;
       the side with more votes wins, a tie rejects (an item half the people refuse is not
       training data) and asks for review.
    2. *Text*: the kept answers' texts (the candidate for an accept) go to
       :class:`~qistas.quality.text.TextAggregator` (word-aligned vote or the closest text,
       Arabic-aware, each annotator weighed by their word error rate). A consensus equal to
       the candidate (white space aside) is ``accept``, else ``fix`` with that text.

    ``confidence``: the winning side's share of the votes, times the text consensus's
    confidence when kept; ``needs_review`` on a tie or when the texts disagree.
    ``params_``: ``{"text": ...}``, the text worker model (or ``None``).
    """

    def __init__(self, *, review_below: float = 0.5) -> None:
        self.review_below = review_below

    def load_params(self, params: dict[str, Any]) -> VerifyAggregator:
        self.text_ = TextAggregator()
        if params.get("text") is not None:
            self.text_.load_params(params["text"])
        self.params_ = dict(params)
        return self

    def fit(self, items: Sequence[Sequence[WorkerAnswer]], *, n_workers: int,
            contexts: Sequence[Any] | None = None) -> VerifyAggregator:
        """Fit the text worker model on every kept text; sets ``results_``, ``params_``."""
        check_items(items, n_workers, contexts)
        text_items = []
        for i, answers in enumerate(items):
            candidate = str(((contexts or [None] * len(items))[i] or {}).get("candidate", ""))
            kept = [(w, {"text": t}) for w, a in answers if (t := _kept(a, candidate)) is not None]
            if kept:
                text_items.append(kept)
        self.text_ = TextAggregator()
        self.params_ = {"text": self.text_.fit(text_items, n_workers=n_workers).params_ if text_items else None}
        self.results_ = [self.aggregate(a, None if contexts is None else contexts[i]) for i, a in enumerate(items)]
        return self

    def aggregate(self, answers: Sequence[WorkerAnswer], context: Any = None) -> TaskResult:
        if not answers:
            raise ValueError("a task needs at least one answer to aggregate")
        candidate = str((context or {}).get("candidate", ""))
        kept = [(w, {"text": t}) for w, a in answers if (t := _kept(a, candidate)) is not None]
        rejected = len(answers) - len(kept)
        if rejected >= len(kept):
            share = rejected / len(answers)
            return TaskResult({"verdict": "reject"}, share, rejected == len(kept) or share < self.review_below,
                              {"kept": len(kept), "rejected": rejected})
        model = getattr(self, "text_", None) or TextAggregator()
        text = model.aggregate(kept)
        share = len(kept) / len(answers)
        final = text.response["text"]
        response = {"verdict": "accept"} if _words(final) == _words(candidate) else {"verdict": "fix", "text": final}
        return TaskResult(response, share * text.confidence, text.needs_review or share * text.confidence
                          < self.review_below, {"kept": len(kept), "rejected": rejected,
                                                "text_confidence": text.confidence})


def answer_score(answer: dict[str, Any], response: dict[str, Any], context: Any = None) -> float:
    """0 when one keeps what the other rejects; both rejecting, 1; both keeping, ``1 - WER``
    of the kept texts."""
    candidate = str((context or {}).get("candidate", ""))
    mine, theirs = _kept(answer, candidate), _kept(response, candidate)
    if mine is None or theirs is None:
        return float(mine is None and theirs is None)
    return text_score({"text": mine}, {"text": theirs})
