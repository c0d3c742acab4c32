"""Seeded generators of synthetic crowd answers with known truth and worker models."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WORKER_KINDS = ("good", "mediocre", "spammer", "adversarial", "biased")


@dataclass(frozen=True)
class SimulatedAnswers:
    """Answers with the truth behind them.

    ``confusions[w, k, l]`` = P(worker w answers l | true class k); ``kinds[w]`` indexes
    :data:`WORKER_KINDS`.
    """

    tasks: np.ndarray
    workers: np.ndarray
    labels: np.ndarray
    truth: np.ndarray
    confusions: np.ndarray
    kinds: np.ndarray
    n_labels: int

    @property
    def n_tasks(self) -> int:
        return int(self.truth.shape[0])

    @property
    def n_workers(self) -> int:
        return int(self.confusions.shape[0])


def _confusions(kinds: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    w = kinds.shape[0]
    conf = np.empty((w, k, k))
    eye = np.eye(k)
    # errors of honest workers fall on other classes with Dirichlet-random shares
    err = rng.dirichlet(np.ones(max(k - 1, 1)), size=(w, k))
    off = np.zeros((w, k, k))
    for c in range(k):
        others = [j for j in range(k) if j != c]
        off[:, c, others] = err[:, c, : len(others)]
    acc = np.where(kinds == 0, rng.uniform(0.75, 0.95, w), rng.uniform(0.45, 0.7, w))[:, None, None]
    conf[:] = acc * eye + (1 - acc) * off
    # spammers: half answer uniformly at random, half always the same label
    spam = np.flatnonzero(kinds == 2)
    rand = spam[rng.random(spam.size) < 0.5]
    fixed = np.setdiff1d(spam, rand)
    conf[rand] = 1.0 / k
    fav = rng.integers(0, k, fixed.size)
    conf[fixed] = 0.0
    conf[fixed[:, None], np.arange(k)[None, :], fav[:, None]] = 1.0
    # adversarial: mostly answer a fixed wrong class (a shifted label), 70% of the time
    adv = np.flatnonzero(kinds == 3)
    if k > 1 and adv.size:
        shift = np.roll(eye, 1, axis=1)
        conf[adv] = 0.7 * shift + 0.3 / k
    # biased: accurate on one favoured class, often answer it when the truth is another
    # (drawn last, and only when there are some, so older seeds give the same answers)
    bia = np.flatnonzero(kinds == 4)
    if bia.size:
        fav = rng.integers(0, k, bia.size)
        hit = rng.uniform(0.4, 0.7, bia.size)[:, None]
        conf[bia] = (1.0 - hit)[:, :, None] * eye + hit[:, :, None] * np.eye(k)[fav][:, None, :]
        conf[bia, fav, :] = eye[fav]
    return conf


def simulate_classification(
    n_tasks: int = 1000,
    n_workers: int = 50,
    n_labels: int = 4,
    answers_per_task: int = 5,
    *,
    mix: tuple[float, ...] = (0.4, 0.3, 0.2, 0.1),
    class_priors: np.ndarray | None = None,
    activity_sigma: float = 1.0,
    random_state: int | None = 0,
) -> SimulatedAnswers:
    """Answers of a mix of good, mediocre, spammer and adversarial workers.

    Each task gets ``answers_per_task`` answers from distinct workers, drawn with
    log-normal activity (``activity_sigma`` = 0: every worker equally busy).
    ``mix`` gives the shares of the first four :data:`WORKER_KINDS`, or of all five
    (a fifth share of "biased" workers: right on their favoured class, and answering it
    instead of the truth 40-70% of the time otherwise). Fully determined by
    ``random_state``.
    """
    if answers_per_task > n_workers:
        raise ValueError("answers_per_task cannot exceed n_workers")
    rng = np.random.default_rng(random_state)
    k = int(n_labels)
    pri = np.full(k, 1.0 / k) if class_priors is None else np.asarray(class_priors, float)
    truth = rng.choice(k, size=n_tasks, p=pri / pri.sum())
    mix_arr = np.asarray(mix, dtype=np.float64)
    if mix_arr.shape not in ((4,), (5,)):
        raise ValueError("mix must give 4 or 5 shares")
    kinds = rng.choice(mix_arr.size, size=n_workers, p=mix_arr / mix_arr.sum())
    conf = _confusions(kinds, k, rng)
    activity = rng.lognormal(0.0, activity_sigma, n_workers)
    activity /= activity.sum()
    r = answers_per_task
    chosen = rng.choice(n_workers, size=(n_tasks, r), p=activity)
    # redraw rows where a worker appears twice until every task has distinct workers
    while r > 1:
        s = np.sort(chosen, axis=1)
        bad = np.flatnonzero(np.any(s[:, 1:] == s[:, :-1], axis=1))
        if bad.size == 0:
            break
        chosen[bad] = rng.choice(n_workers, size=(len(bad), r), p=activity)
    tasks = np.repeat(np.arange(n_tasks), r)
    workers = chosen.ravel()
    # inverse-CDF sampling of each answer from its worker's confusion row
    cum = np.cumsum(conf[workers, truth[tasks]], axis=1)
    u = rng.random(tasks.size)[:, None]
    labels = np.minimum((u > cum).sum(axis=1), k - 1)
    return SimulatedAnswers(tasks, workers, labels.astype(np.int64), truth, conf, kinds, k)


def simulate_pairwise(
    n_items: int = 20,
    n_workers: int = 10,
    n_comparisons: int = 2000,
    *,
    reversed_share: float = 0.0,
    random_state: int | None = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bradley-Terry comparisons: returns ``a, b, y, workers, true_scores, reversed``.

    A share ``reversed_share`` of the workers reports the opposite preference.
    """
    rng = np.random.default_rng(random_state)
    scores = rng.normal(0.0, 1.5, n_items)
    a = rng.integers(0, n_items, n_comparisons)
    b = (a + rng.integers(1, n_items, n_comparisons)) % n_items
    workers = rng.integers(0, n_workers, n_comparisons)
    rev = rng.random(n_workers) < reversed_share
    p = 1.0 / (1.0 + np.exp(scores[b] - scores[a]))
    y = (rng.random(n_comparisons) < p).astype(float)
    y = np.where(rev[workers], 1.0 - y, y)
    return a, b, y, workers, scores, rev


