"""The domain classifier: build, train on a tiny split, cache, judge generated samples."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from gencomp_utils import classifiers  # noqa: E402


@pytest.mark.parametrize("shape, outputs", [((16, 16, 1), 10), ((28, 28, 1), 10),
                                            ((32, 32, 3), 10), ((64, 64, 3), 5)])
def test_classifier_scales_with_image_size(shape, outputs):
    model = classifiers.build_classifier(shape, outputs, base_filters=4)
    assert model(np.zeros((2,) + shape, "float32")).shape == (2, outputs)


def test_train_cache_and_judge_digits():
    kw = dict(train_split="test[:512]", eval_split="test[512:768]", steps=40, batch_size=32,
              image_size=16, base_filters=4)
    clf = classifiers.digit_classifier(**kw)
    assert clf.how == "trained" and 0.0 <= clf.accuracy <= 1.0
    assert clf.path.is_file() and clf.eval_split == "test[512:768]"
    assert clf.class_names == [str(d) for d in range(10)]
    again = classifiers.digit_classifier(**kw)
    assert again.how == "loaded" and again.accuracy == clf.accuracy
    x = np.random.default_rng(0).random((6, 16, 16, 1)).astype("float32")
    np.testing.assert_allclose(again.predict_proba(x), clf.predict_proba(x), atol=1e-6)
    with pytest.raises(ValueError, match="input shape"):
        clf.predict(np.zeros((2, 28, 28, 1)))


def test_a_cached_classifier_that_cannot_be_loaded_is_trained_again(capsys):
    """A file cut short, or written by a Keras that this one cannot read: a message, not a crash."""
    kw = dict(train_split="test[:256]", eval_split="test[256:384]", steps=5, batch_size=32,
              image_size=16, base_filters=4, seed=7)
    clf = classifiers.digit_classifier(**kw)
    assert json.loads(clf.path.with_suffix(".json").read_text())["keras"] == keras.__version__
    clf.path.write_bytes(clf.path.read_bytes()[:1000])
    capsys.readouterr()
    again = classifiers.digit_classifier(**kw)
    assert again.how == "trained" and "cannot be loaded" in capsys.readouterr().out
    assert classifiers.digit_classifier(**kw).how == "loaded"  # the new file is whole


FOREIGN_SETTINGS = dict(train_split="test[:512]", eval_split="test[512:768]", steps=5,
                        batch_size=32, image_size=16, base_filters=4, seed=3)


@pytest.mark.skipif(not os.environ.get("GENCOMP_FOREIGN_CACHE"),
                    reason="needs GENCOMP_FOREIGN_CACHE: a cache written by another environment")
def test_a_classifier_cached_by_another_environment_is_loaded_or_trained_again(capsys):
    """CI's second environment (Colab's Keras) meets a classifier that the first one cached with
    ``FOREIGN_SETTINGS``, as a cache kept on Drive across a Colab upgrade would: it loads it or
    trains it again with a message, never crashes."""
    import shutil

    from gencomp_utils import paths

    foreign = Path(os.environ["GENCOMP_FOREIGN_CACHE"]) / "classifiers"
    (record,) = [json.loads(f.read_text()) for f in foreign.glob("mnist-*.json")]
    assert record["keras"] != keras.__version__, "the cache must come from another Keras"
    shutil.copytree(foreign, paths.cache_dir("classifiers"), dirs_exist_ok=True)
    clf = classifiers.digit_classifier(**FOREIGN_SETTINGS)
    out = capsys.readouterr().out
    assert clf.how == "loaded" or (clf.how == "trained" and "cannot be loaded" in out
                                   and f"written by Keras {record['keras']}" in out), out
    assert clf.predict(np.zeros((2, 16, 16, 1), "float32")).shape == (2,)


def test_conditional_accuracy_counts_per_class():
    class Fixed(classifiers.Classifier):
        def predict(self, images):
            return np.array([0, 0, 1, 2, 2, 2])

    clf = Fixed(None, "mnist", [str(d) for d in range(10)], False, 1.0, "a", "b", None)
    acc = clf.conditional_accuracy(np.zeros((6, 4, 4, 1)), [0, 0, 1, 1, 2, 2])
    assert acc.overall == pytest.approx(5 / 6)
    assert acc.per_class == {"0": 1.0, "1": 0.5, "2": 1.0}
    assert acc.counts == {"0": 2, "1": 2, "2": 2}
    assert acc.worst == ("1", 0.5)
    assert "0.833 overall" in str(acc)


def test_multi_label_accuracy_for_attributes():
    class Fixed(classifiers.Classifier):
        def predict(self, images):
            return np.array([[1, 0], [1, 1]])

    clf = Fixed(None, "celeba", ["Male", "Smiling"], True, 1.0, "a", "b", None)
    acc = clf.conditional_accuracy(np.zeros((2, 4, 4, 3)), np.array([[1, 0], [0, 1]]))
    assert acc.per_class == {"Male": 0.5, "Smiling": 1.0} and acc.overall == 0.75


def test_balanced_accuracy_gives_no_credit_for_denying_a_rare_attribute():
    truth = np.array([1] * 5 + [0] * 95)  # a moustache on 5 faces of 100
    assert classifiers.balanced_accuracy(truth == 0, truth) == 0.5  # "no" to all: 95% right
    assert classifiers.balanced_accuracy(np.ones(100, bool), truth) == 1.0
    assert classifiers.balanced_accuracy(np.arange(100) >= 3, truth) == pytest.approx((0.4 + 1) / 2)


def test_the_balanced_loss_is_least_where_yes_and_no_weigh_alike():
    """One logit c for every face of an attribute that 10% have: the plain cross-entropy is
    least at logit(0.1) (answer "no"), the balanced one at c = 0."""
    y = np.array([[1.0]] * 10 + [[0.0]] * 90, np.float32)
    loss = classifiers.balanced_binary_crossentropy([0.1])
    grid = np.linspace(-5, 5, 1001)
    values = [float(loss(y, np.full_like(y, c))) for c in grid]
    assert abs(grid[int(np.argmin(values))]) < 0.011
    plain = [float(np.mean(y * np.logaddexp(0, -c) + (1 - y) * np.logaddexp(0, c))) for c in grid]
    assert grid[int(np.argmin(plain))] == pytest.approx(np.log(0.1 / 0.9), abs=0.011)


def test_bad_requests_are_refused():
    with pytest.raises(ValueError, match="Unknown data set"):
        classifiers.get_classifier("svhn")
    with pytest.raises(ValueError, match="steps"):
        classifiers.get_classifier("mnist", steps=0)


def test_attribute_view_reads_one_column_of_a_multi_label_classifier():
    class Fixed(classifiers.Classifier):
        def predict_proba(self, images, batch_size=500):
            return np.array([[0.9, 0.2], [0.1, 0.7], [0.6, 0.4]])

        def features(self, images, batch_size=500):
            return np.ones((len(images), 3))

    parent = Fixed(None, "celeba", ["Male", "Smiling"], True, 0.8, "a", "b", None,
                   info={"per_class": {"Male": 0.9, "Smiling": 0.7}})
    male = parent.attribute("Male")
    assert male.class_names == ["female", "male"] and not male.multi_label
    assert male.accuracy == 0.9 and parent.attribute("Smiling").accuracy == 0.7
    np.testing.assert_array_equal(male.predict(np.zeros((3, 4, 4, 3))), [1, 0, 1])
    np.testing.assert_array_equal(parent.attribute("Smiling").predict(np.zeros((3, 4, 4, 3))),
                                  [0, 1, 0])
    assert male.conditional_accuracy(np.zeros((3, 4, 4, 3)), [1, 0, 0]).overall == \
        pytest.approx(2 / 3)
    assert male.features(np.zeros((2, 4, 4, 3))).shape == (2, 3)
    with pytest.raises(ValueError, match="Young"):
        parent.attribute("Young")


def test_celeba_classifier_streams_from_files_and_views_each_attribute(monkeypatch):
    from gencomp_utils import training

    def no_arrays(self):  # a CelebA split must never be loaded as one array
        raise AssertionError("CelebA was loaded as an array")

    monkeypatch.setattr(training.Data, "arrays", no_arrays)
    clf = classifiers.get_classifier("celeba", "train[:64]", "train[64:96]", steps=4,
                                     batch_size=16, image_size=16, base_filters=4,
                                     attribute=["Male", "Smiling"])
    assert clf.multi_label and clf.class_names == ["Male", "Smiling"]
    assert clf.info["eval_images"] == 32 and 0 <= clf.accuracy <= 1
    male = clf.attribute("Male")
    assert male.class_names == ["female", "male"] and male.accuracy == clf.info["per_class"]["Male"]
    x = np.random.default_rng(1).random((3, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(male.predict_proba(x)[:, 1], clf.predict_proba(x)[:, 0], atol=1e-6)
