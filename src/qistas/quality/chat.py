"""Multi-turn chats: per-turn ratings, a choice between candidate next turns, a rewrite of
the final turn; one consensus per part.

Answers are ``{"ratings": [int, ...], "choice"?: int, "rewrite"?: str}``; ``context`` is
``{"min": lo, "max": hi}``. With a rubric the context adds ``"criteria": {name: {"min": lo,
"max": hi}}`` and each turn's rating is ``{name: int}``, one per criterion.
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


def _criteria(context: Any) -> dict[str, dict[str, int]]:
    """Each criterion's scale by name; empty when the task rates its turns on one scale."""
    found = (context or {}).get("criteria") or {}
    return {str(name): _scale(scale) for name, scale in found.items()}


def _turn_answers(answers: Sequence[WorkerAnswer], j: int, criterion: str | None) -> list[WorkerAnswer]:
    """Turn ``j``'s ratings as :class:`RatingConsensus` reads them: all of them, or one criterion's."""
    given = []
    for w, a in answers:
        ratings = a.get("ratings", [])
        if j >= len(ratings):
            continue
        value = ratings[j]
        if criterion is None and not isinstance(value, dict):
            given.append((w, {"rating": value}))
        elif criterion is not None and isinstance(value, dict) and criterion in value:
            given.append((w, {"rating": value[criterion]}))
    return given


