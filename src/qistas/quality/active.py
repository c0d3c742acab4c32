"""Active learning for text classification: a text model, its uncertainty, and a serving order.

The model is the strong classical baseline for short texts: TF-IDF over character n-grams
within word boundaries (2 to 5 characters, sublinear term frequency), plus words and word
pairs, and a multinomial logistic regression (scikit-learn). Character n-grams need no tokeniser and degrade
gracefully on dialectal spelling, clitics and typos, which is why they are the usual first
model for Arabic dialect and sentiment tasks (Salameh, Bouamor and Habash 2018; the
shared-task baselines of NADI and WANLP use the same features).

Arabic text is normalised first (:func:`normalize_arabic`): diacritics and the elongation
character removed, the alef forms, alef maksura and ta marbuta folded, as in the light
normalisation of Larkey, Ballesteros and Connell (2002). Other scripts pass through unchanged
but lower-cased.

Serving order (:func:`serving_order`): uncertainty sampling (Lewis and Gale 1994) puts first
the pending tasks the model is least sure of (smallest margin between its two most likely
labels, Scheffer, Decomain and Wrobel 2001, or largest entropy), and a share ``random_share``
of the positions is drawn uniformly at random instead. The random picks are a uniform sample
of what is pending, so quality estimated on them is not biased towards hard tasks, and they
keep exploring regions the model is wrongly sure about (the epsilon-greedy mix).

Lewis, D. D. and Gale, W. A. (1994). A sequential algorithm for training text classifiers.
SIGIR 1994, 3-12.
Scheffer, T., Decomain, C. and Wrobel, S. (2001). Active hidden Markov models for information
extraction. IDA 2001, LNCS 2189, 309-318.
Larkey, L. S., Ballesteros, L. and Connell, M. E. (2002). Improving stemming for Arabic
information retrieval: light stemming and co-occurrence analysis. SIGIR 2002, 275-282.
Salameh, M., Bouamor, H. and Habash, N. (2018). Fine-grained Arabic dialect identification.
COLING 2018, 1332-1344.

This module imports scikit-learn; ``qistas.quality`` itself does not import it, so the rest
of the library loads without it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._base import BaseEstimator

# Harakat and Quranic marks: fathatan .. sukun and the extended marks (U+064B-U+065F), the
# superscript alef (U+0670), the Quranic annotation signs (U+0610-U+061A, U+06D6-U+06ED),
# and the tatweel (U+0640), which only stretches a word on screen.
_STRIP = re.compile("[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed\u0640]")
_FOLD = str.maketrans({
    "\u0622": "\u0627",  # alef with madda above -> alef
    "\u0623": "\u0627",  # alef with hamza above -> alef
    "\u0625": "\u0627",  # alef with hamza below -> alef
    "\u0671": "\u0627",  # alef wasla -> alef
    "\u0649": "\u064a",  # alef maksura -> ya
    "\u06cc": "\u064a",  # Farsi ya -> ya
    "\u0629": "\u0647",  # ta marbuta -> ha
})

UNCERTAINTIES = ("margin", "entropy", "least_confidence")


def normalize_arabic(text: str) -> str:
    """Light Arabic normalisation (Larkey et al. 2002), then lower-case.

    Removes diacritics (tashkeel), Quranic marks and the tatweel; folds alef with madda or
    hamza and alef wasla to bare alef, alef maksura and Farsi ya to ya, ta marbuta to ha.
    Spelling of these letters varies freely in user text (``إسلام``/``اسلام``, ``مدرسة``/
    ``مدرسه``), so folding them lets one n-gram stand for all spellings.
    """
    return _STRIP.sub("", text).translate(_FOLD).lower()


def uncertainty(probas: np.ndarray, kind: str = "margin") -> np.ndarray:
    """Uncertainty of each row of (n, K) class probabilities; higher = less sure.

    ``margin``: 1 - (p1 - p2), the gap between the two most likely classes;
    ``entropy``: -sum p log p (natural log); ``least_confidence``: 1 - p1.
    """
    p = np.asarray(probas, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"probas must be 2-D (n, K), got shape {p.shape}")
    if kind not in UNCERTAINTIES:
        raise ValueError(f"uncertainty must be one of {', '.join(UNCERTAINTIES)}, got {kind!r}")
    if p.shape[1] < 2:
        return np.zeros(p.shape[0])
    if kind == "entropy":
        # 0 log 0 = 0: clip inside the log only, so zero probabilities contribute nothing
        return -(p * np.log(np.clip(p, 1e-300, None))).sum(axis=1)
    top2 = -np.partition(-p, 1, axis=1)[:, :2]
    if kind == "least_confidence":
        return 1.0 - top2[:, 0]
    return 1.0 - (top2[:, 0] - top2[:, 1])


def serving_order(scores: np.ndarray, *, random_share: float = 0.1, random_state: object = None) -> np.ndarray:
    """Indices in serving order: most uncertain first, a share of positions drawn at random.

    Each position is, with probability ``random_share``, the next index of a uniformly random
    permutation, else the next most uncertain index; an index already placed is skipped.
    Ties in uncertainty go in a seeded random order. ``random_share=0`` is pure uncertainty
    order, ``1`` a random order.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    share = float(random_share)
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"random_share must be in [0, 1], got {random_share}")
    rng = np.random.default_rng(random_state)  # type: ignore[arg-type]
    shuffle = rng.permutation(s.size)
    by_score = shuffle[np.argsort(-s[shuffle], kind="stable")]
    if share == 0.0:
        return by_score
    random_order = rng.permutation(s.size)
    pick_random = rng.random(s.size) < share
    placed = np.zeros(s.size, dtype=bool)
    out = np.empty(s.size, dtype=np.int64)
    i_score = i_rand = 0
    for pos in range(s.size):
        source, i = (random_order, i_rand) if pick_random[pos] else (by_score, i_score)
        while placed[source[i]]:
            i += 1
        out[pos] = source[i]
        placed[source[i]] = True
        if pick_random[pos]:
            i_rand = i + 1
        else:
            i_score = i + 1
    return out


