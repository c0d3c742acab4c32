"""Document transcription: regions of a page image, each with the text it holds.

Answers are ``{"regions": [{"x", "y", "w", "h", "label", "text"}]}``, boxes in pixels of the
page; a task's ``context`` is ``None`` or ``{"width", "height"}`` (consensus regions are then
clipped to the page). See :class:`DocumentAggregator`.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Any

from ._base import BaseEstimator
from ._words import word_distance
from .boxes import BoxAggregator, _match
from .consensus import Box, _as_box
from .structured import TaskResult, WorkerAnswer
from .text import TextAggregator


def characters(text: str) -> list[str]:
    """The characters of a text as an OCR reading compares them: NFC, without format
    characters (bidi marks, zero-width joiners), runs of white space as one space. Marks
    (Arabic harakat, shadda) are characters: a page that has them should be read with them."""
    visible = "".join(c for c in unicodedata.normalize("NFC", text) if unicodedata.category(c) != "Cf")
    return list(" ".join(visible.split()))


def cer(hypothesis: str, reference: str) -> float:
    """Character error rate of ``hypothesis`` against ``reference``: character edit distance
    (:func:`characters`) over the reference's length; an empty reference: 0 for an empty
    hypothesis, else 1."""
    hyp, ref = characters(hypothesis), characters(reference)
    if not ref:
        return 0.0 if not hyp else 1.0
    return word_distance(hyp, ref) / len(ref)


def _regions(answer: Any) -> tuple[list[Box], list[str]]:
    regions = answer.get("regions", []) if isinstance(answer, dict) else answer
    return [_as_box(r) for r in regions], [str(r.get("text", "")) for r in regions]


def regions_match(answer: Any, gold: Any, *, min_iou: float = 0.5, max_cer: float = 0.1) -> bool:
    """True when ``answer`` has exactly the gold regions, each read well enough: a one-to-one
    matching of same-label regions pairs every gold region with one at IoU >= ``min_iou``,
    none is left over, and each pair's character error rate is at most ``max_cer``."""
    (a, a_text), (g, g_text) = _regions(answer), _regions(gold)
    pairs = _match(a, g, min_iou)
    return (len(a) == len(g) == len(pairs)
            and all(cer(a_text[i], g_text[j]) <= max_cer + 1e-12 for i, j, _ in pairs))


def answer_score(answer: Any, response: Any, context: Any = None) -> float:
    """Regions F1 weighted by how well each matched region is placed and read, in [0, 1]:
    regions matched one to one (same label, IoU >= 0.5), each match counting
    ``IoU * (1 - min(1, CER))``: ``2 * sum / (n_answer + n_response)``. Two empty answers
    score 1."""
    (a, a_text), (r, r_text) = _regions(answer), _regions(response)
    if not a and not r:
        return 1.0
    got = sum(iou * (1.0 - min(1.0, cer(a_text[i], r_text[j]))) for i, j, iou in _match(a, r, 0.5))
    return 2.0 * got / (len(a) + len(r))


