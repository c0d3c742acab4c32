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


# A slot of the word transition network: normalised word ("" = no word) -> its votes,
# each ``(answer index, position of the word in that answer)`` (position -1 for "").
Slot = dict[str, list[tuple[int, int]]]


def _align(slots: list[Slot], words: list[str], a: int, before: list[int]) -> list[Slot]:
    """Align answer ``a`` to the network (Fiscus 1997, section 2.1) and return it, extended.

    A word edit distance between the slots and the words of ``a`` where a word matches a
    slot that holds it; a substitution, a skipped slot and a word between slots (a new
    slot, where the answers in ``before`` vote "no word") cost 1 each. (Fiscus makes
    skipping a slot that holds "no word" free; unit costs allow the bit-parallel form and
    gave a lower WER on the real set, 6.37 % against 6.46 % with equal weights.)
    Leading and trailing words that match their slots are aligned directly: with unit
    costs the table never decreases along a diagonal (Ukkonen 1985), so that is optimal.
    """
    m, n = len(slots), len(words)
    lo = 0
    while lo < m and lo < n and words[lo] in slots[lo]:
        slots[lo][words[lo]].append((a, lo))  # the network is built per task: extend in place
        lo += 1
    hi = 0
    while hi < m - lo and hi < n - lo and words[n - 1 - hi] in slots[m - 1 - hi]:
        slots[m - 1 - hi][words[n - 1 - hi]].append((a, n - 1 - hi))
        hi += 1
    middle = _align_middle(slots[lo:m - hi], words[lo:n - hi], lo, a, before)
    return slots[:lo] + middle + slots[m - hi:]


def _align_middle(slots: list[Slot], words: list[str], offset: int, a: int, before: list[int]) -> list[Slot]:
    """The DP of :func:`_align`, its table kept as one pair of bit-vectors per word
    (Myers 1999; Hyyrö 2003): ``D[i][j] = j + popcount(vp_j & low i bits) -
    popcount(vn_j & low i bits)``, so the trace-back reads any cell in O(1). At equal cost
    it prefers match/substitution, then a skipped slot, then a new slot."""
    if not slots or not words:
        for slot in slots:
            slot.setdefault("", []).append((a, -1))
        return slots + [{w: [(a, offset + k)], "": [(b, -1) for b in before]} for k, w in enumerate(words)]
    peq: dict[str, int] = {}
    bit = 1
    for slot in slots:
        for w in slot:
            peq[w] = peq.get(w, 0) | bit
        bit <<= 1
    full = bit - 1
    vp, vn = full, 0
    cols = [(vp, vn)]
    for y in words:  # Hyyrö's column step, as in qistas.quality._words.word_distance
        x = peq.get(y, 0) | vn
        d0 = (((x & vp) + vp) ^ vp) | x
        hp = vn | (full ^ (d0 | vp))
        hp = ((hp << 1) | 1) & full
        vp = (((d0 & vp) << 1) & full) | (full ^ (d0 | hp))
        vn = hp & d0
        cols.append((vp, vn))
    out: list[Slot] = []
    i, j = len(slots), len(words)
    low = (1 << i) - 1
    here = j + (cols[j][0] & low).bit_count() - (cols[j][1] & low).bit_count()
    while i and j:
        slot, w = slots[i - 1], words[j - 1]
        low >>= 1
        diag = j - 1 + (cols[j - 1][0] & low).bit_count() - (cols[j - 1][1] & low).bit_count()
        if here == diag + (w not in slot):
            slot.setdefault(w, []).append((a, offset + j - 1))
            i, j, here = i - 1, j - 1, diag
        elif (cols[j][0] >> (i - 1)) & 1:  # D[i][j] = D[i - 1][j] + 1: skip the slot
            slot.setdefault("", []).append((a, -1))
            i, here = i - 1, here - 1
        else:
            out.append({w: [(a, offset + j - 1)], "": [(b, -1) for b in before]})
            j, here = j - 1, here - 1
            low = (low << 1) | 1  # i did not move
            continue
        out.append(slot)
    for k in range(i - 1, -1, -1):
        slots[k].setdefault("", []).append((a, -1))
        out.append(slots[k])
    for k in range(j - 1, -1, -1):
        out.append({words[k]: [(a, offset + k)], "": [(b, -1) for b in before]})
    out.reverse()
    return out


