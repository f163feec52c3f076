import numpy as np
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score, f1_score, precision_recall_fscore_support
from sklearn.metrics import confusion_matrix as sk_confusion_matrix
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_confusion_matrix, multiclass_f1_score

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


def test_against_scikit_learn_and_torchmetrics():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 8, 500)
    y_pred = np.where(rng.random(500) < 0.6, y_true, rng.integers(0, 8, 500))
    names = tuple("abcdefgh")
    m = summarize(confusion_matrix(y_true, y_pred, 8), names)
    np.testing.assert_array_equal(m["confusion_matrix"], sk_confusion_matrix(y_true, y_pred, labels=range(8)))
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    assert m["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    precision, recall, _, _ = precision_recall_fscore_support(y_true, y_pred, labels=range(8), zero_division=0)
    assert [m["per_class"][n]["precision"] for n in names] == pytest.approx(precision)
    assert [m["per_class"][n]["recall"] for n in names] == pytest.approx(recall)
    t, p = torch.from_numpy(y_true), torch.from_numpy(y_pred)
    assert m["accuracy"] == pytest.approx(multiclass_accuracy(p, t, 8, average="micro").item())
    assert m["balanced_accuracy"] == pytest.approx(multiclass_accuracy(p, t, 8, average="macro").item())
    assert m["macro_f1"] == pytest.approx(multiclass_f1_score(p, t, 8, average="macro").item())
    np.testing.assert_array_equal(m["confusion_matrix"], multiclass_confusion_matrix(p, t, 8).numpy())


def test_absent_class_is_left_out_of_the_averages():
    m = summarize(confusion_matrix([0, 0, 1], [0, 1, 1], 3), NAMES)
    assert m["balanced_accuracy"] == pytest.approx((0.5 + 1.0) / 2)
    assert m["per_class"]["c"]["support"] == 0


def test_accuracy_by_group_orders_numerically():
    result = accuracy_by_group([0, 1, 1, 0], [0, 0, 1, 0], [23, 23, 3, 3])
    assert list(result) == ["3", "23"] and result == {"3": 1.0, "23": 0.5}