class TextClassifier(BaseEstimator):
    """TF-IDF on character n-grams (and word n-grams) + logistic regression, over normalised text.

    ``fit(texts, labels, unlabeled=...)``: the vocabulary and IDF are learned from the
    labeled texts and the unlabeled ones together (an active learner sees its pool; no
    label is used), the regression from the labeled ones. Labels are any hashable values;
    ``classes_`` holds them sorted. With a single class seen, every text gets it with
    probability 1.

    Parameters: ``C`` inverse regularisation (10: chosen by 5-fold cross-validation on
    four public text sets, two Arabic and two English; docs/benchmarks-quality.md);
    ``ngram_range`` of the character n-grams; ``word_ngram_range`` of the word n-grams (None:
    characters only); ``class_weight`` (None or "balanced"; not the default: on the skewed
    Arabic sets it lifted import order's macro-F1 more than active order's, and pushed accuracy
    below the majority class); ``min_df`` (an n-gram in fewer texts is dropped); ``max_iter``.

    Fitted attributes: ``classes_``, ``vectorizers_``, ``model_`` (None with one class),
    ``columns_`` (the feature columns the regression saw).
    """

    def __init__(self, C: float = 10.0, ngram_range: tuple[int, int] = (2, 5),
                 word_ngram_range: tuple[int, int] | None = (1, 2), class_weight: str | None = None,
                 min_df: int = 2, max_iter: int = 1000) -> None:
        self.C = C
        self.ngram_range = ngram_range
        self.word_ngram_range = word_ngram_range
        self.class_weight = class_weight
        self.min_df = min_df
        self.max_iter = max_iter

    def fit(self, texts: Sequence[str], labels: Sequence[Any], *,
            unlabeled: Sequence[str] = ()) -> TextClassifier:
        if len(texts) != len(labels):
            raise ValueError(f"texts and labels differ in length: {len(texts)} != {len(labels)}")
        self.fit_vocabulary([*texts, *unlabeled])
        return self.fit_features(self.transform(texts), labels)

    def fit_vocabulary(self, texts: Sequence[str]) -> TextClassifier:
        """Learn the n-gram vocabularies and IDF weights (no labels used)."""
        from sklearn.feature_extraction.text import TfidfVectorizer

        # a handful of texts (a new project) would lose most n-grams to min_df: keep them all
        min_df = self.min_df if len(texts) >= 10 * self.min_df else 1
        common = {"sublinear_tf": True, "min_df": min_df, "lowercase": False, "preprocessor": normalize_arabic}
        self.vectorizers_ = [TfidfVectorizer(analyzer="char_wb", ngram_range=tuple(self.ngram_range), **common)]
        if self.word_ngram_range is not None:
            # words and word pairs: negation and set phrases ("not good") that character
            # n-grams within one word cannot see; \w+ keeps Arabic letters and one-letter words
            self.vectorizers_.append(TfidfVectorizer(analyzer="word", ngram_range=tuple(self.word_ngram_range),
                                                     token_pattern=r"(?u)\b\w+\b", **common))
        for vectorizer in self.vectorizers_:
            vectorizer.fit(texts)
        return self

    def transform(self, texts: Sequence[str]) -> Any:
        """The (n, n_features) sparse TF-IDF matrix of ``texts``: each block L2-normalised."""
        from scipy import sparse

        blocks = [v.transform(texts) for v in self.vectorizers_]
        return blocks[0] if len(blocks) == 1 else sparse.hstack(blocks, format="csr")

    def fit_features(self, X: Any, labels: Sequence[Any]) -> TextClassifier:
        """Fit the regression on rows of :meth:`transform` (the vocabulary already learned)."""
        from sklearn.linear_model import LogisticRegression

        if X.shape[0] != len(labels):
            raise ValueError(f"features and labels differ in length: {X.shape[0]} != {len(labels)}")
        if not len(labels):
            raise ValueError("fit needs at least one labeled text")
        if self.C <= 0:
            raise ValueError(f"C must be positive, got {self.C}")
        if self.class_weight not in (None, "balanced"):
            raise ValueError(f"class_weight must be None or 'balanced', got {self.class_weight!r}")
        self.classes_ = np.array(sorted(set(labels)), dtype=object)
        self.model_: Any = None
        # Only the n-grams present in the labeled rows get a weight: under the L2 penalty the
        # others' gradient is zero, so their weights stay exactly 0. Fitting on those columns
        # alone gives the same model in a fraction of the time (20k of 155k columns for 200
        # Arabic tweets). Newton-CG: scipy's L-BFGS-B spends 0.1 s a step on this size.
        self.columns_ = np.flatnonzero(X.getnnz(axis=0))
        if self.classes_.size > 1:
            self.model_ = LogisticRegression(C=self.C, max_iter=self.max_iter, solver="newton-cg",
                                             class_weight=self.class_weight)
            self.model_.fit(X[:, self.columns_], np.asarray(labels, dtype=object))
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """(n, n_classes) probabilities, columns in the order of ``classes_``."""
        return self.predict_proba_features(self.transform(texts))

    def predict_proba_features(self, X: Any) -> np.ndarray:
        if self.model_ is None:
            return np.ones((X.shape[0], 1))
        proba = self.model_.predict_proba(X[:, self.columns_])
        # the regression's classes are the same sorted set; reorder by value all the same
        cols = [list(self.model_.classes_).index(c) for c in self.classes_]
        return np.asarray(proba[:, cols], dtype=np.float64)

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(texts), axis=1)]


def rank_pending(texts: Sequence[str], labels: Sequence[Any], pending: Sequence[str], *,
                 random_share: float = 0.1, random_state: object = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit a :class:`TextClassifier` on the labeled ``texts`` (its vocabulary on ``pending`` too)
    and order ``pending`` for serving.

    Returns, per pending text in its order: its rank in :func:`serving_order` over the margin
    uncertainty (1 first), the most likely label, and that label's probability.
    """
    model = TextClassifier().fit(texts, labels, unlabeled=pending)
    proba = model.predict_proba(pending)
    order = serving_order(uncertainty(proba), random_share=random_share, random_state=random_state)
    ranks = np.empty(len(pending), dtype=np.int64)
    ranks[order] = np.arange(1, len(pending) + 1)
    best = np.argmax(proba, axis=1)
    return ranks, model.classes_[best], proba[np.arange(len(pending)), best]
