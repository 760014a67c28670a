"""Metrics: each checked against an independent computation, and against a wrong variant."""
from __future__ import annotations

import math

import numpy as np
import pytest

import fakedata
from gencomp_utils import metrics


def _with_stats(rng, n, mu, sigma):
    """Samples whose sample mean and (unbiased) covariance are exactly mu and sigma."""
    d = len(mu)
    x = rng.normal(size=(n, d))
    x -= x.mean(0)
    c = np.cov(x, rowvar=False)
    w, v = np.linalg.eigh(c)
    x = x @ (v / np.sqrt(w)) @ v.T  # whitened: covariance exactly I
    return x @ np.linalg.cholesky(sigma).T + mu


def _closed_form(mu1, s1, mu2, s2, factor=2.0):
    # tr sqrt(S1 S2) from the (real, non-negative) eigenvalues of the product: another route.
    cross = np.sqrt(np.clip(np.linalg.eigvals(s1 @ s2).real, 0, None)).sum()
    return np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - factor * cross


def _random_spd(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


@pytest.mark.parametrize("d", [2, 8, 32])
def test_fd_matches_the_closed_form_for_two_gaussians(d):
    rng = np.random.default_rng(d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = _random_spd(rng, d), _random_spd(rng, d)
    a, b = _with_stats(rng, 500, mu1, s1), _with_stats(rng, 400, mu2, s2)
    expected = _closed_form(mu1, s1, mu2, s2)
    assert metrics.frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)
    # the same check rejects a formula with the cross term's factor 2 dropped
    wrong = _closed_form(mu1, s1, mu2, s2, factor=1.0)
    assert abs(metrics.frechet_distance(a, b) - wrong) > 1e-3 * abs(expected)


def test_fd_of_a_set_with_itself_is_zero():
    x = np.random.default_rng(0).normal(size=(300, 16))
    assert metrics.frechet_distance(x, x) == pytest.approx(0.0, abs=1e-9)


def test_fd_is_real_and_finite_on_singular_covariances():
    rng = np.random.default_rng(1)
    low_rank = rng.normal(size=(20, 3)) @ rng.normal(size=(3, 64))  # rank 3 in 64-D
    other = rng.normal(size=(20, 64)) * 1e-9
    fd = metrics.frechet_distance(low_rank, other)
    assert isinstance(fd, float) and np.isfinite(fd) and fd >= 0


def test_fd_grows_monotonically_with_noise():
    x, _ = fakedata.digits(600)
    images = x.reshape(600, -1) / 255.0
    proj = np.random.default_rng(0).normal(size=(images.shape[1], 32)) / 28
    real, base = images[:300], images[300:]
    rng = np.random.default_rng(2)
    fds = [metrics.frechet_distance(real @ proj, (base + s * rng.normal(size=base.shape)) @ proj)
           for s in (0.0, 0.05, 0.1, 0.2, 0.4)]
    assert all(a < b for a, b in zip(fds, fds[1:])), fds


def test_kid_is_unbiased_and_a_biased_variant_is_not():
    rng = np.random.default_rng(3)
    repeats, m, d = 60, 40, 8
    unbiased, biased = [], []
    for _ in range(repeats):
        a, b = rng.normal(size=(m, d)), rng.normal(size=(m, d))
        unbiased.append(metrics.kernel_inception_distance(a, b, subsets=1, subset_size=m)[0])
        k = lambda x, y: (x @ y.T / d + 1) ** 3
        biased.append(k(a, a).mean() + k(b, b).mean() - 2 * k(a, b).mean())  # diagonal kept
    se = np.std(unbiased) / np.sqrt(repeats)
    assert abs(np.mean(unbiased)) < 3 * se
    assert np.mean(biased) > 3 * np.std(biased) / np.sqrt(repeats)


def test_kid_separates_different_distributions():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(200, 8)), rng.normal(loc=0.5, size=(200, 8))
    same, _ = metrics.kernel_inception_distance(a, rng.normal(size=(200, 8)), subsets=5, subset_size=100)
    diff, _ = metrics.kernel_inception_distance(a, b, subsets=5, subset_size=100)
    assert diff > 10 * abs(same)