@dataclass
class _Task:
    """One task's answers, parsed (see :func:`qistas.quality._words.parse`), their word
    edit distances, the alignment order and the word transition network. None of it
    depends on the worker model, so ``fit`` builds it once per task."""

    workers: list[int]
    texts: list[str]
    words: list[list[str]]
    forms: list[list[str]]
    glued: list[list[bool]]
    dist: list[list[int]]
    rank: list[int]  # place of each answer in the alignment order
    slots: list[Slot]
    # what the votes need: each slot's word when all answers agree, and for each slot
    # where they do not, its index and its candidates (word, voters), by first voter's rank
    agreed: list[str]
    contested: list[tuple[int, list[tuple[str, list[int]]]]]


def _task(answers: Sequence[WorkerAnswer]) -> _Task:
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
    # alignment order: the unweighted medoid first, then the answers closest to all the
    # others (a tie: the earlier answer). Unweighted, so that one network serves every
    # worker model (weighting the order changed nothing measurable on the real set).
    order = sorted(range(n), key=lambda i: (sum(dist[i]), i))
    rank = [0] * n
    for r, i in enumerate(order):
        rank[i] = r
    slots: list[Slot] = []
    if n:
        slots = [{w: [(order[0], k)]} for k, w in enumerate(words[order[0]])]
        for k, i in enumerate(order[1:], start=1):
            slots = _align(slots, words[i], i, order[:k])
    agreed = [next(iter(slot)) for slot in slots]
    contested = [
        (k, sorted(((w, [a for a, _ in v]) for w, v in slot.items()), key=lambda c: rank[c[1][0]]))
        for k, slot in enumerate(slots) if len(slot) > 1
    ]
    return _Task(workers, texts, words, forms, glued, dist, rank, slots, agreed, contested)


def _errors(t: _Task, chosen: list[str]) -> list[int]:
    """Each answer's word errors against the choices, along the network's alignment
    (substitutions, insertions and deletions; an upper bound of the word edit distance,
    equal to it unless the alignment order forced a detour). Every answer votes once in
    every slot, so only contested slots can hold errors."""
    errors = [0] * len(t.words)
    for k, cands in t.contested:
        for w, voters in cands:
            if w != chosen[k]:
                for a in voters:
                    errors[a] += 1
    return errors


def _vote(t: _Task, weight: list[float]) -> list[str]:
    """Each slot's word (or "") with the largest total vote weight (``math.fsum``: exact
    up to one rounding, in any order). A tie, within ``1e-9`` relative so that float
    rounding never decides, goes to the word of the answer aligned first."""
    chosen = t.agreed.copy()
    for k, cands in t.contested:
        scores = [math.fsum([weight[a] for a in voters]) for _, voters in cands]
        top = max(scores)
        eps = 1e-9 * (1.0 + abs(top))
        chosen[k] = next(w for (w, _), sc in zip(cands, scores, strict=True) if sc >= top - eps)
    return chosen


def _confidence(t: _Task, weight: list[float], chosen: list[str]) -> float:
    """Mean over slots of P(the slot's choice is right), the weighted vote read as a
    log-linear model: ``exp(score) / (sum of exp(scores) + 1)``, the ``+ 1`` (score 0) an
    unseen word that no answer wrote. Scores are shifted by the top one so that ``exp``
    cannot overflow. A slot where all answers agree scores the total weight ``W``:
    ``1 / (1 + exp(-W))``; with no slot at all (every answer empty) that is the value."""
    total = math.fsum(weight)
    agreed = 1.0 / (1.0 + math.exp(-total))
    if not t.slots:
        return agreed
    post = [agreed] * (len(t.slots) - len(t.contested))
    for k, cands in t.contested:
        scores = [math.fsum([weight[a] for a in voters]) for _, voters in cands]
        top = max(max(scores), 0.0)
        own = next(sc for (w, _), sc in zip(cands, scores, strict=True) if w == chosen[k])
        post.append(math.exp(own - top) / (math.fsum([math.exp(sc - top) for sc in scores]) + math.exp(-top)))
    return math.fsum(post) / len(t.slots)


