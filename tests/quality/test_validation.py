import numpy as np
import pytest

from qistas.quality import DawidSkene, MajorityVote
from qistas.quality._validation import check_answers, check_gold


def test_empty_input_is_a_clear_error():
    with pytest.raises(ValueError, match="no answers"):
        MajorityVote().fit([], [], [])
    with pytest.raises(ValueError, match="no answers"):
        DawidSkene().fit(np.array([], int), np.array([], int), np.array([], int))


def test_unequal_lengths():
    with pytest.raises(ValueError, match="equal length"):
        check_answers([0, 1], [0], [0, 1])


def test_negative_and_non_integer_indices():
    with pytest.raises(ValueError, match="non-negative"):
        check_answers([0, -1], [0, 0], [0, 1])
    with pytest.raises(ValueError, match="integer"):
        check_answers([0, 0.5], [0, 0], [0, 1])
    with pytest.raises(ValueError, match="integer"):
        check_answers(["a", "b"], [0, 0], [0, 1])


def test_sizes_default_to_max_index_and_can_be_raised():
    d = check_answers([0, 2], [1, 1], [0, 3])
    assert (d.n_tasks, d.n_workers, d.n_labels) == (3, 2, 4)
    d = check_answers([0, 2], [1, 1], [0, 3], n_tasks=10, n_workers=5, n_labels=6)
    assert (d.n_tasks, d.n_workers, d.n_labels) == (10, 5, 6)
    with pytest.raises(ValueError, match="n_labels"):
        check_answers([0, 2], [1, 1], [0, 3], n_labels=2)


def test_gold_checks():
    assert check_gold(None, 3, 2) is None
    with pytest.raises(ValueError, match="shape"):
        check_gold([0, 1], 3, 2)
    with pytest.raises(ValueError, match="-1 or in"):
        check_gold([0, 1, 2], 3, 2)


def test_bad_parameters_raise_in_fit():
    with pytest.raises(ValueError, match="n_iter"):
        DawidSkene(n_iter=0).fit([0], [0], [0])
    with pytest.raises(ValueError, match="alpha"):
        DawidSkene(alpha=-1).fit([0], [0], [0])
    with pytest.raises(ValueError, match="prior_shrinkage"):
        DawidSkene(prior_shrinkage=2).fit([0], [0], [0])


def test_get_set_params_and_repr():
    est = DawidSkene(n_iter=7)
    assert est.get_params()["n_iter"] == 7
    est.set_params(tol=0.5)
    assert est.tol == 0.5
    assert "n_iter=7" in repr(est)
    with pytest.raises(ValueError, match="unknown parameter"):
        est.set_params(nope=1)