def test_precision_recall():
    rng = np.random.default_rng(5)
    modes = rng.normal(scale=20, size=(4, 2))
    real = np.concatenate([m + rng.normal(size=(100, 2)) for m in modes])
    assert metrics.precision_recall(real, real) == (1.0, 1.0)
    far = real + 1000.0
    assert metrics.precision_recall(real, far) == (0.0, 0.0)
    half = np.concatenate([m + rng.normal(size=(200, 2)) for m in modes[:2]])  # 2 of 4 modes
    p, r = metrics.precision_recall(real, half)
    assert p > 0.95 and 0.4 < r < 0.6


def test_sharpness_is_lower_for_a_blurred_copy():
    x, _ = fakedata.digits(50)
    x = x[..., None] / 255.0
    blurred = (x + np.roll(x, 1, 1) + np.roll(x, -1, 1) + np.roll(x, 1, 2) + np.roll(x, -1, 2)) / 5
    assert metrics.sharpness_ratio(blurred, x) < 0.5
    assert metrics.sharpness_ratio(x, x) == pytest.approx(1.0)


def test_collapse_detection():
    x, _ = fakedata.digits(64)
    real = x[..., None] / 255.0
    grey = np.full_like(real, 0.5) + np.random.default_rng(0).normal(scale=0.001, size=real.shape)
    repeated = np.repeat(real[:1], 64, axis=0)
    assert not metrics.is_collapsed(real)
    assert metrics.is_collapsed(grey)
    assert metrics.is_collapsed(repeated)


def test_oscillation_and_threshold():
    assert metrics.oscillation([5, 1, 1, 1, 1, 1], last=5) == pytest.approx(0.0, abs=1e-12)
    assert metrics.oscillation([30, 10, 8, 6, 4, 2], last=5) == pytest.approx(0.0, abs=1e-12)
    assert metrics.oscillation([1, 3, 1, 3], last=4) == pytest.approx(np.sqrt(0.8))
    assert metrics.first_reaching([9, 7, 4, 5], [100, 200, 300, 400], threshold=5) == 300
    assert metrics.first_reaching([9, 7], [1, 2], threshold=5) is None
    assert metrics.first_reaching([0.2, 0.95], [1, 2], 0.9, lower_is_better=False) == 2
    # held: a lucky evaluation followed by a fall does not count (a GAN on MNIST: 0.97 at step
    # 200, 0.68 at step 600, 0.9 and above from step 1,300)
    acc = [0.09, 0.97, 0.73, 0.68, 0.90, 0.97, 0.98]
    assert metrics.first_held(acc, [0, 200, 400, 600, 1300, 1400, 2000], 0.9, False) == 1300
    assert metrics.first_held([0.95, 0.85], [1, 2], 0.9, lower_is_better=False) is None
    assert metrics.first_held([9, 4, 3], [1, 2, 3], threshold=5) == 2


@pytest.mark.parametrize("args,expected", [
    ((10.0, 1.0, 5.0, 1.0), "holds"),              # clear win: difference 5 > 2 x 1
    ((5.0, 1.0, 10.0, 1.0), "does not hold"),      # clear loss
    ((6.0, 1.5, 5.0, 1.0), "inconclusive"),        # overlap: 1 <= 2 x 1.5
])
def test_claim_verdicts(args, expected):
    assert metrics.verdict(*args) == expected
    flipped = {"holds": "does not hold", "does not hold": "holds"}.get(expected, expected)
    assert metrics.verdict(*args, higher_supports=False) == flipped
    assert metrics.verdict(*args, evidence=False) == "not evidence"


def test_bad_features_are_rejected():
    with pytest.raises(ValueError, match="2-D"):
        metrics.frechet_distance(np.zeros(5), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="NaN"):
        metrics.frechet_distance(np.full((3, 2), np.nan), np.zeros((3, 2)))


def test_inception_input_and_the_skip_without_weights(monkeypatch):
    import keras

    x = metrics.inception_resize(np.random.default_rng(0).random((2, 28, 28, 1)))
    assert x.shape == (2, 299, 299, 3)
    assert -1.0 <= float(np.min(x)) and float(np.max(x)) <= 1.0

    def offline(**kwargs):
        assert kwargs["weights"] == "imagenet"  # never random weights
        raise Exception("URL fetch failure: no network")

    monkeypatch.setattr(keras.applications, "InceptionV3", offline)
    model, why = metrics.inception_model()
    assert model is None and why.startswith("FID skipped") and "no network" in why


