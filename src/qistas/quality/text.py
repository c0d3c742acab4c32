"""Free-text answers (transcriptions, rewrites, SFT answers): a consensus text per task.

Answers are ``{"text": str}``; ``context`` is not used (None). See :class:`TextAggregator`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ._base import BaseEstimator
from ._validation import check_n_iter, check_positive
from ._words import normalise_text, parse, word_distance
from .structured import TaskResult, WorkerAnswer, check_items

_WER_FLOOR = 1e-3


@dataclass
class _Parsed:
    """One task's answers, parsed: see :func:`qistas.quality._words.parse`."""

    workers: list[int]
    texts: list[str]
    words: list[list[str]]
    forms: list[list[str]]
    glued: list[list[bool]]
    dist: list[list[int]]


def _parse_task(answers: Sequence[WorkerAnswer]) -> _Parsed:
    workers, texts, words, forms, glued = [], [], [], [], []
    for worker, answer in answers:
        if not isinstance(answer, dict) or not isinstance(answer.get("text"), str):
            raise ValueError(f'a text answer is {{"text": str}}, got {answer!r}')
        w, f, g = parse(answer["text"])
        workers.append(int(worker))
        texts.append(answer["text"])
        words.append(w)
        forms.append(f)
        glued.append(g)
    n = len(words)
    dist = [[0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            dist[i][j] = dist[j][i] = word_distance(words[i], words[j])
    return _Parsed(workers, texts, words, forms, glued, dist)


# A slot of the word transition network: normalised word ("" = no word) -> its votes,
# each ``(answer index, position of the word in that answer)`` (position -1 for "").
Slot = dict[str, list[tuple[int, int]]]


def _align(slots: list[Slot], words: list[str], a: int, before: list[int]) -> list[Slot]:
    """Align answer ``a`` to the network (Fiscus 1997, section 2.1) and return the new one.

    Dynamic programming over (words of ``a``) x (slots): a word costs 0 in a slot that
    already holds it and 1 in another (substitution); skipping a slot costs 1, or 0 when
    the slot already holds "" (some answer has no word there); a word of ``a`` between
    slots costs 1 and opens a new slot where the answers in ``before`` vote "". The
    trace-back prefers, at equal cost, substitution/match, then skip, then new slot.
    """
    m = len(slots)
    skip = [0 if "" in s else 1 for s in slots]
    prev = [0] * (m + 1)
    for j in range(m):
        prev[j + 1] = prev[j] + skip[j]
    table = [prev]
    for i, w in enumerate(words, start=1):
        cur = [i]
        left = i
        for j in range(m):
            best = prev[j] if w in slots[j] else prev[j] + 1
            if left + skip[j] < best:
                best = left + skip[j]
            if prev[j + 1] + 1 < best:
                best = prev[j + 1] + 1
            cur.append(best)
            left = best
        table.append(cur)
        prev = cur
    out: list[Slot] = []
    i, j = len(words), m
    while i or j:
        here = table[i][j]
        if i and j and here == table[i - 1][j - 1] + (words[i - 1] not in slots[j - 1]):
            slot = slots[j - 1]  # the network is built fresh per task: extend in place
            slot.setdefault(words[i - 1], []).append((a, i - 1))
            i, j = i - 1, j - 1
        elif j and here == table[i][j - 1] + skip[j - 1]:
            slot = slots[j - 1]
            slot.setdefault("", []).append((a, -1))
            j -= 1
        else:
            slot = {words[i - 1]: [(a, i - 1)]}
            if before:
                slot[""] = [(b, -1) for b in before]
            i -= 1
        out.append(slot)
    out.reverse()
    return out


def _network(p: _Parsed, order: list[int]) -> list[Slot]:
    """The word transition network: the answers aligned one by one in ``order``."""
    first = order[0]
    slots: list[Slot] = [{w: [(first, k)]} for k, w in enumerate(p.words[first])]
    for n, a in enumerate(order[1:], start=1):
        slots = _align(slots, p.words[a], a, order[:n])
    return slots


def _tied(scores: dict[str, float]) -> list[str]:
    """The words whose score is the best one, up to float rounding of the sums."""
    top = max(scores.values())
    eps = 1e-9 * (1.0 + abs(top))
    return [w for w, s in scores.items() if s >= top - eps]


def _vote(slots: list[Slot], weight: list[float], rank: list[int]) -> list[str]:
    """Each slot's word with the largest total weight; a tie goes to the word of the
    answer aligned first (the medoid, then the answers closest to it)."""
    out = []
    for slot in slots:
        scores = {w: math.fsum(weight[a] for a, _ in v) for w, v in slot.items()}
        out.append(min(_tied(scores), key=lambda w, s=slot: min(rank[a] for a, _ in s[w])))  # type: ignore[misc]
    return out


def _posterior(slot: Slot, weight: list[float], word: str) -> float:
    """P(``word`` is right in this slot) under the weighted vote read as a log-linear
    model: ``exp(score) / (sum of exp(scores) + 1)``, the ``+ 1`` an unseen word that no
    answer wrote (score 0). Shifted by the top score so that ``exp`` cannot overflow."""
    scores = [math.fsum(weight[a] for a, _ in v) for v in slot.values()]
    top = max(max(scores), 0.0)
    own = math.fsum(weight[a] for a, _ in slot[word])
    return math.exp(own - top) / (math.fsum(math.exp(s - top) for s in scores) + math.exp(-top))


def _render(p: _Parsed, slots: list[Slot], chosen: list[str], rank: list[int]) -> str:
    """The consensus words in their most common original spelling (a tie: the spelling of
    the answer aligned first), joined by a space unless the chosen spelling was written
    against the same next word in its answer (``well-known``)."""
    picked = [(slot, w) for slot, w in zip(slots, chosen, strict=True) if w]
    parts: list[str] = []
    sep = ""
    for k, (slot, w) in enumerate(picked):
        votes = slot[w]
        count: dict[str, int] = {}
        for a, pos in votes:
            form = p.forms[a][pos]
            count[form] = count.get(form, 0) + 1
        most = max(count.values())
        a0, pos0 = min(((a, pos) for a, pos in votes if count[p.forms[a][pos]] == most), key=lambda v: rank[v[0]])
        form = p.forms[a0][pos0]
        nxt = picked[k + 1][1] if k + 1 < len(picked) else None
        glue = any(
            p.forms[a][pos] == form and p.glued[a][pos] and pos + 1 < len(p.words[a]) and p.words[a][pos + 1] == nxt
            for a, pos in votes
        )
        if form:
            parts.append(sep + form)
        sep = "" if glue else " "
    return "".join(parts).strip()


def _log_odds(wer: float) -> float:
    """Vote weight of a worker with word error rate ``wer``: ``log((1 - wer) / wer)``, the
    weight of an optimal weighted vote between two alternatives (Nitzan and Paroush 1982),
    0 for a worker no better than chance."""
    wer = min(max(wer, _WER_FLOOR), 0.5)
    return math.log((1.0 - wer) / wer)


class TextAggregator(BaseEstimator):
    """Consensus text by ROVER with reliability-weighted votes, or the weighted medoid answer.

    Words are compared after :func:`qistas.quality._words.normalise` (Unicode- and
    Arabic-aware; for comparison only: the response keeps the answers' own spelling).

    Per task (``aggregate``):

    1. *Medoid*: the answer with the least weighted word edit distance to the others,
       ``sum_j weight_j * d(i, j)`` (a tie: the larger own weight, then the earlier answer).
    2. *ROVER* (Fiscus 1997): the medoid starts a word transition network; the other
       answers are aligned into it by dynamic programming, closest to the others first;
       each slot elects the word (or no word) with the largest total vote weight, a tie
       going to the answer aligned first. Output words keep their most common original
       spelling.
    3. ``method="rover"`` / ``"medoid"`` use one; ``"auto"`` uses ROVER unless ...

    Worker model (``fit``): each worker's word error rate (WER) against the consensus,
    ``(errors + prior_strength * pooled_wer) / (words + prior_strength)`` -- a beta-like
    prior of ``prior_strength`` words at the pooled WER of all answers, so a worker with a
    few answers stays near the crowd. The vote weight is ``log((1 - wer) / wer)``, 0 at or
    above a WER of 0.5. Consensus and WERs alternate ``n_iter`` times (an EM-like loop
    started from equal weights; it stops early when no consensus changes). Unknown
    workers (``-1`` or unseen) get the prior WER (``prior_wer`` before any fit).

    ``confidence``: the mean over the network's slots of the posterior probability that
    the response's choice in the slot (a word or no word) is right, the weighted vote read
    as a log-linear model with one unseen alternative (see :func:`_posterior`): about the
    expected share of the response's word positions that are right. One answer gives
    ``1 - wer`` of its worker; agreeing answers push it towards 1, so it can drive
    adaptive redundancy. ``needs_review``: ``disagreement > review_threshold``, where
    ``disagreement`` is the weighted mean over answers of ``min(1, WER against the
    response)``. ``extra``: ``method`` (``"rover"`` or ``"medoid"``), ``disagreement``.
    ``params_``: ``{"wer": [per worker], "n_words": [per worker], "prior_wer": float}``.
    """

    def __init__(
        self,
        method: str = "auto",
        n_iter: int = 5,
        prior_wer: float = 0.2,
        prior_strength: float = 20.0,
        review_threshold: float = 0.3,
    ) -> None:
        self.method = method
        self.n_iter = n_iter
        self.prior_wer = prior_wer
        self.prior_strength = prior_strength
        self.review_threshold = review_threshold

    # -- worker model ---------------------------------------------------------------

    def _check(self) -> None:
        if self.method not in ("auto", "rover", "medoid"):
            raise ValueError(f"method must be 'auto', 'rover' or 'medoid', got {self.method!r}")
        check_n_iter(self.n_iter)
        check_positive(self.prior_strength, "prior_strength", strict=False)
        if not 0.0 < self.prior_wer < 1.0:
            raise ValueError(f"prior_wer must be in (0, 1), got {self.prior_wer}")

    def _weights(self, workers: list[int]) -> list[float]:
        wer: list[float] = getattr(self, "wer_", [])
        prior = float(getattr(self, "pooled_wer_", self.prior_wer))
        return [_log_odds(wer[w] if 0 <= w < len(wer) else prior) for w in workers]

    def load_params(self, params: dict[str, Any]) -> TextAggregator:
        """Restore a worker model from ``params_``."""
        self.wer_ = [float(x) for x in params["wer"]]
        self.n_words_ = [int(x) for x in params["n_words"]]
        self.pooled_wer_ = float(params["prior_wer"])
        self.params_ = {"wer": self.wer_, "n_words": self.n_words_, "prior_wer": self.pooled_wer_}
        return self

    # -- one task -------------------------------------------------------------------

    def _decide(self, p: _Parsed, weight: list[float], cache: dict[tuple[int, ...], list[Slot]] | None = None
                ) -> tuple[TaskResult, list[str]]:
        n = len(p.words)
        if n == 0:
            return TaskResult({"text": ""}, 0.0, False, {"method": "none", "disagreement": 0.0}), []
        vw = weight if math.fsum(weight) > 0 else [1.0] * n  # all weights 0: count answers
        cost = [math.fsum(vw[j] * p.dist[i][j] for j in range(n)) for i in range(n)]
        order = sorted(range(n), key=lambda i: (cost[i], -vw[i], i))
        key = tuple(order)
        slots = cache.get(key) if cache is not None else None
        if slots is None:
            slots = _network(p, order)
            if cache is not None:
                cache.clear()
                cache[key] = slots
        rank = [0] * n
        for r, a in enumerate(order):
            rank[a] = r
        medoid = order[0]
        rover = _vote(slots, vw, rank)
        use_rover = self.method == "rover" or (self.method == "auto" and self._rover_is_safe(slots, rover, vw, medoid))
        if use_rover:
            chosen, text = rover, _render(p, slots, rover, rank)
        else:
            chosen = [next((w for w, v in s.items() if any(a == medoid for a, _ in v)), "") for s in slots]
            text = p.texts[medoid].strip()
        words = [w for w in chosen if w]
        if slots:
            conf = math.fsum(_posterior(s, weight, w) for s, w in zip(slots, chosen, strict=True)) / len(slots)
        else:  # every answer is empty: one slot where all of them wrote no word
            conf = _posterior({"": [(a, -1) for a in range(n)]}, weight, "")
        errs = [min(1.0, word_distance(ws, words) / max(len(words), 1)) for ws in p.words]
        dis = math.fsum(w * e for w, e in zip(vw, errs, strict=True)) / math.fsum(vw)
        extra = {"method": "rover" if use_rover else "medoid", "disagreement": dis}
        return TaskResult({"text": text}, conf, dis > self.review_threshold, extra), words

    def _rover_is_safe(self, slots: list[Slot], rover: list[str], weight: list[float], medoid: int) -> bool:
        return True

    # -- estimator API --------------------------------------------------------------

    def fit(self, items: Sequence[Sequence[WorkerAnswer]], *, n_workers: int,
            contexts: Sequence[Any] | None = None) -> TextAggregator:
        """Learn each worker's WER from all tasks; sets ``results_``, ``params_``."""
        self._check()
        check_items(items, n_workers, contexts)
        parsed = [_parse_task(answers) for answers in items]
        caches: list[dict[tuple[int, ...], list[Slot]]] = [{} for _ in parsed]
        for attr in ("wer_", "pooled_wer_"):
            self.__dict__.pop(attr, None)
        prev: list[list[str]] | None = None
        self.n_iter_ = 0
        for _ in range(self.n_iter):
            results, consensus = self._e_step(parsed, caches)
            self.n_iter_ += 1
            if consensus == prev:
                break
            self._m_step(parsed, consensus, n_workers)
            prev = consensus
        self.results_, _ = self._e_step(parsed, caches)
        self.params_ = {"wer": self.wer_, "n_words": self.n_words_, "prior_wer": self.pooled_wer_}
        return self

    def _e_step(self, parsed: list[_Parsed], caches: list[dict[tuple[int, ...], list[Slot]]]
                ) -> tuple[list[TaskResult], list[list[str]]]:
        # the network of a task is rebuilt only when its alignment order changes
        out = [self._decide(p, self._weights(p.workers), c) for p, c in zip(parsed, caches, strict=True)]
        return [r for r, _ in out], [w for _, w in out]

    def _m_step(self, parsed: list[_Parsed], consensus: list[list[str]], n_workers: int) -> None:
        errors = [0.0] * n_workers
        words = [0.0] * n_workers
        for p, ref in zip(parsed, consensus, strict=True):
            for worker, ws in zip(p.workers, p.words, strict=True):
                if worker >= 0:
                    errors[worker] += word_distance(ws, ref)
                    words[worker] += max(len(ref), 1)
        pooled = math.fsum(errors) / math.fsum(words) if math.fsum(words) > 0 else self.prior_wer
        pooled = min(max(pooled, _WER_FLOOR), 0.5)
        s = float(self.prior_strength)
        # shrinkage to the pooled rate: a worker's few words barely move it
        self.wer_ = [(e + s * pooled) / (n + s) if n + s > 0 else pooled for e, n in zip(errors, words, strict=True)]
        self.n_words_ = [int(n) for n in words]
        self.pooled_wer_ = pooled

    def aggregate(self, answers: Sequence[WorkerAnswer], context: Any = None) -> TaskResult:
        """The consensus of one task's answers with the worker model at hand."""
        self._check()
        p = _parse_task(answers)
        return self._decide(p, self._weights(p.workers))[0]


def answer_score(answer: dict[str, Any], response: dict[str, Any], context: Any = None) -> float:
    """``max(0, 1 - WER)`` of ``answer`` against ``response`` (normalised words; an empty
    response scores 1 for an empty answer and 0 otherwise)."""
    hyp, ref = normalise_text(answer["text"]), normalise_text(response["text"])
    if not ref:
        return 1.0 if not hyp else 0.0
    return max(0.0, 1.0 - word_distance(hyp, ref) / len(ref))