class ChatAggregator(BaseEstimator):
    """Each part of a chat answer decided by the aggregator of its kind.

    * ratings: turn ``j`` of a task is one item of :class:`~qistas.quality.ratings.RatingConsensus`
      (noise-weighted per annotator; one worker model over every turn of the project); with
      a rubric, each criterion has its own model (a person lenient on one criterion need not
      be on another) and each turn is one item of each;
    * choice: a plain vote over the candidate indexes (:class:`ExactMatchVote`; a tie goes
      to the choice given first);
    * rewrite: :class:`~qistas.quality.text.TextAggregator` (word-aligned vote or the
      closest rewrite, Arabic-aware comparison, each annotator weighed by their word error
      rate).

    ``confidence`` is the lowest of the parts' (the weakest part decides whether a person
    should look again); ``needs_review`` when any part needs it. ``extra`` holds each
    part's confidence and the rating estimates (with a rubric, ``{name: value}`` per turn).
    ``params_``: ``{"ratings": ..., "rewrite": ...}`` (each part's worker model, or ``None``
    where the project had no such answers), with a rubric also ``"criteria": {name: ...}``.
    """

    def __init__(self, *, rating_review_below: float = 0.5) -> None:
        self.rating_review_below = rating_review_below

    def _parts(self) -> tuple[RatingConsensus, TextAggregator]:
        ratings = getattr(self, "ratings_", None) or RatingConsensus(review_below=self.rating_review_below)
        rewrite = getattr(self, "rewrite_", None) or TextAggregator()
        return ratings, rewrite

    def _criterion(self, name: str) -> RatingConsensus:
        """A criterion's fitted model, or an unfitted one (a criterion with no answers yet)."""
        found = getattr(self, "criteria_", {}).get(name)
        return found or RatingConsensus(review_below=self.rating_review_below)

    def load_params(self, params: dict[str, Any]) -> ChatAggregator:
        self.ratings_ = RatingConsensus(review_below=self.rating_review_below)
        self.rewrite_ = TextAggregator()
        self.criteria_: dict[str, RatingConsensus] = {}
        if params.get("ratings") is not None:
            self.ratings_.load_params(params["ratings"])
        if params.get("rewrite") is not None:
            self.rewrite_.load_params(params["rewrite"])
        for name, found in (params.get("criteria") or {}).items():
            if found is not None:
                self.criteria_[name] = RatingConsensus(review_below=self.rating_review_below).load_params(found)
        self.params_ = dict(params)
        return self

    def fit(self, items: Sequence[Sequence[WorkerAnswer]], *, n_workers: int,
            contexts: Sequence[Any] | None = None) -> ChatAggregator:
        """Fit each part's worker model on every answer of the project; sets ``results_``, ``params_``."""
        check_items(items, n_workers, contexts)
        turn_items: list[list[WorkerAnswer]] = []
        turn_scales: list[dict[str, int]] = []
        criterion_items: dict[str, tuple[list[list[WorkerAnswer]], list[dict[str, int]]]] = {}
        text_items: list[list[WorkerAnswer]] = []
        for i, answers in enumerate(items):
            context = None if contexts is None else contexts[i]
            criteria = _criteria(context)
            turns = max((len(a.get("ratings", [])) for _, a in answers), default=0)
            for j in range(turns):
                for name, scale in criteria.items():
                    given = _turn_answers(answers, j, name)
                    if given:
                        found, scales = criterion_items.setdefault(name, ([], []))
                        found.append(given)
                        scales.append(scale)
                given = _turn_answers(answers, j, None) if not criteria else []
                if given:
                    turn_items.append(given)
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
        self.criteria_ = {}
        if criterion_items:
            params["criteria"] = {}
            for name, (found, scales) in criterion_items.items():
                self.criteria_[name] = RatingConsensus(review_below=self.rating_review_below)
                params["criteria"][name] = self.criteria_[name].fit(found, n_workers=n_workers,
                                                                     contexts=scales).params_
        self.params_ = params
        self.results_ = [self.aggregate(a, None if contexts is None else contexts[i]) for i, a in enumerate(items)]
        return self

    def aggregate(self, answers: Sequence[WorkerAnswer], context: Any = None) -> TaskResult:
        """The consensus of one task's answers with the worker models at hand."""
        if not answers:
            raise ValueError("a task needs at least one answer to aggregate")
        ratings_model, rewrite_model = self._parts()
        scale, criteria = _scale(context), _criteria(context)
        turns = max(len(a.get("ratings", [])) for _, a in answers)
        response: dict[str, Any] = {"ratings": []}
        confidences: list[float] = []
        review = False
        extra: dict[str, Any] = {"estimates": [], "ratings_confidence": []}
        for j in range(turns):
            if not criteria:
                result = ratings_model.aggregate(_turn_answers(answers, j, None), scale)
                response["ratings"].append(result.response["rating"])
                extra["estimates"].append(result.extra["estimate"])
                extra["ratings_confidence"].append(result.confidence)
                confidences.append(result.confidence)
                review = review or result.needs_review
                continue
            rated: dict[str, int] = {}
            estimates: dict[str, float] = {}
            sure: dict[str, float] = {}
            for name, own in criteria.items():
                # No answer rates this criterion (cannot happen to validated answers): the
                # model's empty answer, the scale's middle at confidence 0, marks it for review.
                result = self._criterion(name).aggregate(_turn_answers(answers, j, name), own)
                rated[name], estimates[name], sure[name] = (result.response["rating"], result.extra["estimate"],
                                                            result.confidence)
                confidences.append(result.confidence)
                review = review or result.needs_review
            response["ratings"].append(rated)
            extra["estimates"].append(estimates)
            extra["ratings_confidence"].append(sure)
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
    """The mean over the parts the response has of each part's score: a turn's rating (with a
    rubric, each criterion's) by its distance over the scale, the choice 1 or 0, the rewrite
    ``1 - WER``."""
    scale, criteria = _scale(context), _criteria(context)
    scores: list[float] = []
    for mine, theirs in zip(answer.get("ratings", []), response.get("ratings", []), strict=False):
        if isinstance(mine, dict) and isinstance(theirs, dict):
            scores += [rating_score({"rating": mine[c]}, {"rating": theirs[c]}, criteria.get(c, scale))
                       for c in theirs if c in mine]
        elif not isinstance(mine, dict) and not isinstance(theirs, dict):
            scores.append(rating_score({"rating": mine}, {"rating": theirs}, scale))
    if "choice" in response:
        scores.append(float(answer.get("choice") == response["choice"]))
    if "rewrite" in response and isinstance(answer.get("rewrite"), str):
        scores.append(text_score({"text": answer["rewrite"]}, {"text": response["rewrite"]}))
    return sum(scores) / len(scores) if scores else 1.0