def test_mann_whitney_exact_on_hand_worked_cases():
    # 3 against 3, fully separated: U = 0; of the C(6, 3) = 20 splits, 2 are as extreme (U = 0
    # or 9), so p = 2/20
    assert metrics.mann_whitney([1, 2, 3], [4, 5, 6]) == (0.0, 0.1)
    # 5 against 5, one crossing (6 > 5): U = 1. Splits at least as far from 12.5: U in {0, 1,
    # 24, 25}, one split each, so p = 4/252
    u, p = metrics.mann_whitney([1, 2, 3, 4, 6], [5, 7, 8, 9, 10])
    assert u == 1.0 and p == pytest.approx(4 / 252)
    assert metrics.mann_whitney([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])[1] == pytest.approx(2 / 252)
    # ties count 1/2 in U, and all-equal groups are as far from extreme as can be
    assert metrics.mann_whitney([1, 1], [1, 1]) == (2.0, 1.0)
    assert metrics.mann_whitney([2, 1], [1, 0])[0] == 3.5
    # many seeds: counted, not listed (C(40, 20) = 1.4e11 splits), 2 of them as extreme
    assert metrics.mann_whitney(range(20), range(20, 40))[1] == pytest.approx(2 / math.comb(40, 20))


def test_mann_whitney_counts_the_splits_that_enumeration_lists():
    from itertools import combinations

    def enumerated(a, b):  # every split of the pooled values, as the docstring defines p
        pooled = np.concatenate([a, b])
        wins = (pooled[:, None] > pooled[None, :]) + 0.5 * (pooled[:, None] == pooled[None, :])
        u = [wins[np.ix_(g, [i for i in range(len(pooled)) if i not in g])].sum()
             for g in combinations(range(len(pooled)), len(a))]
        far = np.abs(np.array(u) - len(a) * len(b) / 2)
        return u[0], np.mean(far >= far[0] - 1e-9)

    rng = np.random.default_rng(0)
    for size_a, size_b in [(5, 5), (3, 6), (6, 2), (4, 4)]:
        for draw in (lambda n: rng.normal(size=n), lambda n: rng.integers(0, 3, n)):  # ties
            a, b = np.asarray(draw(size_a), float), np.asarray(draw(size_b), float)
            assert metrics.mann_whitney(a, b) == pytest.approx(enumerated(a, b))


def test_the_rule_over_seeds():
    low, high = [1.0, 1.1, 1.2, 1.3, 1.4], [2.0, 2.1, 2.2, 2.3, 2.4]
    assert metrics.seed_verdict(high, low)["verdict"] == "holds"
    assert metrics.seed_verdict(low, high)["verdict"] == "does not hold"
    assert metrics.seed_verdict(low, high, higher_supports=False)["verdict"] == "holds"
    mixed = metrics.seed_verdict([1.0, 2.0, 1.2, 2.2, 1.4], [1.1, 2.1, 1.3, 2.3, 1.5])
    assert mixed["verdict"] == "inconclusive" and mixed["p"] > 0.05
    # U = 3 (5 > 4, 7 > 4, 7 > 6); 7 of the 252 splits have U <= 3, and 7 have U >= 22, so
    # p = 14/252 = 0.056 > 0.05: one split too many for a verdict
    near = metrics.seed_verdict([1, 2, 3, 5, 7], [4, 6, 8, 9, 10], higher_supports=False)
    assert near["verdict"] == "inconclusive" and near["p"] == pytest.approx(14 / 252)
    # the direction is U's, not the medians': here both medians are infinite (never reached)
    slow = metrics.seed_verdict([np.inf] * 5, [np.inf, np.inf, np.inf, 5, 6], higher_supports=False)
    assert slow["p"] > 0.05 and slow["verdict"] == "inconclusive"
    assert slow["two_spreads"] == "inconclusive"
    # medians 3 > 2, yet most pairs say lower (U = 9 < 12.5): U decides, at any alpha
    assert metrics.seed_verdict([0, 0, 3, 3, 3], [2, 2, 2, 9, 9], alpha=1.0)["verdict"] == \
        "does not hold"
    never = metrics.seed_verdict([1, 2, 3, 4, 5], [np.inf] * 5, higher_supports=False)
    assert never["verdict"] == "holds" and never["p"] == pytest.approx(2 / 252)
    few = metrics.seed_verdict(high[:3], low[:3])
    assert few["verdict"] == "inconclusive (3 seeds; 5 needed)" and few["two_spreads"] == "holds"
    assert metrics.seed_verdict([0.95] * 5, bar=0.9)["verdict"] == "holds"  # a fixed bar
    assert metrics.seed_verdict([0.95] * 4 + [0.85], bar=0.9)["verdict"] == "inconclusive"
    assert metrics.seed_verdict([0.95] * 4 + [0.9], bar=0.9)["verdict"] == "inconclusive"  # strictly
    assert metrics.seed_verdict([0.5] * 5, bar=0.9)["verdict"] == "does not hold"
    # one seed of the other model left is one seed, not a bar
    assert metrics.seed_verdict(high, [1.0, None, None, None, np.nan])["verdict"] == \
        "inconclusive (1 seed; 5 needed)"


