"""Truth inference for span answers (named entities and other labelled text ranges).

An answer is ``{"spans": [{"start": int, "end": int, "label": str}, ...]}`` with offsets in
code points of the task's text, ``end`` exclusive; ``context`` of a task is that text.

Spans become tags: the text is cut into word tokens (:func:`tokenize`) and each answer
tags every token ``O`` (outside), ``B-label`` (first token of a span) or ``I-label``
(inside), so every task becomes a sequence labelling problem over 2L + 1 tags.
:class:`SpanAggregator` infers the true tags with Dawid and Skene's model per token (a
full confusion matrix over tags for each worker), its prior restricted to tag sequences
that are valid spans.
"""

from __future__ import annotations

import warnings
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import regex

from ..graphemes import boundaries
from ._base import BaseEstimator, uniform_init
from ._hmm import Chains, bio_chain, bio_transitions, forward_backward, viterbi
from ._sparse import AnswerMatrix
from ._validation import Answers, ConvergenceWarning, check_n_iter, check_positive
from .structured import TaskResult, WorkerAnswer, check_items

_TOKEN = regex.compile(r"(?:(?=\S)\X)+")  # runs of grapheme clusters that start non-space
# in ASCII every cluster is one character (or CR LF, all space): plain runs of non-space,
# several times faster
_ASCII_TOKEN = regex.compile(r"\S+")
Span = tuple[int, int, int]  # start, end, label index


def tokenize(text: str, cuts: Iterable[int] = ()) -> list[tuple[int, int]]:
    """Word tokens of ``text`` as ``(start, end)`` code-point offsets.

    A token is a maximal run of grapheme clusters that do not start with white space, so
    no token splits a cluster; it is cut further at every offset in ``cuts`` that falls
    inside it on a grapheme boundary (the span boundaries answers use, so a span over
    part of a word keeps its own tokens). A text of words joined by single spaces gives
    those words.
    """
    pattern = _ASCII_TOKEN if text.isascii() else _TOKEN
    tokens = [m.span() for m in pattern.finditer(text)]
    inner = sorted({c for c in cuts if 0 < c < len(text)})
    if not inner or not tokens:
        return tokens
    out: list[tuple[int, int]] = []
    bounds: frozenset[int] | None = None  # computed only when a cut falls inside a token
    for start, end in tokens:
        i = bisect_right(inner, start)
        while i < len(inner) and inner[i] < end:
            bounds = boundaries(text) if bounds is None else bounds
            if inner[i] in bounds:
                out.append((start, inner[i]))
                start = inner[i]
            i += 1
        out.append((start, end))
    return out


def _parse(answer: Any, n_chars: int | None) -> list[tuple[int, int, str]]:
    """Validated ``(start, end, label)`` of one answer (raises ``ValueError``); offsets are
    checked against the text's length when it is known."""
    if not isinstance(answer, Mapping) or not isinstance(answer.get("spans"), list):
        raise ValueError('a span answer must be {"spans": [...]}')
    out = []
    for span in answer["spans"]:
        try:
            start, end, label = span["start"], span["end"], span["label"]
        except (TypeError, KeyError) as exc:
            raise ValueError("each span needs start, end and label") from exc
        if not all(isinstance(x, int) and not isinstance(x, bool) for x in (start, end)):
            raise ValueError("span start and end must be integers")
        if not isinstance(label, str):
            raise ValueError("span label must be a string")
        if not 0 <= start <= end or (n_chars is not None and end > n_chars):
            raise ValueError(f"span [{start}, {end}) is outside the text")
        out.append((start, end, label))
    return out


def _tags(spans: list[Span], starts: list[int], ends: list[int]) -> list[int]:
    """BIO tags of one answer: tag 0 is O, 1 + 2l is B-l, 2 + 2l is I-l.

    A token belongs to a span it overlaps. Overlapping spans of one answer are flattened:
    the earliest start (then the longest, then the lowest label) claims its tokens
    first; a later span keeps only the tokens left free.
    """
    tags = [0] * len(starts)
    for start, end, label in sorted(spans, key=lambda s: (s[0], -s[1], s[2])):
        first = True
        for i in range(bisect_right(ends, start), bisect_left(starts, end)):
            if tags[i] == 0:
                tags[i] = 1 + 2 * label if first else 2 + 2 * label
                first = False
    return tags


