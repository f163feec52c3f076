"""Classification metrics, checked against small cases computed by hand."""

import pytest

from emovid.metrics import accuracy_by_group, confusion_matrix, summarize

NAMES = ("a", "b", "c")


def test_hand_computed_confusion_matrix():
    # true: a a a a b b c c c c ; pred: a a b c b b c c a a
    y_true = [0, 0, 0, 0, 1, 1, 2, 2, 2, 2]
    y_pred = [0, 0, 1, 2, 1, 1, 2, 2, 0, 0]
    matrix = confusion_matrix(y_true, y_pred, 3)
    assert matrix.tolist() == [[2, 1, 1], [0, 2, 0], [2, 0, 2]]
    m = summarize(matrix, NAMES)
    assert m["accuracy"] == pytest.approx(6 / 10)
    assert m["balanced_accuracy"] == pytest.approx((2 / 4 + 2 / 2 + 2 / 4) / 3)
    # precision a = 2/4, b = 2/3, c = 2/3; recall a = 1/2, b = 1, c = 1/2
    assert m["per_class"]["b"] == {"precision": pytest.approx(2 / 3), "recall": 1.0, "f1": pytest.approx(0.8),
                                   "support": 2}
    f1 = [0.5, 0.8, 2 * (2 / 3) * 0.5 / (2 / 3 + 0.5)]
    assert m["macro_f1"] == pytest.approx(sum(f1) / 3)
    assert m["top_confusions"][0] == {"true": "c", "predicted": "a", "count": 2}
    assert len(m["top_confusions"]) == 3


def test_class_predicted_but_never_true_and_class_never_predicted():
    # true: a a b b ; pred: a c a b. c is predicted once but never true, so it counts in no average.
    matrix = confusion_matrix([0, 0, 1, 1], [0, 2, 0, 1], 3)
    assert matrix.tolist() == [[1, 0, 1], [1, 1, 0], [0, 0, 0]]
    m = summarize(matrix, NAMES)
    assert m["accuracy"] == pytest.approx(2 / 4)
    # precision a = 1/2, b = 1/1, c = 0/1; recall a = 1/2, b = 1/2; F1 a = 1/2, b = 2/3, c = 0
    assert m["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert m["per_class"]["b"]["f1"] == pytest.approx(2 / 3)
    assert m["balanced_accuracy"] == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert m["macro_f1"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert m["top_confusions"] == [{"true": "a", "predicted": "c", "count": 1},
                                   {"true": "b", "predicted": "a", "count": 1}]
    never_predicted = summarize(confusion_matrix([0, 1, 2], [0, 0, 0], 3), NAMES)["per_class"]["b"]
    assert never_predicted == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}  # 0, not NaN


def test_perfect_and_empty_predictions():
    m = summarize(confusion_matrix([0, 1, 2, 2], [0, 1, 2, 2], 3), NAMES)
    assert (m["accuracy"], m["balanced_accuracy"], m["macro_f1"], m["top_confusions"]) == (1.0, 1.0, 1.0, [])
    m = summarize(confusion_matrix([], [], 3), NAMES)
    assert (m["num_samples"], m["accuracy"], m["balanced_accuracy"], m["macro_f1"]) == (0, 0.0, 0.0, 0.0)


def test_absent_class_is_left_out_of_the_averages():
    m = summarize(confusion_matrix([0, 0, 1], [0, 1, 1], 3), NAMES)
    assert m["balanced_accuracy"] == pytest.approx((0.5 + 1.0) / 2)
    assert m["per_class"]["c"]["support"] == 0


def test_accuracy_by_group_orders_numerically():
    result = accuracy_by_group([0, 1, 1, 0], [0, 0, 1, 0], [23, 23, 3, 3])
    assert list(result) == ["3", "23"] and result == {"3": 1.0, "23": 0.5}
