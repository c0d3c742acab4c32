"""Multi-turn chats: per-turn ratings, a choice between candidate next turns, a rewrite of
the final turn; one consensus per part.

Answers are ``{"ratings": [int, ...], "choice"?: int, "rewrite"?: str}``; ``context`` is
``{"turns": n, "min": lo, "max": hi, "candidates": k}`` (``turns``: the rated turns of the
conversation, ``candidates``: how many candidate next turns, 0 when there are none).
See :class:`ChatAggregator`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._base import BaseEstimator
from .ratings import RatingConsensus
from .ratings import answer_score as rating_score
from .structured import ExactMatchVote, TaskResult, WorkerAnswer, check_items
from .text import TextAggregator
from .text import answer_score as text_score


def _scale(context: Any) -> dict[str, int]:
    context = context or {}
    return {"min": int(context.get("min", 1)), "max": int(context.get("max", 5))}


class ChatAggregator(BaseEstimator):
    """Each part of a chat answer decided by the aggregator of its kind.

    * ratings: turn ``j`` of a task is one item of :class:`~qistas.quality.ratings.RatingConsensus`
      (noise-weighted per annotator; one worker model over every turn of the project);
    * choice: a plain vote over the candidate indexes (:class:`ExactMatchVote`; a tie goes
      to the choice given first);
    * rewrite: :class:`~qistas.quality.text.TextAggregator` (word-aligned vote or the
      closest rewrite, Arabic-aware comparison, each annotator weighed by their word error
      rate).

    ``confidence`` is the lowest of the parts' (the weakest part decides whether a person
    should look again); ``needs_review`` when any part needs it. ``extra`` holds each
    part's confidence and the rating estimates. ``params_``: ``{"ratings": ..., "rewrite": ...}``
    (each part's worker model, or ``None`` where the project had no such answers).
    """

    def __init__(self, *, rating_review_below: float = 0.5) -> None:
        self.rating_review_below = rating_review_below

    def _parts(self) -> tuple[RatingConsensus, TextAggregator]:
        ratings = getattr(self, "ratings_", None) or RatingConsensus(review_below=self.rating_review_below)
        rewrite = getattr(self, "rewrite_", None) or TextAggregator()
        return ratings, rewrite

    def load_params(self, params: dict[str, Any]) -> ChatAggregator:
        self.ratings_ = RatingConsensus(review_below=self.rating_review_below)
        self.rewrite_ = TextAggregator()
        if params.get("ratings") is not None:
            self.ratings_.load_params(params["ratings"])
        if params.get("rewrite") is not None:
            self.rewrite_.load_params(params["rewrite"])
        self.params_ = dict(params)
        return self

    def fit(self, items: Sequence[Sequence[WorkerAnswer]], *, n_workers: int,
            contexts: Sequence[Any] | None = None) -> ChatAggregator:
        """Fit each part's worker model on every answer of the project; sets ``results_``, ``params_``."""
        check_items(items, n_workers, contexts)
        turn_items: list[list[WorkerAnswer]] = []
        turn_scales: list[dict[str, int]] = []
        text_items: list[list[WorkerAnswer]] = []
        for i, answers in enumerate(items):
            context = None if contexts is None else contexts[i]
            turns = max((len(a.get("ratings", [])) for _, a in answers), default=0)
            for j in range(turns):
                turn_items.append([(w, {"rating": a["ratings"][j]}) for w, a in answers
                                   if j < len(a.get("ratings", []))])
                turn_scales.append(_scale(context))
            texts = [(w, {"text": a["rewrite"]}) for w, a in answers if isinstance(a.get("rewrite"), str)]
            if texts:
                text_items.append(texts)
        self.ratings_ = RatingConsensus(review_below=self.rating_review_below)
        self.rewrite_ = TextAggregator()
        params: dict[str, Any] = {"ratings": None, "rewrite": None}
        if turn_items:
            params["ratings"] = self.ratings_.fit(turn_items, n_workers=n_workers, contexts=turn_scales).params_
        if text_items:
            params["rewrite"] = self.rewrite_.fit(text_items, n_workers=n_workers).params_
        self.params_ = params
        self.results_ = [self.aggregate(a, None if contexts is None else contexts[i]) for i, a in enumerate(items)]
        return self

    def aggregate(self, answers: Sequence[WorkerAnswer], context: Any = None) -> TaskResult:
        """The consensus of one task's answers with the worker models at hand."""
        if not answers:
            raise ValueError("a task needs at least one answer to aggregate")
        ratings_model, rewrite_model = self._parts()
        scale = _scale(context)
        turns = max(len(a.get("ratings", [])) for _, a in answers)
        response: dict[str, Any] = {"ratings": []}
        confidences: list[float] = []
        review = False
        extra: dict[str, Any] = {"estimates": [], "ratings_confidence": []}
        for j in range(turns):
            given = [(w, {"rating": a["ratings"][j]}) for w, a in answers if j < len(a.get("ratings", []))]
            result = ratings_model.aggregate(given, scale)
            response["ratings"].append(result.response["rating"])
            extra["estimates"].append(result.extra["estimate"])
            extra["ratings_confidence"].append(result.confidence)
            confidences.append(result.confidence)
            review = review or result.needs_review
        choices = [(w, {"choice": a["choice"]}) for w, a in answers if isinstance(a.get("choice"), int)]
        if choices:
            result = ExactMatchVote().aggregate(choices)
            response["choice"] = result.response["choice"]
            extra["choice_confidence"] = result.confidence
            confidences.append(result.confidence)
            review = review or result.needs_review
        texts = [(w, {"text": a["rewrite"]}) for w, a in answers if isinstance(a.get("rewrite"), str)]
        if texts:
            result = rewrite_model.aggregate(texts)
            response["rewrite"] = result.response["text"]
            extra["rewrite_confidence"] = result.confidence
            confidences.append(result.confidence)
            review = review or result.needs_review
        return TaskResult(response, min(confidences, default=1.0), review, extra)


def answer_score(answer: dict[str, Any], response: dict[str, Any], context: Any = None) -> float:
    """The mean over the parts the response has of each part's score: a turn's rating by
    its distance over the scale, the choice 1 or 0, the rewrite ``1 - WER``."""
    scale = _scale(context)
    scores = [rating_score({"rating": mine}, {"rating": theirs}, scale)
              for mine, theirs in zip(answer.get("ratings", []), response.get("ratings", []), strict=False)]
    if "choice" in response:
        scores.append(float(answer.get("choice") == response["choice"]))
    if "rewrite" in response and isinstance(answer.get("rewrite"), str):
        scores.append(text_score({"text": answer["rewrite"]}, {"text": response["rewrite"]}))
    return sum(scores) / len(scores) if scores else 1.0