class DocumentAggregator(BaseEstimator):
    """Consensus regions of a page, each with its consensus text.

    Regions: :class:`~qistas.quality.boxes.BoxAggregator`'s reliability-weighted IoU
    clustering (same-label regions cluster at IoU >= ``min_iou``; a cluster is kept when its
    support reaches ``min_support``; its box is the weighted median of each edge). Text: the
    texts of a kept cluster's members are one :class:`~qistas.quality.text.TextAggregator`
    item (ROVER with reliability-weighted votes, Arabic-aware word comparison; the
    response keeps the annotators' own spelling).

    Confidence. A region's ``confidence`` is its box confidence (support times agreement in
    IoU) times its text's confidence (about the expected share of right words). The task's
    ``confidence`` is the lowest region confidence, lowered to ``1 - missed`` when a region
    some annotators drew was left out; a page everybody left empty has confidence 1.
    ``needs_review`` when it is below ``review_below`` or a region's texts disagree beyond
    the text aggregator's threshold. ``extra``: ``{"agreement": mean`` :func:`answer_score`
    ``of the answers with the consensus}``.

    Worker model (``fit``): first the box aggregator's quality per worker, fitted on the
    regions alone; then, on the clusters that model keeps, the text aggregator's word error
    rate per worker, fitted on the clusters' texts. ``params_``: ``{"regions": box params,
    "text": text params}``.
    """

    def __init__(
        self,
        labels: list[str] | None = None,
        *,
        min_iou: float = 0.5,
        min_support: float = 0.5,
        review_below: float = 0.5,
        n_iter: int = 20,
    ) -> None:
        self.labels = labels
        self.min_iou = min_iou
        self.min_support = min_support
        self.review_below = review_below
        self.n_iter = n_iter

    def _parts(self) -> tuple[BoxAggregator, TextAggregator]:
        if not hasattr(self, "_boxes"):
            self._boxes = BoxAggregator(self.labels, min_iou=self.min_iou, min_support=self.min_support,
                                        review_below=self.review_below, n_iter=self.n_iter)
            self._texts = TextAggregator()
        return self._boxes, self._texts

    def load_params(self, params: dict[str, Any]) -> DocumentAggregator:
        boxes, texts = self._parts()
        boxes.load_params(params["regions"])
        texts.load_params(params["text"])
        self.params_ = {"regions": boxes.params_, "text": texts.params_}
        return self

    # ---- one task -----------------------------------------------------------------
    def _clusters(self, answers: Sequence[WorkerAnswer], context: Any) -> tuple[list[Any], list[list[WorkerAnswer]],
                                                                                float]:
        """The kept region clusters, each one's texts as ``(worker, {"text"})`` pairs, and
        the support of the strongest cluster left out."""
        boxes, _ = self._parts()
        parsed, texts = [], []
        for w, a in answers:
            found, said = _regions(a)
            parsed.append((w, found))
            texts.append(said)
        if self.labels is not None:
            allowed = set(self.labels)
            for _, found in parsed:
                for b in found:
                    if b[4] not in allowed:
                        raise ValueError(f"unknown region label {b[4]!r}")
        kept, missed = boxes.consensus(parsed, context) if parsed else ([], 0.0)
        said_by = []
        for cluster in kept:
            pairs = []
            for i, box in cluster.members:
                k = next(k for k, b in enumerate(parsed[i][1]) if b is box)  # the box itself, not an equal one
                pairs.append((parsed[i][0], {"text": texts[i][k]}))
            said_by.append(pairs)
        return kept, said_by, missed

    def aggregate(self, answers: Sequence[WorkerAnswer], context: Any = None) -> TaskResult:
        """Consensus regions and texts of one page from ``(worker, answer)`` pairs."""
        if not answers:
            return TaskResult({"regions": []}, 0.0, True, {"agreement": float("nan")})
        _, texts = self._parts()
        kept, said_by, missed = self._clusters(answers, context)
        regions, review = [], False
        for cluster, pairs in zip(kept, said_by, strict=True):
            text = texts.aggregate(pairs)
            review = review or text.needs_review
            x, y, w, h, label = cluster.box
            regions.append({"x": x, "y": y, "w": w, "h": h, "label": label, "text": text.response["text"],
                            "confidence": cluster.confidence * text.confidence})
        regions.sort(key=lambda r: (r["y"], r["x"], str(r["label"])))
        confidence = float(min([1.0 - missed, *(r["confidence"] for r in regions)]))
        response = {"regions": regions}
        scores = [answer_score(a, response) for _, a in answers]
        return TaskResult(response, confidence, review or confidence < self.review_below,
                          {"agreement": sum(scores) / len(scores)})

    # ---- project ------------------------------------------------------------------
    def fit(self, items: Sequence[Sequence[WorkerAnswer]], *, n_workers: int,
            contexts: Sequence[Any] | None = None) -> DocumentAggregator:
        """Learn each worker's region quality, then their word error rate; sets ``results_``, ``params_``."""
        boxes, texts = self._parts()
        ctx = list(contexts) if contexts is not None else [None] * len(items)
        boxes.fit([[(w, {"boxes": _regions(a)[0]}) for w, a in answers] for answers in items], n_workers=n_workers,
                  contexts=ctx)
        text_items = [pairs for answers, c in zip(items, ctx, strict=True) if answers
                      for pairs in self._clusters(answers, c)[1]]
        texts.fit(text_items, n_workers=n_workers)
        self.params_ = {"regions": boxes.params_, "text": texts.params_}
        self.results_ = [self.aggregate(answers, c) for answers, c in zip(items, ctx, strict=True)]
        return self
