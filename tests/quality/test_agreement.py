import numpy as np
import pytest

from qistas.quality import (
    answers_to_reliability_data,
    cohen_kappa,
    fleiss_kappa,
    krippendorff_alpha,
    rating_table,
)

NAN = np.nan
# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", example C:
# 4 observers, 12 units, values 1-5 with missing data.
KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
    [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
]

# Fleiss (1971) as worked on Wikipedia: 10 subjects, 14 raters, 5 categories
FLEISS_TABLE = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


@pytest.mark.parametrize(
    "level, expected",
    [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797)],
)
def test_krippendorff_published_example(level, expected):
    assert krippendorff_alpha(KRIPPENDORFF_2011, level=level) == pytest.approx(expected, abs=5e-4)


def test_krippendorff_binary_example_two_coders():
    # Krippendorff (2011) example A: two observers, binary data, alpha = 0.095
    a = [0, 1, 0, 0, 0, 0, 0, 0, 1, 0]
    b = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]
    assert krippendorff_alpha([a, b]) == pytest.approx(0.095, abs=5e-4)


def test_krippendorff_perfect_and_degenerate():
    assert krippendorff_alpha([[1, 2, 3], [1, 2, 3]]) == 1.0
    assert np.isnan(krippendorff_alpha([[1, 1, 1], [1, 1, 1]]))
    with pytest.raises(ValueError, match="two or more"):
        krippendorff_alpha([[1, NAN], [NAN, 2]])
    with pytest.raises(ValueError, match="level"):
        krippendorff_alpha(KRIPPENDORFF_2011, level="circular")


def test_krippendorff_from_answers_matches_matrix():
    data = np.array(KRIPPENDORFF_2011)
    coder, unit = np.nonzero(~np.isnan(data))
    rebuilt = answers_to_reliability_data(unit, coder, data[coder, unit])
    assert krippendorff_alpha(rebuilt) == pytest.approx(0.743, abs=5e-4)


def test_fleiss_published_example():
    assert fleiss_kappa(FLEISS_TABLE) == pytest.approx(0.210, abs=5e-4)


def test_fleiss_from_answers_and_unequal_counts():
    table = rating_table([0, 0, 0, 1, 1, 2], [1, 1, 1, 0, 1, 0], n_labels=2)
    assert table.tolist() == [[0, 3], [1, 1], [1, 0]]
    # item 2 has one rating and is left out: P = (1 + 0)/2, p = (1/5, 4/5)
    p_e = 0.2**2 + 0.8**2
    assert fleiss_kappa(table) == pytest.approx((0.5 - p_e) / (1 - p_e))
    with pytest.raises(ValueError):
        fleiss_kappa([[1, 0], [0, 1]])


def test_cohen_wikipedia_example_and_missing():
    # 50 items: yes/yes 20, yes/no 5, no/yes 10, no/no 15 -> kappa 0.4
    a = [0] * 25 + [1] * 25
    b = [0] * 20 + [1] * 5 + [0] * 10 + [1] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    # -1 means missing: those items are skipped
    assert cohen_kappa([*a, -1, 0], [*b, 1, -1]) == pytest.approx(0.4)
    assert cohen_kappa([0, 1, 2], [0, 1, 2]) == 1.0
    assert np.isnan(cohen_kappa([1, 1], [1, 1]))


def test_weighted_cohen_kappa_penalises_far_disagreement_more():
    a = [0, 1, 2, 3, 0, 1, 2, 3]
    near = [1, 1, 2, 3, 0, 1, 2, 2]
    far = [3, 1, 2, 3, 0, 1, 2, 0]
    assert cohen_kappa(a, near) == cohen_kappa(a, far)
    assert cohen_kappa(a, near, weights="quadratic") > cohen_kappa(a, far, weights="quadratic")
    assert cohen_kappa(a, near, weights="linear") > cohen_kappa(a, far, weights="linear")