def _render(p: _Task, chosen: list[str]) -> str:
    """The consensus words in their most common original spelling (a tie: the spelling of
    the answer aligned first), joined by a space unless the chosen spelling was written
    against the same next word in its answer (``well-known``)."""
    picked = [(slot, w) for slot, w in zip(p.slots, chosen, strict=True) if w]
    parts: list[str] = []
    sep = ""
    for k, (slot, w) in enumerate(picked):
        votes = slot[w]
        count: dict[str, int] = {}
        for a, pos in votes:
            form = p.forms[a][pos]
            count[form] = count.get(form, 0) + 1
        form = max(count, key=count.__getitem__)  # dicts keep insertion (alignment) order
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

    Answers are ``{"text": str}``; there is no context. Words are compared after
    :func:`qistas.quality._words.normalise` (Unicode- and Arabic-aware, for comparison
    only: the response keeps the answers' own spelling). Per task:

    1. *Network* (ROVER, Fiscus 1997): the answers are aligned one by one into a word
       transition network by dynamic programming (:func:`_align`), the answer closest to
       all the others first (the medoid), then the next closest. Each slot of the
       network holds, for every answer, the word it wrote there or "no word".
    2. *Vote*: each slot elects the word (or no word) with the largest total vote weight
       (a tie: the word of the answer aligned first). The response is the elected words,
       each in its most common original spelling among its voters.
    3. *Medoid*: the answer with the least weighted word edit distance to the others,
       ``sum_j weight_j * d(i, j)`` (a tie: the larger own weight, then the earlier
       answer), returned as written.

    ``method="rover"`` always votes, ``"medoid"`` always picks an answer, ``"auto"`` (the
    default) votes unless the answers are not versions of one text: when their weighted
    mean ``min(1, d(answer, medoid) / words of the medoid)`` exceeds ``splice_limit``
    (free rewrites or SFT answers: a word-by-word vote would splice unrelated sentences),
    it returns the medoid. On CrowdSpeech dev-clean (2,703 recordings, 7 transcripts each)
    the vote beats the medoid in every band of confidence (5.83 % WER against 6.06 %,
    fitted; 6.37 % against 6.59 % with equal weights), so there is no "ROVER when
    confident" switch; ``"auto"`` sends 10 tasks to the medoid there (5.85 %).

    Worker model (``fit``): each worker's word error rate (WER) against the consensus,
    errors counted along the network (:func:`_errors`) over the consensus's words,
    ``(errors + prior_strength * pooled) / (words + prior_strength)``: ``prior_strength``
    pseudo-words at the pooled WER of all answers, so a worker with few answers stays
    near the crowd. The vote weight is ``log((1 - wer) / wer)`` (the optimal weight of a
    vote between two alternatives, Nitzan and Paroush 1982; 0 from a WER of 0.5 up).
    Consensus (``_e_step``) and WERs (``_m_step``) alternate, from equal weights, at most
    ``n_iter`` times: an EM-like loop that stops when no consensus changes. A worker the
    model does not know (``-1`` or unseen) gets the pooled WER (``prior_wer`` before any
    fit, when every worker is equal).

    ``TaskResult``: ``response`` ``{"text": str}``; ``confidence`` (:func:`_confidence`)
    the mean over slots of the posterior probability that the response's choice is right,
    the weighted vote read as a log-linear model with one unseen alternative: about the
    expected share of right word positions. A lone answer gives ``1 - wer`` of its
    worker; each agreeing answer raises it, so it can drive adaptive redundancy. It ranks
    tasks well but is optimistic (workers err together on hard words): on the real set
    its mean is 0.98 for a word accuracy of 0.94, Spearman -0.59 with the task's WER.
    ``needs_review``: ``disagreement > review_threshold``, ``disagreement`` being the
    weighted mean over answers of ``min(1, WER against the response)`` (0.3 flags 3.5 %
    of the real set's tasks, whose WER is 29 % against 5 % for the rest). ``extra``:
    ``method`` (``"rover"``, ``"medoid"``, or ``"none"`` without answers) and
    ``disagreement``. ``params_``: ``{"wer": [...], "n_words": [...], "prior_wer": float}``
    (per worker: WER and words of consensus seen; the pooled WER).
    """

    def __init__(
        self,
        method: str = "auto",
        n_iter: int = 5,
        prior_wer: float = 0.2,
        prior_strength: float = 20.0,
        review_threshold: float = 0.3,
        splice_limit: float = 0.5,
    ) -> None:
        self.method = method
        self.n_iter = n_iter
        self.prior_wer = prior_wer
        self.prior_strength = prior_strength
        self.review_threshold = review_threshold
        self.splice_limit = splice_limit

    # -- worker model ---------------------------------------------------------------

    def _check(self) -> None:
        if self.method not in ("auto", "rover", "medoid"):
            raise ValueError(f"method must be 'auto', 'rover' or 'medoid', got {self.method!r}")
        check_n_iter(self.n_iter)
        check_positive(self.prior_strength, "prior_strength", strict=False)
        if not 0.0 < self.prior_wer < 1.0:
            raise ValueError(f"prior_wer must be in (0, 1), got {self.prior_wer}")
        check_positive(self.review_threshold, "review_threshold", strict=False)
        check_positive(self.splice_limit, "splice_limit", strict=False)

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

    def _choose(self, t: _Task, weight: list[float]) -> tuple[list[str], int]:
        """Each slot's choice (a word or "") and the answer taken whole (-1: ROVER's)."""
        n = len(t.words)
        vw = weight if math.fsum(weight) > 0 else [1.0] * n  # all weights 0: count answers
        if self.method == "rover" or n == 0:
            return _vote(t, vw), -1
        cost = [math.fsum([vw[j] * t.dist[i][j] for j in range(n)]) for i in range(n)]
        medoid = min(range(n), key=lambda i: (cost[i], -vw[i], i))
        if self.method == "auto":
            size = max(len(t.words[medoid]), 1)
            spread = math.fsum([vw[i] * min(1.0, t.dist[i][medoid] / size) for i in range(n)]) / math.fsum(vw)
            if spread <= self.splice_limit:
                return _vote(t, vw), -1
        return [next((w for w, v in s.items() if any(a == medoid for a, _ in v)), "") for s in t.slots], medoid

    def _result(self, t: _Task, weight: list[float], chosen: list[str], medoid: int) -> TaskResult:
        n = len(t.words)
        if n == 0:
            return TaskResult({"text": ""}, 0.0, False, {"method": "none", "disagreement": 0.0})
        text = _render(t, chosen) if medoid < 0 else t.texts[medoid].strip()
        conf = _confidence(t, weight, chosen)
        n_words = max(sum(1 for w in chosen if w), 1)
        vw = weight if math.fsum(weight) > 0 else [1.0] * n
        errors = _errors(t, chosen)
        dis = math.fsum([w * min(1.0, e / n_words) for w, e in zip(vw, errors, strict=True)]) / math.fsum(vw)
        extra = {"method": "rover" if medoid < 0 else "medoid", "disagreement": dis}
        return TaskResult({"text": text}, conf, dis > self.review_threshold, extra)

    # -- estimator API --------------------------------------------------------------

    def fit(self, items: Sequence[Sequence[WorkerAnswer]], *, n_workers: int,
            contexts: Sequence[Any] | None = None) -> TextAggregator:
        """Learn each worker's WER from all tasks; sets ``results_``, ``params_``."""
        self._check()
        check_items(items, n_workers, contexts)
        tasks = [_task(answers) for answers in items]
        for attr in ("wer_", "pooled_wer_"):
            self.__dict__.pop(attr, None)
        prev: list[list[str]] | None = None
        self.n_iter_ = 0
        for _ in range(self.n_iter):
            chosen = self._e_step(tasks)
            self.n_iter_ += 1
            if chosen == prev:
                break
            self._m_step(tasks, chosen, n_workers)
            prev = chosen
        self.results_ = [self._result(t, w, *self._choose(t, w)) for t in tasks for w in [self._weights(t.workers)]]
        self.params_ = {"wer": self.wer_, "n_words": self.n_words_, "prior_wer": self.pooled_wer_}
        return self

    def _e_step(self, tasks: list[_Task]) -> list[list[str]]:
        # consensus under the current worker model: re-votes the stored networks
        return [self._choose(t, self._weights(t.workers))[0] for t in tasks]

    def _m_step(self, tasks: list[_Task], chosen: list[list[str]], n_workers: int) -> None:
        errors = [0.0] * n_workers
        words = [0.0] * n_workers
        for t, c in zip(tasks, chosen, strict=True):
            n_ref = max(sum(1 for w in c if w), 1)
            for worker, e in zip(t.workers, _errors(t, c), strict=True):
                if worker >= 0:
                    errors[worker] += e
                    words[worker] += n_ref
        total = math.fsum(words)
        pooled = math.fsum(errors) / total if total > 0 else self.prior_wer
        pooled = min(max(pooled, _WER_FLOOR), 0.5)
        s = float(self.prior_strength)
        # shrinkage to the pooled rate: a worker's few words barely move it
        self.wer_ = [(e + s * pooled) / (n + s) if n + s > 0 else pooled for e, n in zip(errors, words, strict=True)]
        self.n_words_ = [int(n) for n in words]
        self.pooled_wer_ = pooled

    def aggregate(self, answers: Sequence[WorkerAnswer], context: Any = None) -> TaskResult:
        """The consensus of one task's answers with the worker model at hand."""
        self._check()
        t = _task(answers)
        weight = self._weights(t.workers)
        return self._result(t, weight, *self._choose(t, weight))


def answer_score(answer: dict[str, Any], response: dict[str, Any], context: Any = None) -> float:
    """``max(0, 1 - WER)`` of ``answer`` against ``response`` (normalised words; an empty
    response scores 1 for an empty answer and 0 otherwise)."""
    hyp, ref = normalise_text(answer["text"]), normalise_text(response["text"])
    if not ref:
        return 1.0 if not hyp else 0.0
    return max(0.0, 1.0 - word_distance(hyp, ref) / len(ref))