def simulate_ratings(
    n_tasks: int = 300,
    n_workers: int = 20,
    ratings_per_task: int = 5,
    *,
    random_state: int | None = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ratings ``bias + scale * score + noise``: returns ``tasks, workers, ratings,
    true_scores, biases, scales``."""
    rng = np.random.default_rng(random_state)
    score = rng.normal(4.0, 1.0, n_tasks)
    bias = rng.normal(0.0, 0.8, n_workers)
    bias -= bias.mean()
    scale = rng.uniform(0.5, 1.5, n_workers)
    scale /= scale.mean()
    sigma = rng.uniform(0.2, 0.6, n_workers)
    chosen = np.argsort(rng.random((n_tasks, n_workers)), axis=1)[:, :ratings_per_task]
    tasks = np.repeat(np.arange(n_tasks), ratings_per_task)
    workers = chosen.ravel()
    ratings = bias[workers] + scale[workers] * score[tasks] + rng.normal(0, sigma[workers])
    return tasks, workers, ratings, score, bias, scale


MULTILABEL_KINDS = ("good", "mediocre", "lazy", "spammer")


@dataclass(frozen=True)
class SimulatedMultiLabel:
    """Multi-label answers with the truth behind them.

    ``chosen[i]`` is the 0/1 row of labels worker ``workers[i]`` picked for
    ``tasks[i]``; ``truth`` is (n_tasks, n_labels) 0/1; ``sensitivity`` and
    ``specificity`` are (n_workers, n_labels) = P(picks j | j applies) and
    P(leaves j out | j does not apply); ``kinds[w]`` indexes :data:`MULTILABEL_KINDS`.
    """

    tasks: np.ndarray
    workers: np.ndarray
    chosen: np.ndarray
    truth: np.ndarray
    sensitivity: np.ndarray
    specificity: np.ndarray
    kinds: np.ndarray


def simulate_multilabel(
    n_tasks: int = 1000,
    n_workers: int = 30,
    n_labels: int = 5,
    answers_per_task: int = 3,
    *,
    label_rate: float = 0.3,
    mix: tuple[float, float, float, float] = (0.4, 0.3, 0.2, 0.1),
    random_state: int | None = 0,
) -> SimulatedMultiLabel:
    """Each label applies to a task with probability ``label_rate``, independently.

    Workers (shares ``mix`` of :data:`MULTILABEL_KINDS`): good (sensitivity and
    specificity 0.85-0.97 per label), mediocre (0.6-0.8), lazy (specificity 0.97 but
    pick only 30-60% of the labels that apply) and spammers (pick each label with one
    probability 0.1-0.6 whatever applies). Each task gets ``answers_per_task`` answers
    from distinct workers, uniformly. Fully determined by ``random_state``.
    """
    if answers_per_task > n_workers:
        raise ValueError("answers_per_task cannot exceed n_workers")
    rng = np.random.default_rng(random_state)
    w, lab = int(n_workers), int(n_labels)
    mix_arr = np.asarray(mix, dtype=np.float64)
    kinds = rng.choice(4, size=w, p=mix_arr / mix_arr.sum())
    lo = np.array([0.85, 0.6, 0.3, 0.0])[kinds][:, None]
    hi = np.array([0.97, 0.8, 0.6, 0.0])[kinds][:, None]
    sens = lo + (hi - lo) * rng.random((w, lab))
    spec = lo + (hi - lo) * rng.random((w, lab))
    spec[kinds == 2] = 0.97
    spam = np.flatnonzero(kinds == 3)
    rate = rng.uniform(0.1, 0.6, spam.size)[:, None]
    sens[spam], spec[spam] = rate, 1.0 - rate
    truth = (rng.random((n_tasks, lab)) < label_rate).astype(np.int64)
    r = answers_per_task
    chosen_w = np.argsort(rng.random((n_tasks, w)), axis=1)[:, :r]
    tasks = np.repeat(np.arange(n_tasks), r)
    workers = chosen_w.ravel()
    p_pick = np.where(truth[tasks] == 1, sens[workers], 1.0 - spec[workers])
    chosen = (rng.random(p_pick.shape) < p_pick).astype(np.int64)
    return SimulatedMultiLabel(tasks, workers, chosen, truth, sens, spec, kinds)


RANKER_KINDS = ("good", "noisy", "spammer")


@dataclass(frozen=True)
class SimulatedRankings:
    """Ranking answers with the truth behind them.

    ``items[t]`` lists ``(worker, {"order": [...]})`` of task ``t``; ``truth[t]`` is the
    true order; ``thetas[w]`` the worker's Mallows dispersion (0 for a spammer);
    ``kinds[w]`` indexes :data:`RANKER_KINDS`.
    """

    items: list[list[tuple[int, dict[str, list[int]]]]]
    contexts: list[dict[str, int]]
    truth: list[list[int]]
    thetas: np.ndarray
    kinds: np.ndarray


def _mallows_sample(sigma: np.ndarray, theta: float, rng: np.random.Generator) -> list[int]:
    """One draw of Mallows(sigma, theta) by repeated insertion: the i-th item of sigma
    goes to position j (0-based, of i + 1) with probability proportional to
    ``exp(-theta (i - j))`` (Doignon, Pekec and Regenwetter 2004)."""
    out: list[int] = []
    for i, item in enumerate(sigma.tolist()):
        p = np.exp(-theta * (i - np.arange(i + 1)))
        out.insert(int(rng.choice(i + 1, p=p / p.sum())), item)
    return out


def simulate_rankings(
    n_tasks: int = 300,
    n_workers: int = 30,
    n_responses: int = 5,
    answers_per_task: int = 5,
    *,
    mix: tuple[float, float, float] = (0.5, 0.3, 0.2),
    random_state: int | None = 0,
) -> SimulatedRankings:
    """Orders of ``n_responses`` responses by good (Mallows theta in [1, 2]), noisy
    ([0.2, 0.6]) and spammer (uniformly random orders) annotators, shares ``mix``.

    Each task gets ``answers_per_task`` distinct workers drawn uniformly. Fully
    determined by ``random_state``.
    """
    if answers_per_task > n_workers:
        raise ValueError("answers_per_task cannot exceed n_workers")
    rng = np.random.default_rng(random_state)
    mix_arr = np.asarray(mix, dtype=np.float64)
    kinds = rng.choice(3, size=n_workers, p=mix_arr / mix_arr.sum())
    thetas = np.where(kinds == 0, rng.uniform(1.0, 2.0, n_workers),
                      np.where(kinds == 1, rng.uniform(0.2, 0.6, n_workers), 0.0))
    items, truth = [], []
    for _ in range(n_tasks):
        sigma = rng.permutation(n_responses)
        chosen = rng.choice(n_workers, size=answers_per_task, replace=False)
        items.append([(int(w), {"order": _mallows_sample(sigma, float(thetas[w]), rng)})
                      for w in chosen])
        truth.append(sigma.tolist())
    contexts = [{"k": n_responses} for _ in range(n_tasks)]
    return SimulatedRankings(items, contexts, truth, thetas, kinds)
