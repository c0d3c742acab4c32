"""The active-learning text model, its uncertainty and the serving order."""

import numpy as np
import pytest

from qistas.quality.active import TextClassifier, normalize_arabic, rank_pending, serving_order, uncertainty


def test_normalize_arabic_folds_spelling_variants() -> None:
    # diacritics and tatweel go; hamza/madda/wasla alefs fold to bare alef
    assert normalize_arabic("إِسْلَام") == normalize_arabic("اسلام") == "اسلام"
    assert normalize_arabic("أحمد آمن ٱلله") == "احمد امن الله"
    assert normalize_arabic("جـــميل") == "جميل"
    # ta marbuta -> ha, alef maksura and Farsi ya -> ya
    assert normalize_arabic("مدرسة") == normalize_arabic("مدرسه")
    assert normalize_arabic("على") == normalize_arabic("علی") == "علي"
    # other scripts: only lower-cased
    assert normalize_arabic("Hello World") == "hello world"


def test_uncertainty_kinds() -> None:
    p = np.array([[0.9, 0.1, 0.0], [0.4, 0.35, 0.25], [1 / 3, 1 / 3, 1 / 3]])
    margin = uncertainty(p, "margin")
    np.testing.assert_allclose(margin, [0.2, 0.95, 1.0])
    np.testing.assert_allclose(uncertainty(p, "least_confidence"), [0.1, 0.6, 2 / 3])
    ent = uncertainty(p, "entropy")
    assert ent[0] < ent[1] < ent[2]
    np.testing.assert_allclose(ent[2], np.log(3))
    assert np.isfinite(ent).all()  # a zero probability contributes nothing
    with pytest.raises(ValueError, match="uncertainty must be one of"):
        uncertainty(p, "variance")
    np.testing.assert_array_equal(uncertainty(np.ones((2, 1))), [0.0, 0.0])


def test_serving_order_without_random_share_is_by_uncertainty() -> None:
    s = np.array([0.1, 0.9, 0.5, 0.7])
    np.testing.assert_array_equal(serving_order(s, random_share=0.0, random_state=0), [1, 3, 2, 0])


def test_serving_order_is_a_seeded_permutation_with_a_random_share() -> None:
    s = np.linspace(0, 1, 1000)  # index 999 most uncertain
    order = serving_order(s, random_share=0.1, random_state=4)
    assert sorted(order.tolist()) == list(range(1000))
    np.testing.assert_array_equal(order, serving_order(s, random_share=0.1, random_state=4))
    # about 10% of the first 200 positions are out of uncertainty order: taken from the bottom 800
    from_bottom = np.sum(order[:200] < 800)
    assert 8 <= from_bottom <= 35
    # a full random share is a random order, not the uncertainty order
    assert np.sum(serving_order(s, random_share=1.0, random_state=4)[:100] >= 900) < 30
    with pytest.raises(ValueError, match="random_share"):
        serving_order(s, random_share=1.5)


def test_text_classifier_learns_arabic_and_english_words() -> None:
    pos = ["جميل جدا", "رائع ومميز", "أحببته كثيرا", "great film", "lovely and great", "so good"]
    neg = ["سيء جدا", "ممل وسيء", "كرهته كثيرا", "awful film", "boring and awful", "so bad"]
    texts = pos + neg
    labels = ["pos"] * len(pos) + ["neg"] * len(neg)
    model = TextClassifier().fit(texts, labels, unlabeled=["فيلم جميل", "an awful plot"])
    assert list(model.classes_) == ["neg", "pos"]
    # spelling variants of the training words (diacritics, tatweel, hamza) are recognised
    assert list(model.predict(["جَمِيـــل", "احببته", "great", "awful"])) == ["pos", "pos", "pos", "neg"]
    proba = model.predict_proba(["سيء", "رائع"])
    assert proba.shape == (2, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert proba[0, 0] > 0.5 > proba[1, 0]


def test_text_classifier_with_one_class_and_bad_input() -> None:
    model = TextClassifier().fit(["a b", "a c"], ["x", "x"])
    np.testing.assert_array_equal(model.predict_proba(["zzz"]), [[1.0]])
    assert list(model.predict(["q"])) == ["x"]
    with pytest.raises(ValueError, match="differ in length"):
        TextClassifier().fit(["a"], ["x", "y"])
    with pytest.raises(ValueError, match="C must be positive"):
        TextClassifier(C=0).fit(["ab", "cd"], ["x", "y"])


def test_word_ngrams_add_features_and_class_weight_is_checked() -> None:
    texts = ["not good at all", "very good indeed", "not bad really", "very bad indeed"] * 3
    labels = ["neg", "pos", "pos", "neg"] * 3
    chars = TextClassifier(word_ngram_range=None).fit(texts, labels)
    both = TextClassifier().fit(texts, labels)
    assert len(both.vectorizers_) == 2 and len(chars.vectorizers_) == 1
    assert both.transform(["not good"]).shape[1] > chars.transform(["not good"]).shape[1]
    assert "not good" in both.vectorizers_[1].vocabulary_  # a word pair
    balanced = TextClassifier(class_weight="balanced").fit(texts[:5], labels[:5])  # 3 neg, 2 pos
    np.testing.assert_allclose(balanced.predict_proba(["not good"]).sum(), 1.0)
    with pytest.raises(ValueError, match="class_weight"):
        TextClassifier(class_weight="heavy").fit(texts, labels)


def test_rank_pending_orders_the_uncertain_first_and_labels_every_text() -> None:
    texts = ["good great lovely", "awful bad boring", "great good fun", "bad awful dull"]
    labels = ["pos", "neg", "pos", "neg"]
    pending = ["good great", "bad awful", "good bad great awful"]
    ranks, predicted, scores = rank_pending(texts, labels, pending, random_share=0.0, random_state=0)
    assert sorted(ranks.tolist()) == [1, 2, 3] and ranks[2] == 1  # the mixed one first
    assert predicted[0] == "pos" and predicted[1] == "neg"
    assert ((scores >= 0.5) & (scores <= 1)).all()
    again = rank_pending(texts, labels, pending, random_share=0.5, random_state=3)
    assert np.array_equal(again[0], rank_pending(texts, labels, pending, random_share=0.5, random_state=3)[0])
