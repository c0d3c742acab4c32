"""Fraud and low-effort signals per annotator, from their answers and the server's clock.

Five signals, each a test with a stated null hypothesis, so that a flag means "this is very
unlikely for an honest annotator of this project" rather than "below a number tuned on one
dataset". Everything is relative to the project itself: its typical time per answer, its
distribution of answers, its annotators' own confusion matrices.

- ``fast``: the time from lease to submit (measured by the server) is under the project's
  floor for most of the annotator's answers. The floor is ``floor_ratio`` times the median
  over annotators of their median time, robust to a minority of fast clickers.
- ``burst``: runs of at least ``burst_run`` consecutive submits, each under the floor after
  the one before: machine speed, whatever the lease times say (an account holding leases in
  several projects at once can answer them all within a second).
- ``one_answer``: one answer for (nearly) everything. The annotator's most frequent answer
  is tested against its rate among the other annotators' answers (one-sided binomial test),
  and the annotator's answer entropy must be under ``max_entropy_ratio`` of the project's.
- ``chance``: answers that do not depend on the truth, as a spammer's (Raykar and Yu 2012 call
  the confusion matrix of such a worker rank one). The truth is the gold answer where there
  is one, else the majority of the task's other answers (leave-one-out, so the annotator's
  own answer does not vote for itself). The flag weighs two explanations of the annotator's
  judged answers: a spammer (answers drawn from one distribution of the annotator's own,
  whatever the truth, under a Jeffreys prior) and a typical annotator of this project (the
  other annotators' pooled confusion matrix). It is raised when the Bayes factor for the
  spammer exceeds ``bayes_factor`` (20: "strong" evidence, Kass and Raftery 1995). Evidence
  grows with each answer, for or against; an annotator with few answers is not flagged.
- ``copying``: pairs of annotators who agree on wrong gold answers far more often than two
  independent annotators with their error rates would. Under conditional independence given
  the gold label g, the chance that both give the same wrong answer on a task is
  ``p_t = sum_{l != g} pi_a(l|g) pi_b(l|g)``, with each annotator's confusion ``pi``
  estimated from their answers (shrunk towards the project's); the count of shared wrong
  answers is then Poisson-binomial, and its upper tail is the pair's p-value. Two annotators
  who both always answer "A" share every wrong answer on gold "B" tasks, as the null expects:
  they are not flagged as copying (``one_answer`` flags them). Pairs are flagged at false
  discovery rate ``copy_fdr`` (Benjamini and Hochberg 1995) with at least ``min_shared_wrong``
  shared wrong answers.

Raykar, V. C. and Yu, S. (2012). Eliminating spammers and ranking annotators for crowdsourced
labeling tasks. JMLR 13, 491-518.
Kass, R. E. and Raftery, A. E. (1995). Bayes factors. JASA 90(430), 773-795.
Benjamini, Y. and Hochberg, Y. (1995). Controlling the false discovery rate. JRSS B 57(1), 289-300.
Ipeirotis, P., Provost, F. and Wang, J. (2010). Quality management on Amazon Mechanical Turk.
HCOMP 2010 (gold-based detection of spammers and their confusion matrices).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.special import gammaln
from scipy.stats import binom

from ._base import BaseEstimator

SIGNALS = ("fast", "burst", "one_answer", "chance", "copying")
# Tasks whose answers are judged against the majority of the others at once.
_TASKS_PER_CHUNK = 20_000
# Workers whose shared wrong answers with every other are counted in one sparse product.
_WORKERS_PER_PRODUCT = 1_000


@dataclass(frozen=True)
class CopyPair:
    a: int  # worker index
    b: int
    shared_gold: int  # gold tasks both answered
    shared_wrong: int  # of those, tasks where both gave the same wrong answer
    expected: float  # what two independent annotators with their confusions would share
    p_value: float


def _int_array(name: str, values: object, n: int | None = None) -> np.ndarray:
    array = np.asarray(values, dtype=np.int64).reshape(-1)
    if n is not None and array.shape[0] != n:
        raise ValueError(f"{name} must have one entry per answer ({n}), got {array.shape[0]}")
    return array


def _float_array(name: str, values: object, n: int) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if array.shape[0] != n:
        raise ValueError(f"{name} must have one entry per answer ({n}), got {array.shape[0]}")
    return array


class FraudDetector(BaseEstimator):
    """Per-annotator fraud and low-effort signals (see the module docstring for the tests).

    ``fit(workers, tasks, answers, seconds, submitted, gold=..., groups=...)`` takes one entry
    per answer: the worker's index, the task's index, the answer's category code, the seconds
    from lease to submit (NaN when unknown), the submit time in seconds on any clock, the gold
    answer's code (-1 where the task is not gold) and the project's index (the floor is per
    project). Fitted per worker: ``n_answers_``, ``fast_share_``, ``burst_share_``,
    ``top_share_``, ``entropy_ratio_``, ``one_answer_p_``, ``chance_log_bf_``, ``flags_`` (a
    set of signal names each), and ``pairs_`` (the flagged ``CopyPair``\\ s), ``floors_``.
    """

    def __init__(self, *, min_answers: int = 20, floor_ratio: float = 0.25, min_seconds: float | None = None,
                 fast_share: float = 0.5, burst_run: int = 5, burst_share: float = 0.25,
                 max_entropy_ratio: float = 0.5, alpha: float = 0.001, bayes_factor: float = 20.0,
                 copy_fdr: float = 0.05, min_shared_wrong: int = 3, max_categories: int = 50,
                 prior_strength: float = 2.0) -> None:
        self.min_answers = min_answers
        self.floor_ratio = floor_ratio
        self.min_seconds = min_seconds
        self.fast_share = fast_share
        self.burst_run = burst_run
        self.burst_share = burst_share
        self.max_entropy_ratio = max_entropy_ratio
        self.alpha = alpha
        self.bayes_factor = bayes_factor
        self.copy_fdr = copy_fdr
        self.min_shared_wrong = min_shared_wrong
        self.max_categories = max_categories
        self.prior_strength = prior_strength

    def fit(self, workers: object, tasks: object, answers: object, seconds: object, submitted: object, *,
            gold: object | None = None, groups: object | None = None, n_workers: int | None = None,
            n_categories: int | None = None) -> FraudDetector:
        w = _int_array("workers", workers)
        n = w.shape[0]
        t, a = _int_array("tasks", tasks, n), _int_array("answers", answers, n)
        secs, at = _float_array("seconds", seconds, n), _float_array("submitted", submitted, n)
        g = _int_array("gold", gold, n) if gold is not None else np.full(n, -1)
        grp = _int_array("groups", groups, n) if groups is not None else np.zeros(n, dtype=np.int64)
        if n and (w.min() < 0 or t.min() < 0 or a.min() < 0 or grp.min() < 0):
            raise ValueError("workers, tasks, answers and groups must be non-negative indices")
        if self.min_answers < 1 or not 0 < self.floor_ratio < 1 or self.burst_run < 2:
            raise ValueError("min_answers >= 1, 0 < floor_ratio < 1 and burst_run >= 2 are required")
        W = int(n_workers if n_workers is not None else (w.max() + 1 if n else 0))
        K = int(n_categories if n_categories is not None else (max(a.max(), g.max()) + 1 if n else 0))
        self.n_answers_ = np.bincount(w, minlength=W)
        enough = self.n_answers_ >= self.min_answers
        self.floors_ = self._floors(w, secs, grp, W)
        floor_of = self.floors_[grp] if n else np.zeros(0)
        self.fast_share_ = self._share(w, (secs < floor_of) & ~np.isnan(secs), W)
        self.burst_share_ = self._share(w, self._in_bursts(w, at, floor_of), W)
        self.top_share_, self.entropy_ratio_, self.one_answer_p_ = self._one_answer(w, a, W, K)
        flags: list[set[str]] = [set() for _ in range(W)]
        for i in np.flatnonzero(enough):
            if self.fast_share_[i] >= self.fast_share:
                flags[i].add("fast")
            if self.burst_share_[i] >= self.burst_share:
                flags[i].add("burst")
            if self.one_answer_p_[i] < self.alpha and self.entropy_ratio_[i] <= self.max_entropy_ratio:
                flags[i].add("one_answer")
        categorical = self.max_categories >= K
        # The truth and the typical annotator are judged from the annotators not flagged so far:
        # a busy fast clicker would otherwise outvote the others and make them look random.
        voters = np.array([not f for f in flags], dtype=bool)[w] if n else np.zeros(0, dtype=bool)
        reference = self._reference(w, t, a, g, voters) if categorical else np.full(n, -1)
        self.chance_log_bf_ = (self._chance(w, a, reference, W, K, voters) if categorical else np.zeros(W))
        self.pairs_ = self._copying(w, t, a, g, reference, W, K) if categorical else []
        for i in np.flatnonzero(enough):
            if self.chance_log_bf_[i] > np.log(self.bayes_factor):
                flags[i].add("chance")
        for pair in self.pairs_:
            flags[pair.a].add("copying")
            flags[pair.b].add("copying")
        self.flags_ = flags
        return self

    @staticmethod
    def _share(w: np.ndarray, hit: np.ndarray, W: int) -> np.ndarray:
        total = np.bincount(w, minlength=W)
        return np.bincount(w, weights=hit.astype(np.float64), minlength=W) / np.maximum(total, 1)

    def _floors(self, w: np.ndarray, secs: np.ndarray, grp: np.ndarray, W: int) -> np.ndarray:
        """Per project: ``floor_ratio`` x the median over annotators of their median time (a
        median of medians: a minority of fast clickers, however busy, cannot drag it down)."""
        n_groups = int(grp.max()) + 1 if grp.size else 1
        floors = np.zeros(n_groups)
        timed = ~np.isnan(secs)
        for k in range(n_groups):
            mine = (grp == k) & timed
            medians = _medians_by(w[mine], secs[mine])
            floors[k] = self.floor_ratio * float(np.median(medians)) if medians.size else 0.0
            if self.min_seconds is not None:
                floors[k] = float(self.min_seconds)
        return floors

    def _in_bursts(self, w: np.ndarray, at: np.ndarray, floor_of: np.ndarray) -> np.ndarray:
        """Whether each answer is in a run of ``burst_run`` submits, each under the floor after
        the previous one of the same worker."""
        inside = np.zeros(w.shape[0], dtype=bool)
        if w.shape[0] < 2:
            return inside
        order = np.lexsort((at, w))  # each worker's answers together, in submit order
        ws = w[order]
        # Gap j (between the jth and the next answer in that order) is quick when both are one
        # worker's and the next came under the floor after it.
        quick = (ws[1:] == ws[:-1]) & (np.diff(at[order]) < floor_of[order][1:])
        edges = np.diff(np.concatenate(([0], quick.astype(np.int8), [0])))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)  # runs of quick gaps
        long = ends - starts + 1 >= self.burst_run  # r quick gaps in a row: r + 1 answers
        marks = np.zeros(w.shape[0] + 1, dtype=np.int64)
        np.add.at(marks, starts[long], 1)
        np.add.at(marks, ends[long] + 1, -1)
        inside[order] = np.cumsum(marks[:-1]) > 0
        return inside

    def _one_answer(self, w: np.ndarray, a: np.ndarray, W: int, K: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each worker's top answer share, entropy ratio to the others', and the binomial
        p-value of getting that answer so often at the others' rate of it."""
        counts = np.zeros((W, K))
        np.add.at(counts, (w, a), 1.0)
        top, ratio, p = np.zeros(W), np.ones(W), np.ones(W)
        n_i = counts.sum(axis=1)
        seen = np.flatnonzero(n_i > 0)  # every worker at once: one row each
        mine, n_i = counts[seen], n_i[seen]
        others = counts.sum(axis=0)[None, :] - mine
        # Laplace smoothing: an answer nobody else gave is rare, not impossible.
        q = (others + 1.0) / (others.sum(axis=1, keepdims=True) + K)
        k = np.argmax(mine, axis=1)
        most = mine[np.arange(seen.size), k]
        top[seen] = most / n_i
        p[seen] = binom.sf(most - 1, n_i, q[np.arange(seen.size), k])
        h_other = _entropies(q)
        h_mine = _entropies(mine / n_i[:, None])
        ratio[seen] = np.where(h_other > 0, h_mine / np.where(h_other > 0, h_other, 1.0), 1.0)
        return top, ratio, p

    @staticmethod
    def _reference(w: np.ndarray, t: np.ndarray, a: np.ndarray, g: np.ndarray, voters: np.ndarray) -> np.ndarray:
        """The truth each answer is judged against: gold, else the strict majority of the
        task's other answers from ``voters`` (-1 on a tie or when there are none)."""
        ref = g.copy()
        if t.size == 0:
            return ref
        # Each task's votes per answer, then each judged answer's task less its own vote: every
        # answer at once, a range of tasks at a time (a row of counts per task and per answer).
        judged = (g < 0) & (np.bincount(t)[t] >= 2)
        K = int(a.max()) + 1
        for low in range(0, int(t.max()) + 1, _TASKS_PER_CHUNK):
            here = (t >= low) & (t < low + _TASKS_PER_CHUNK)
            votes = np.zeros((_TASKS_PER_CHUNK, K), dtype=np.int32)
            np.add.at(votes, (t[here & voters] - low, a[here & voters]), 1)
            j = np.flatnonzero(here & judged)
            others = votes[t[j] - low]
            own = voters[j]
            others[np.flatnonzero(own), a[j][own]] -= 1
            top = others.max(axis=1, initial=0)
            alone = (others == top[:, None]).sum(axis=1) == 1  # a strict majority
            ref[j] = np.where((top > 0) & alone, others.argmax(axis=1), -1)
        return ref

    def _chance(self, w: np.ndarray, a: np.ndarray, ref: np.ndarray, W: int, K: int,
                voters: np.ndarray) -> np.ndarray:
        """log Bayes factor of the worker's judged answers under "a spammer" (answers drawn from
        one distribution of their own, whatever the truth; Jeffreys prior Dirichlet(1/2), so
        fitting it costs what its freedom is worth) over "a typical annotator of the project"
        (the other annotators' pooled confusion matrix, fixed).

        Every worker at once from the cells of their (truth x answer) table that hold answers: a
        dense table per worker would be W x K x K floats (100,000 workers and 50 labels: 2 GB)."""
        log_bf = np.zeros(W)
        known = ref >= 0
        wk, rk, ak = w[known], ref[known], a[known]
        voting = np.bincount(w[voters], minlength=W) > 0
        everyone = np.zeros((K, K))  # the voting workers' pooled table
        np.add.at(everyone, (rk[voting[wk]], ak[voting[wk]]), 1.0)
        # Each worker's table as its non-empty cells (worker, truth, answer) and rows (worker, truth).
        cells, in_cell = np.unique((wk * K + rk) * K + ak, return_counts=True)
        cell_w, cell_r, cell_a = cells // (K * K), cells // K % K, cells % K
        rows, in_row = np.unique(wk * K + rk, return_counts=True)
        row_w, row_r = rows // K, rows % K
        judged = np.bincount(row_w, minlength=W) >= 2  # one true label seen: nothing tells the two apart
        # The spammer: Dirichlet(1/2)-multinomial evidence of the worker's answer counts (an
        # answer never given adds gammaln(0.5) - gammaln(0.5) = 0).
        answers, in_answer = np.unique(wk * K + ak, return_counts=True)
        spammer = (gammaln(K / 2) - gammaln(np.bincount(wk, minlength=W) + K / 2)
                   + np.bincount(answers // K, weights=gammaln(in_answer + 0.5) - gammaln(0.5), minlength=W))
        # The typical annotator: sum over the worker's answers of log pooled[truth, answer], where
        # pooled is the others' table (less the worker's own when they vote), Laplace-smoothed and
        # normalized per truth: log(cell + 1) - log(row + K), summed per cell and per row.
        cell_own = np.where(voting[cell_w], in_cell, 0)
        row_own = np.where(voting[row_w], in_row, 0)
        in_cells = in_cell * np.log(everyone[cell_r, cell_a] - cell_own + 1.0)
        in_rows = in_row * np.log(everyone.sum(axis=1)[row_r] - row_own + K)
        typical = np.bincount(cell_w, weights=in_cells, minlength=W) - np.bincount(row_w, weights=in_rows, minlength=W)
        log_bf[judged] = (spammer - typical)[judged]
        return log_bf

    def _copying(self, w: np.ndarray, t: np.ndarray, a: np.ndarray, g: np.ndarray, ref: np.ndarray,
                 W: int, K: int) -> list[CopyPair]:
        """The pairs of workers with at least ``min_shared_wrong`` wrong gold answers each that
        share more of them than independence allows. Only the pairs that gave the same wrong
        answer to ``min_shared_wrong`` gold tasks are tested (the others cannot be flagged),
        found by a sparse product of who gave which wrong answer where: pairs that share
        nothing cost nothing, where a loop over every pair of such workers was quadratic in the
        workforce (``benchmarks/fraud_scale.py``: 10,000 annotators of 100 answers, 44 s)."""
        on_gold = np.flatnonzero(g >= 0)
        if on_gold.size == 0:
            return []
        tasks, column = np.unique(t[on_gold], return_inverse=True)
        truth = np.full(tasks.size, -1)
        truth[column] = g[on_gold]
        # One answer per worker and gold task (the last one given, should there be two).
        cell, last = np.unique((w[on_gold] * tasks.size + column)[::-1], return_index=True)
        picked = on_gold[on_gold.size - 1 - last]
        by, at, said = cell // tasks.size, cell % tasks.size, a[picked]
        wrong = said != truth[at]
        workers = np.flatnonzero(np.bincount(by[wrong], minlength=W) >= self.min_shared_wrong)
        n_tests = max(len(workers) * (len(workers) - 1) // 2, 1)
        if workers.size < 2:
            return []
        index = np.full(W, -1)
        index[workers] = np.arange(workers.size)
        mine = index[by] >= 0
        # Which gold tasks each such worker answered (a row of sorted task columns each), and
        # their wrong answers as (task, answer) cells: their product counts the wrong answers
        # two workers share.
        answered = sparse.csr_matrix((np.ones(int(mine.sum()), dtype=np.int8), (index[by[mine]], at[mine])),
                                     shape=(workers.size, tasks.size))
        mine &= wrong
        erred = sparse.csr_matrix((np.ones(int(mine.sum()), dtype=np.int32),
                                   (index[by[mine]], at[mine] * K + said[mine])), shape=(workers.size, tasks.size * K))
        erred_by = erred.T.tocsr()
        confusion = _Confusions(w, a, ref, W, K, self.prior_strength)
        candidates: list[CopyPair] = []
        for low in range(0, workers.size, _WORKERS_PER_PRODUCT):
            shared = (erred[low:low + _WORKERS_PER_PRODUCT] @ erred_by).tocoo()
            x, y = shared.row + low, shared.col
            keep = (y > x) & (shared.data >= self.min_shared_wrong)
            for x_, y_, count in sorted(zip(x[keep].tolist(), y[keep].tolist(), shared.data[keep].tolist(),
                                            strict=True)):
                i, j = int(workers[x_]), int(workers[y_])
                both = np.intersect1d(answered.indices[answered.indptr[x_]:answered.indptr[x_ + 1]],
                                      answered.indices[answered.indptr[y_]:answered.indptr[y_ + 1]],
                                      assume_unique=True)  # the gold tasks both answered
                g_t = truth[both]
                conf_i, conf_j = confusion.of(i), confusion.of(j)
                # P(both give the same wrong answer | truth) = sum over wrong l of pi_i(l|g) pi_j(l|g)
                same = (conf_i[g_t] * conf_j[g_t]).sum(axis=1) - conf_i[g_t, g_t] * conf_j[g_t, g_t]
                candidates.append(CopyPair(i, j, int(both.size), int(count), float(same.sum()),
                                           _poisson_binomial_sf(same, int(count))))
        return _benjamini_hochberg(candidates, self.copy_fdr, n_tests=n_tests)


class _Confusions:
    """Each worker's P(answer | truth), shrunk towards the project's pooled confusion by
    ``prior_strength`` pseudo-answers per true label: made for the workers asked about, from
    their answers' cells (a dense table for every worker would be W x K x K floats)."""

    def __init__(self, w: np.ndarray, a: np.ndarray, ref: np.ndarray, W: int, K: int, prior_strength: float) -> None:
        known = ref >= 0
        self.K, self.prior_strength = K, prior_strength
        self.counts = sparse.csr_matrix((np.ones(int(known.sum())), (w[known], ref[known] * K + a[known])),
                                        shape=(W, K * K))  # duplicates summed: a count per cell
        pooled = np.asarray(self.counts.sum(axis=0)).reshape(K, K) + 1.0
        self.pooled = pooled / pooled.sum(axis=1, keepdims=True)
        self.made: dict[int, np.ndarray] = {}

    def of(self, worker: int) -> np.ndarray:
        if worker not in self.made:
            shrunk = self.counts.getrow(worker).toarray().reshape(self.K, self.K) + self.prior_strength * self.pooled
            self.made[worker] = shrunk / shrunk.sum(axis=1, keepdims=True)
        return self.made[worker]


def _medians_by(keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The median of ``values`` for each distinct key, in the keys' order: one sort, not a pass
    over every value per key (a workforce of 100,000: minutes)."""
    if keys.size == 0:
        return np.zeros(0)
    order = np.lexsort((values, keys))
    keys, values = keys[order], values[order]
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    counts = np.diff(np.append(starts, keys.size))
    return (values[starts + (counts - 1) // 2] + values[starts + counts // 2]) / 2


def _entropies(p: np.ndarray) -> np.ndarray:
    """The entropy of each row of ``p`` (0 log 0 counted 0)."""
    return -np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0).sum(axis=1)


def _poisson_binomial_sf(p: np.ndarray, k: int) -> float:
    """P(X >= k) for a sum of independent Bernoulli(p_t): the exact distribution by
    convolution, one task at a time (gold tasks shared by two annotators are few)."""
    dist = np.zeros(p.size + 1)
    dist[0] = 1.0
    for n, p_t in enumerate(np.clip(p, 0.0, 1.0), start=1):
        dist[1:n + 1] = dist[1:n + 1] * (1 - p_t) + dist[:n] * p_t
        dist[0] *= 1 - p_t
    return float(min(1.0, dist[k:].sum()))


def _benjamini_hochberg(pairs: list[CopyPair], fdr: float, *, n_tests: int) -> list[CopyPair]:
    """The pairs rejected at false discovery rate ``fdr`` out of ``n_tests`` tests (pairs not
    tested had too few shared wrong answers to count: their p-value is taken as 1)."""
    ranked = sorted(pairs, key=lambda pair: pair.p_value)
    keep = 0
    for rank, pair in enumerate(ranked, start=1):
        if pair.p_value <= fdr * rank / n_tests:
            keep = rank
    return ranked[:keep]
