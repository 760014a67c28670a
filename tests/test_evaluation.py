"""From models to measurements: the importance-weighted bound and the judging of samples."""
from __future__ import annotations

import math

import numpy as np
import pytest

import fakedata
from gencomp_utils import classifiers, evaluation, models


@pytest.fixture(scope="module")
def vae():
    import keras

    keras.utils.set_random_seed(0)
    m = models.ConditionalVAE((12, 12, 1), num_classes=3, latent_dim=4, base_filters=4, seed=0)
    x = np.random.default_rng(0).random((6, 12, 12, 1)).round().astype(np.float32)
    y = np.array([0, 1, 2, 0, 1, 2])
    m.compile(keras.optimizers.Adam(3e-3))
    m.fit(np.repeat(x, 32, 0), np.repeat(y, 32), epochs=4, batch_size=16, verbose=0)
    return m, x, y  # trained a little, so that z matters and q differs from the posterior


def test_iwae_with_one_sample_is_the_elbo_in_expectation(vae):
    m, x, y = vae
    elbo = m.elbo(np.repeat(x, 200, 0), np.repeat(y, 200))  # many draws of the ELBO
    iw1 = evaluation.importance_weighted_bound(m, np.repeat(x, 200, 0), np.repeat(y, 200), k=1)
    assert iw1 == pytest.approx(elbo, abs=0.5)


def test_iwae_tightens_with_more_samples(vae):
    m, x, y = vae
    xs, ys = np.repeat(x, 20, 0), np.repeat(y, 20)
    bounds = [evaluation.importance_weighted_bound(m, xs, ys, k=k, seed=1) for k in (1, 16, 256)]
    assert bounds[0] < bounds[1] < bounds[2]
    # still a bound: no more than log p(x) can be, and log p(x) <= 0 for binary pixels
    assert bounds[2] <= 0


def test_binarised_digits_keep_the_mean_and_are_the_same_every_time():
    grey = np.random.default_rng(0).random((200, 28, 28, 1)).astype(np.float32)
    once = evaluation.binarized(grey, seed=3)
    assert set(np.unique(once)) <= {0.0, 1.0}
    assert np.array_equal(once, evaluation.binarized(grey, seed=3))
    assert abs(once.mean() - grey.mean()) < 0.01  # each pixel is 1 with its intensity's chance
    assert np.corrcoef(once.ravel(), grey.ravel())[0, 1] > 0.5  # dark stays dark, bright bright
    assert not np.array_equal(once, evaluation.binarized(grey, seed=4))


def test_bits_per_dim_of_the_uniform_density_is_8():
    assert evaluation.bits_per_dim(0.0, (32, 32, 3)) == pytest.approx(8.0)
    assert evaluation.bits_per_dim(-(32 * 32 * 3) * math.log(2), (32, 32, 3)) == pytest.approx(9.0)


@pytest.fixture(scope="module")
def digit_judge():
    import keras

    x, y = fakedata.digits(400)
    x = x[..., None].astype(np.float32) / 255
    keras.utils.set_random_seed(0)
    model = classifiers.build_classifier((28, 28, 1), 10, base_filters=4)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x[:300], y[:300], epochs=8, batch_size=32, verbose=0)
    clf = classifiers.Classifier(model, "mnist", [str(d) for d in range(10)], False, 0.0,
                                 "a", "b", None)
    return clf, x[300:], y[300:]


def test_real_images_judged_against_real_images(digit_judge):
    clf, x, y = digit_judge
    assert clf.score(x, y) > 0.9
    a, b = x[:50], x[50:]
    out = evaluation.judge_samples(b, y[50:], a, clf.features(a), clf)
    assert out["fd_domain"] < 0.2 * evaluation.judge_samples(
        np.random.default_rng(0).random(b.shape).astype(np.float32), y[50:], a,
        clf.features(a), clf)["fd_domain"]
    assert out["conditional_accuracy"] > 0.9
    assert out["sharpness_ratio"] == pytest.approx(1.0, rel=0.2)
    assert out["precision"] > 0.5 and out["recall"] > 0.5
    assert out["fid"] is None and out["collapsed"] is False
    assert 0 < out["kid_std"] < abs(out["kid"]) + 0.1  # a spread over subsets, not of one set


def test_grey_samples_are_flagged_and_judged_poor(digit_judge):
    clf, x, y = digit_judge
    grey = np.full_like(x, 0.5)
    out = evaluation.judge_samples(grey, y, x, clf.features(x), clf)
    assert out["collapsed"] is True
    assert out["sharpness_ratio"] < 0.01
    assert out["recall"] < 0.2


def test_progress_hook_records_counts_and_coverage_of_an_unconditional_gan(digit_judge, tmp_path):
    """The engine records the hook's histogram (a list) and the missing conditional accuracy
    (None) of a one-class GAN in its history, and writes them to history.json."""
    import json

    from gencomp_utils import devices, training

    clf, x, y = digit_judge
    hook = evaluation.progress_hook(clf, x, y, num_images=60, seed=0)
    build = lambda: models.ACGAN((28, 28, 1), num_classes=1, latent_dim=4,  # noqa: E731
                                 base_filters=4, projection=False)
    run = training.train(build, (x, np.zeros(len(x), np.int32)), 4, name="uncond",
                         batch_size=16, preset="test", out_dir=tmp_path, eval_every=2,
                         eval_fn=hook, device=devices.choose("float32"), progress=False)
    evals = json.loads((tmp_path / "history.json").read_text())["evals"]
    assert [e["step"] for e in evals] == [0, 2, 4]
    for e in evals:
        m = e["metrics"]
        assert m["conditional_accuracy"] is None
        assert len(m["class_counts"]) == 10 and sum(m["class_counts"]) == 60
        assert 0.0 <= m["coverage"] <= 1.0 and m["fd_domain"] > 0
        missing = [c for c in range(10) if m["vanished_classes"] >> c & 1]
        assert missing == [c for c in range(10) if m["class_counts"][c] < 60 / 10 / 4]
    assert run.history["evals"][-1]["metrics"] == evals[-1]["metrics"]