def _encode(text: str, answers: Sequence[WorkerAnswer], label_index: Mapping[str, int]
            ) -> tuple[list[tuple[int, int]], np.ndarray]:
    """Tokens of one task and its answers' tags, (n_answers, n_tokens)."""
    spans = []
    for _, answer in answers:
        parsed = _parse(answer, len(text))
        if any(label not in label_index for _, _, label in parsed):
            raise ValueError(f"unknown span label in {answer!r}")
        spans.append([(s, e, label_index[label]) for s, e, label in parsed])
    tokens = tokenize(text, {x for sp in spans for s, e, _ in sp for x in (s, e)})
    starts, ends = [s for s, _ in tokens], [e for _, e in tokens]
    tags = np.array([_tags(sp, starts, ends) for sp in spans], dtype=np.int64)
    return tokens, tags.reshape(len(spans), len(tokens))


class SpanAggregator(BaseEstimator):
    """Consensus spans: Dawid-Skene per token over BIO tags, decoded into valid spans.

    Model (per task, over its tokens): worker ``w`` tags token ``t`` with ``y`` with
    probability ``confusions[w, z_t, y]``, independently given the true tag ``z_t``, as
    in Dawid and Skene's model with tokens for items; the true tags are drawn from the
    tag ``priors`` restricted to valid sequences, where ``I-l`` only follows ``B-l`` or
    ``I-l``. That is a Markov chain whose every row is the priors with the forbidden tags
    cut out (``transitions_``): it adds no parameter to Dawid-Skene, forbids what no
    answer can mean, and makes the most likely sequence (Viterbi) a set of spans. EM: the
    first M-step uses the tokens' vote shares; each E-step is forward-backward per task,
    each M-step re-estimates the confusions (MAP) and priors. The response's spans start
    at a ``B-l`` and run over the ``I-l`` that follow.

    Learning free transitions between tags instead (the HMM-Crowd model of Nguyen et al.
    2017 without its word features) was measured worse on the CoNLL-2003 MTurk answers
    (exact-span F1 0.702 against 0.731 here): the learned chain sticks to ``O`` runs and
    drops the entities that few workers mark.

    Smoothing: each confusion row has a Dirichlet prior of ``alpha`` pseudo-tokens per
    cell plus ``alpha_diag`` on the diagonal, so a worker with a few tokens of a tag keeps
    a near-prior row for it. A worker the fit did not see (index -1 or >= ``n_workers``)
    gets the pooled matrix of all fitted workers (their counts summed, plus the prior);
    before any fit, every worker gets the prior's mean. The tag priors get ``alpha_prior``
    pseudo-tokens per tag.

    ``TaskResult``: ``response = {"spans": [...]}`` sorted by (start, end, label), each
    span with ``"confidence"``: the lowest posterior marginal, among its tokens, of the
    token's decoded tag. Task ``confidence``: the lowest such marginal over all tokens
    of the text, outside spans too (a task is as sure as its least sure token; an empty
    answer that every worker gives is confident). ``needs_review`` when the confidence
    is below ``review_threshold`` (0.5: the least sure token's decoded tag is more likely
    wrong than right). A task without answers gets no spans, confidence 0 and no review
    flag (it needs answers first); one with answers but a blank text gets confidence 1.
    ``extra``: ``{"tokens": n}``. Ties between equally likely sequences (within a relative
    1e-9 in log space) go to the lowest tag index at each step: ``O`` first, then labels
    in the order of ``labels``, ``B`` before ``I``.

    Fitted: ``results_``, ``confusions_``, ``default_confusion_``, ``priors_``,
    ``transitions_``, ``start_``, ``converged_``, ``n_iter_`` and ``params_`` (``labels``,
    ``confusions`` (W, K, K), ``default_confusion`` (K, K), ``priors`` (K,); tags ordered
    as :attr:`tags`: ``O, B-l0, I-l0, B-l1, ...``).

    Dawid, A. P. and Skene, A. M. (1979). Maximum likelihood estimation of observer
    error-rates using the EM algorithm. Applied Statistics 28(1), 20-28.
    Nguyen, A. T., Wallace, B. C., Li, J. J., Nenkova, A. and Lease, M. (2017).
    Aggregating and predicting sequence labels from crowd annotations. ACL 2017.
    """

    def __init__(
        self,
        labels: Sequence[str],
        n_iter: int = 100,
        tol: float = 1e-5,
        alpha: float = 0.5,
        alpha_diag: float = 1.0,
        alpha_prior: float = 1.0,
        review_threshold: float = 0.5,
    ) -> None:
        self.labels = labels
        self.n_iter = n_iter
        self.tol = tol
        self.alpha = alpha
        self.alpha_diag = alpha_diag
        self.alpha_prior = alpha_prior
        self.review_threshold = review_threshold

    # -- set-up ---------------------------------------------------------------------

    def _validate_params(self) -> None:
        labels = list(self.labels)
        if not labels or not all(isinstance(x, str) for x in labels) or len(set(labels)) < len(labels):
            raise ValueError("labels must be a non-empty list of distinct strings")
        check_n_iter(self.n_iter)
        for name in ("tol", "alpha", "alpha_diag"):
            check_positive(getattr(self, name), name, strict=False)
        check_positive(self.alpha_prior, "alpha_prior")  # every tag keeps a prior above 0
        if not 0.0 <= float(self.review_threshold) <= 1.0:
            raise ValueError(f"review_threshold must be in [0, 1], got {self.review_threshold}")

    def _structure(self) -> None:
        """Label indices and the confusion prior, from the parameters."""
        self._validate_params()
        n_labels = len(self.labels)
        k = 2 * n_labels + 1
        self._label_index = {label: i for i, label in enumerate(self.labels)}
        self._pseudo = np.full((k, k), float(self.alpha)) + float(self.alpha_diag) * np.eye(k)

    @property
    def tags(self) -> list[str]:
        """Tag names in index order: ``O``, then ``B-`` and ``I-`` of each label."""
        return ["O"] + [f"{p}-{label}" for label in self.labels for p in ("B", "I")]

    # -- fitting --------------------------------------------------------------------

    def fit(self, items: Sequence[Sequence[WorkerAnswer]], *, n_workers: int,
            contexts: Sequence[str] | None = None) -> SpanAggregator:
        """Learn the worker confusions and tag priors from every task of a project.

        ``items[i]``: task ``i``'s ``(worker, answer)`` pairs; ``contexts[i]``: its text.
        """
        self._structure()
        check_items(items, n_workers, contexts)
        if contexts is None:
            raise ValueError("span tasks need their texts as contexts")
        encoded = [_encode(text, answers, self._label_index) for text, answers in zip(contexts, items, strict=True)]
        live = [i for i, (tokens, tags) in enumerate(encoded) if tokens and tags.shape[0]]
        chains = Chains(np.array([len(encoded[i][0]) for i in live], dtype=np.int64))
        # one observation per (answer, token); worker -1 becomes the extra slot n_workers,
        # which always holds the pooled matrix and learns nothing of its own
        rows, workers, tags = [], [], []
        for c, i in enumerate(live):
            r, t = chains.rows(c), encoded[i][1]
            who = [w if w >= 0 else n_workers for w, _ in items[i]]
            rows.append(np.tile(r, t.shape[0]))
            workers.append(np.repeat(np.array(who, dtype=np.int64), t.shape[1]))
            tags.append(t.ravel())
        k = self._pseudo.shape[0]
        self.n_workers_ = int(n_workers)
        self._init_model(int(n_workers))
        self.converged_, self.n_iter_ = True, 0
        marginals, states = np.zeros((0, k)), np.zeros(0, dtype=np.int64)
        if live:
            data = Answers(np.concatenate(rows), np.concatenate(workers), np.concatenate(tags),
                           n_tasks=chains.n_states, n_workers=n_workers + 1, n_labels=k)
            marginals, states = self._run_em(data, chains)
        self.results_ = []
        live_rank = {i: c for c, i in enumerate(live)}
        for i, (tokens, t) in enumerate(encoded):
            if i in live_rank:
                r = chains.rows(live_rank[i])
                self.results_.append(self._result(tokens, states[r].tolist(), marginals[r, states[r]].tolist()))
            else:
                self.results_.append(self._empty_result(tokens, t.shape[0]))
        return self

    def _run_em(self, data: Answers, chains: Chains) -> tuple[np.ndarray, np.ndarray]:
        """EM from the tokens' vote shares; returns the final marginals and Viterbi tags."""
        ans = AnswerMatrix(data)
        self._m_step(ans, np.ascontiguousarray(uniform_init(data).T))
        previous = -np.inf
        self.converged_ = False
        for it in range(1, self.n_iter + 1):
            marginals, loglik = self._e_step(ans, chains)
            self._m_step(ans, marginals)
            self.n_iter_ = it
            loglik /= ans.n_answers
            if abs(loglik - previous) <= self.tol:
                self.converged_ = True
                break
            previous = loglik
        if not self.converged_:
            warnings.warn(f"SpanAggregator did not converge in {self.n_iter} iterations (tol={self.tol})",
                          ConvergenceWarning, stacklevel=3)
        marginals, _ = self._e_step(ans, chains)
        log_conf, log_trans, log_start = self._log_model()
        states = viterbi(chains, ans.loglik(log_conf).T, log_trans, log_start)
        return marginals, states

    def _e_step(self, ans: AnswerMatrix, chains: Chains) -> tuple[np.ndarray, float]:
        # the per-token log-likelihood of every true tag is one sparse product (see
        # _sparse); forward-backward then only removes the invalid sequences
        log_conf, _, _ = self._log_model()
        return forward_backward(chains, ans.loglik(log_conf).T, self.transitions_, self.start_)

    def _m_step(self, ans: AnswerMatrix, marginals: np.ndarray) -> None:
        # MAP confusions: expected counts plus the Dirichlet pseudo-counts, rows
        # normalised; the last slot (anonymous answers) gets the pooled matrix
        counts = ans.expected_counts(marginals.T)
        pooled = counts.sum(axis=0) + self._pseudo
        mine = counts[:-1] + self._pseudo
        self.confusions_ = mine / mine.sum(axis=2, keepdims=True)
        self.default_confusion_ = pooled / pooled.sum(axis=1, keepdims=True)
        self._set_priors(marginals.sum(axis=0) + self.alpha_prior)

    def _set_priors(self, priors: np.ndarray) -> None:
        self.priors_ = priors / priors.sum()
        self.transitions_, self.start_ = bio_transitions(self.priors_)
        self._log_cache: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def _init_model(self, n_workers: int) -> None:
        """Model before any evidence: every worker at the prior's mean, uniform chain."""
        prior = self._pseudo / self._pseudo.sum(axis=1, keepdims=True)
        self.confusions_ = np.repeat(prior[None], n_workers, axis=0)
        self.default_confusion_ = prior
        self._set_priors(np.ones(prior.shape[0]))

    def _log_model(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Log confusions (W + 1, K, K) with the pooled matrix last, log transitions and
        log first-tag probabilities (forbidden ones ``-inf``)."""
        if self._log_cache is None:
            conf = np.concatenate([self.confusions_, self.default_confusion_[None]])
            with np.errstate(divide="ignore"):
                self._log_cache = (np.log(conf), np.log(self.transitions_), np.log(self.start_))
        return self._log_cache

    # -- results --------------------------------------------------------------------

    def _result(self, tokens: list[tuple[int, int]], states: list[int], sure: list[float]) -> TaskResult:
        """Spans of a decoded tag sequence; ``sure[t]`` = posterior of token t's tag."""
        spans: list[dict[str, Any]] = []
        previous = 0
        for (start, end), tag, p in zip(tokens, states, sure, strict=True):
            if tag and tag % 2 == 0 and previous in (tag - 1, tag):  # I-l after B-l or I-l
                spans[-1]["end"] = end
                spans[-1]["confidence"] = min(spans[-1]["confidence"], p)
            elif tag:  # B-l, or an I-l after anything else: a new span
                spans.append({"start": start, "end": end, "label": self.labels[(tag - 1) // 2], "confidence": p})
            previous = tag
        confidence = min(sure, default=1.0)
        return TaskResult({"spans": spans}, confidence, confidence < self.review_threshold,
                          {"tokens": len(tokens)})

    def _empty_result(self, tokens: list[tuple[int, int]], n_answers: int) -> TaskResult:
        """No answers: nothing known yet; answers but no token: nothing to mark."""
        return TaskResult({"spans": []}, 1.0 if n_answers else 0.0, False, {"tokens": len(tokens)})

    def aggregate(self, answers: Sequence[WorkerAnswer], context: str | None = None) -> TaskResult:
        """Decide one task (``context``: its text) with the worker model at hand: fitted,
        loaded, or none (every worker at the prior)."""
        if not hasattr(self, "priors_"):
            self._structure()
            self._init_model(0)
        if context is None:
            raise ValueError("a span task needs its text as context")
        tokens, tags = _encode(context, answers, self._label_index)
        if not tokens or not tags.shape[0]:
            return self._empty_result(tokens, tags.shape[0])
        log_conf = self._log_model()[0]
        n_known = self.confusions_.shape[0]
        who = np.array([w if 0 <= w < n_known else n_known for w, _ in answers], dtype=np.int64)
        # loglik[t, z] = sum over answers of log P(that answer's tag at t | z)
        loglik = log_conf[who[:, None], :, tags].sum(axis=0)
        states, sure = bio_chain(loglik, self.priors_)
        return self._result(tokens, states, sure)

    # -- parameters -----------------------------------------------------------------

    @property
    def params_(self) -> dict[str, Any]:
        """The worker model as plain lists (JSON-serialisable)."""
        if not hasattr(self, "n_workers_"):
            raise AttributeError("params_ exists after fit or load_params")
        return {
            "labels": list(self.labels),
            "confusions": self.confusions_.tolist(),
            "default_confusion": self.default_confusion_.tolist(),
            "priors": self.priors_.tolist(),
        }

    def load_params(self, params: Mapping[str, Any]) -> SpanAggregator:
        """Restore a worker model saved from ``params_`` (its labels must be ``labels``)."""
        self._structure()
        if list(params["labels"]) != list(self.labels):
            raise ValueError(f"params are for labels {params['labels']}, not {list(self.labels)}")
        k = self._pseudo.shape[0]
        conf = np.asarray(params["confusions"], dtype=np.float64).reshape(-1, k, k)
        default = np.asarray(params["default_confusion"], dtype=np.float64)
        priors = np.asarray(params["priors"], dtype=np.float64)
        if default.shape != (k, k) or priors.shape != (k,):
            raise ValueError(f"params do not fit {k} tags")
        if not all(np.all(np.isfinite(x)) and np.all(x > 0) for x in (conf, default, priors)):
            raise ValueError("params must hold positive probabilities")
        self.confusions_, self.default_confusion_ = conf, default
        self.n_workers_ = conf.shape[0]
        self._set_priors(priors)
        return self


def answer_score(answer: Mapping[str, Any], response: Mapping[str, Any], context: str | None = None) -> float:
    """Exact-span F1 of ``answer`` against ``response``: a span counts when its start, end
    and label all match; 1.0 when both are empty."""
    n_chars = None if context is None else len(context)
    mine = {s for s in _parse(answer, n_chars)}
    theirs = {s for s in _parse(response, n_chars)}
    if not mine and not theirs:
        return 1.0
    return 2.0 * len(mine & theirs) / (len(mine) + len(theirs))