def test_vanished_classes_and_collapse_events():
    even = np.repeat(np.arange(10), 10)
    assert metrics.vanished_classes(even, 10) == 0
    assert metrics.vanished_classes(np.where(even == 3, 4, even), 10) == 1 << 3  # no 3 drawn
    assert metrics.vanished_classes(np.r_[even[even != 3], [3, 3]], 10) == 1 << 3  # 2 of 92
    assert metrics.vanished_classes(np.r_[even[even != 3], [3, 3, 3]], 10) == 0
    assert metrics.vanished_classes(np.zeros(100), 2) == 0b10  # only one of two answers
    # the first half does not count (an untrained model's samples are alike by nature)
    assert metrics.collapse_events([True, True, False, False], [0, 0, 0, 0]) == 0
    no = [False] * 6
    # class 3 drawn at evaluations 1-2, missing at 3 and 5: two events in the second half
    assert metrics.collapse_events(no, [0b1111, 0, 0, 0b1000, 0, 0b1000]) == 2
    # class 3 never drawn after the untrained model's evaluation: blur, not a loss
    assert metrics.collapse_events(no, [0, 0b1000, 0b1000, 0b1000, 0b1000, 0b1000]) == 0
    assert metrics.collapse_events([False, False, False, True, False, True],
                                   [None] * 6) == 2
    assert metrics.collapse_events([], []) == 0


def test_density_and_coverage():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(500, 8))
    density, coverage = metrics.density_coverage(real, rng.normal(size=(500, 8)))
    assert 0.85 < density < 1.15 and coverage > 0.9  # the same distribution
    assert metrics.density_coverage(real, real + 100) == (0.0, 0.0)  # nowhere near
    # the real samples themselves: each ball holds its centre and, strictly inside (Naeem et
    # al.'s "<"), its k - 1 nearest others; with "<=" also the k-th, and density is 1.2
    assert metrics.density_coverage(real, real) == (1.0, 1.0)
    one_mode = np.repeat(real[:1], 100, axis=0) + 0.01 * rng.normal(size=(100, 8))
    density, coverage = metrics.density_coverage(real, one_mode)
    assert coverage < 0.05  # one region reached: mode collapse


def test_log_oscillation_is_scale_free_and_ignores_a_steady_trend():
    steady = 10 * np.exp(-0.3 * np.arange(10))
    levelling = 3 + 40 * np.exp(-np.arange(10))  # fast, then flat: still no oscillation
    swinging = steady * np.exp(0.5 * np.array([0, 0, 0, 0, 0, 1, -1, 1, -1, 1]))
    worsening = np.concatenate([steady[:5], steady[4] * np.exp(0.5 * np.arange(1, 6))])
    assert metrics.log_oscillation(steady) < 1e-9 and metrics.log_oscillation(levelling) < 1e-9
    assert metrics.log_oscillation(swinging) > 0.3
    assert metrics.log_oscillation(worsening) > 0.3  # turning worse is not a trend to forgive
    assert metrics.log_oscillation(100 * swinging) == pytest.approx(metrics.log_oscillation(swinging))
    assert metrics.log_oscillation([5.0, 3.0, 4.0, 3.0]) is None  # too few evaluations
    assert metrics.log_oscillation([9, 8, 7, 6, None, 5, np.nan, 4, 3]) < 1e-9  # gaps dropped
