"""Measures of generated images: Fréchet distance, KID, precision and recall, sharpness, collapse,
stability, and the verdict logic of the claims table.

Everything here works on plain NumPy arrays (features or images) and is computed in float64.
Feature extractors (InceptionV3, the project's domain classifiers) turn images into features.

Pitfalls worth knowing when reading these numbers:

- FD and KID depend on the sample size: FD is biased upwards for small samples (compare only
  numbers computed with the same number of images); KID is unbiased, so it suits small samples.
- FID proper means InceptionV3 pool features of images resized to 299x299 with antialiasing;
  a different resize (e.g. nearest neighbour) or another network gives different numbers.
  Features from the project's own classifiers are reported as "FD (domain classifier)", never FID.
"""
from __future__ import annotations

import numpy as np

# --------------------------------------------------------------------------- distances


def _as_features(x, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (samples, features); got shape {x.shape}.")
    if len(x) < 2:
        raise ValueError(f"{name} needs at least 2 samples; got {len(x)}.")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf.")
    return x


def _sqrt_psd(m: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (eigenvalues clipped at 0)."""
    w, v = np.linalg.eigh((m + m.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance_from_stats(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2).

    ``|mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1^1/2 S2 S1^1/2)^1/2)``, computed with symmetric
    eigen-decompositions, so it stays real and finite for singular or near-singular covariances.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    r1 = _sqrt_psd(s1)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(r1 @ s2 @ r1), 0, None)).sum()
    fd = float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * cross)
    return max(fd, 0.0)


def feature_stats(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of ``(samples, features)``."""
    f = _as_features(features, "features")
    return f.mean(axis=0), np.atleast_2d(np.cov(f, rowvar=False))


def frechet_distance(features_a, features_b) -> float:
    """Fréchet distance between the Gaussians fitted to two feature sets.

    Args:
        features_a, features_b: ``(samples, features)`` arrays, e.g. real and generated.

    Returns:
        The distance (>= 0; 0 for identical sets).
    """
    return frechet_distance_from_stats(*feature_stats(features_a), *feature_stats(features_b))


def kernel_inception_distance(features_a, features_b, subsets: int = 10,
                              subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Kernel distance (KID): the unbiased squared MMD with the kernel ``(x.y / d + 1)^3``.

    Averaged over ``subsets`` random subsets of ``subset_size`` samples (all samples if fewer).

    Returns:
        ``(mean, standard deviation)`` over the subsets.
    """
    a = _as_features(features_a, "features_a")
    b = _as_features(features_b, "features_b")
    d = a.shape[1]
    m = min(subset_size, len(a), len(b))
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        kxx = (x @ x.T / d + 1) ** 3
        kyy = (y @ y.T / d + 1) ** 3
        kxy = (x @ y.T / d + 1) ** 3
        mmd = ((kxx.sum() - np.trace(kxx)) / (m * (m - 1))
               + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean())
        values.append(mmd)
    return float(np.mean(values)), float(np.std(values))


def _pairwise_sq(a, b):
    return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T, 0)


def _knn_radii(x, k):
    d = _pairwise_sq(x, x)
    return np.sqrt(np.partition(d, k, axis=1)[:, k])  # index 0 is the point itself


def precision_recall(real_features, fake_features, k: int = 3) -> tuple[float, float]:
    """Precision and recall of generated samples (Kynkäänniemi et al., 2019).

    Each set's manifold is the union of balls around its points with radius the distance to
    the k-th nearest neighbour. Precision: the share of generated samples inside the real
    manifold (are samples realistic?). Recall: the share of real samples inside the generated
    manifold (is the data's variety covered?).

    Returns:
        ``(precision, recall)``, each in [0, 1].
    """
    real = _as_features(real_features, "real_features")
    fake = _as_features(fake_features, "fake_features")
    if k >= min(len(real), len(fake)):
        raise ValueError(f"k={k} needs more than {k} samples in each set.")
    r_real, r_fake = _knn_radii(real, k), _knn_radii(fake, k)
    d = np.sqrt(_pairwise_sq(fake, real))  # (fake, real)
    precision = float((d <= r_real[None, :]).any(axis=1).mean())
    recall = float((d.T <= r_fake[None, :]).any(axis=1).mean())
    return precision, recall


# --------------------------------------------------------------------------- images


def _grey(images) -> np.ndarray:
    x = np.asarray(images, np.float64)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise ValueError(f"images must be (N, H, W, C); got shape {x.shape}.")
    return x.mean(axis=-1)


def laplacian_variance(images) -> np.ndarray:
    """Variance of the 4-neighbour Laplacian of each image (grey): higher is sharper.

    Returns:
        ``(N,)`` values.
    """
    g = _grey(images)
    lap = (g[:, :-2, 1:-1] + g[:, 2:, 1:-1] + g[:, 1:-1, :-2] + g[:, 1:-1, 2:]
           - 4 * g[:, 1:-1, 1:-1])
    return lap.reshape(len(g), -1).var(axis=1)


def sharpness_ratio(generated, real) -> float:
    """Mean Laplacian variance of generated images over that of real images of the same data set
    (1: as sharp as the data; below 1: blurrier). Both in the same value range."""
    return float(laplacian_variance(generated).mean() / laplacian_variance(real).mean())


def is_collapsed(images, tol: float = 0.02) -> bool:
    """Whether a batch has collapsed: near-constant images (e.g. all grey) or one image repeated.

    Args:
        images: ``(N, H, W, C)`` in [0, 1].
        tol: a spread below this (in pixel units of the [0, 1] range) counts as none.
    """
    x = np.asarray(images, np.float64).reshape(len(images), -1)
    within = x.std(axis=1).mean()       # detail inside each image
    across = x.std(axis=0).mean()       # difference between images
    return bool(within < tol or across < tol)


def vanished_classes(predicted, num_classes: int, share: float = 0.25) -> int:
    """The classes missing from a batch of samples, as a bit mask (bit c: class c): those the
    judge reads as fewer than ``share / num_classes`` of them (a quarter of an even share),
    whatever was asked for."""
    counts = np.bincount(np.asarray(predicted, np.int64), minlength=num_classes)
    return int(sum(1 << c for c in range(num_classes) if counts[c] < share * len(predicted)
                   / num_classes))


def collapse_events(collapsed, vanished) -> int:
    """Evaluations in the second half of training at which the samples collapsed (near-constant
    or repeated images: ``collapsed``) or a class vanished that an earlier evaluation (after the
    first, the untrained model's) had drawn (``vanished``: the masks of
    :func:`vanished_classes`, None where not measured). A class a blurry model never drew well
    is no event: what counts is what training lost. The first half is left out, as for
    :func:`log_oscillation`: early samples are alike by nature."""
    drawn, events = 0, 0
    for i, (c, v) in enumerate(zip(collapsed, vanished)):
        v = None if v is None else int(v)
        if i >= len(collapsed) // 2 and (c or (v is not None and v & drawn)):
            events += 1
        if i >= 1 and v is not None:
            drawn |= ~v
    return events


# --------------------------------------------------------------------------- stability, verdicts


def oscillation(values, last: int = 5) -> float:
    """How much a quality metric swings over its last ``last`` evaluations: the standard
    deviation around their straight-line trend (a steady improvement is not an oscillation)."""
    v = np.asarray(values, np.float64)[-last:]
    if len(v) < 3:
        return 0.0
    t = np.arange(len(v))
    residual = v - np.polyval(np.polyfit(t, v, 1), t)
    return float(residual.std())


def _non_increasing_fit(y: np.ndarray) -> np.ndarray:
    """The non-increasing sequence closest to ``y`` in least squares (pool adjacent violators)."""
    blocks = []  # [sum, count] of runs pooled to their mean
    for v in y:
        blocks.append([v, 1])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] < blocks[-1][0] / blocks[-1][1]:
            s, c = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += c
    return np.concatenate([np.full(c, s / c) for s, c in blocks])


def log_oscillation(values) -> float | None:
    """How much a quality curve (an FD over training) swings, scale-free: the root mean square
    of log FD around its trend over the second half of the evaluations, the trend being the
    closest curve that never gets worse. Steady improvement, fast or levelling off, gives 0; FD
    swinging by a factor e above and below its trend gives about 1, and worsening counts too,
    whatever FD's units, so models and data sets compare. None with fewer than 3 finite
    evaluations in that half."""
    v = np.asarray([x for x in values if x is not None], np.float64)
    v = v[len(v) // 2:]
    v = np.log(v[np.isfinite(v) & (v > 0)])
    if len(v) < 3:
        return None
    return float(np.sqrt(np.mean((v - _non_increasing_fit(v)) ** 2)))


def density_coverage(real_features, fake_features, k: int = 5) -> tuple[float, float]:
    """Density and coverage (Naeem et al., 2020), with the k-nearest-neighbour balls of the real
    samples. Density: how many real balls hold each generated sample, over k (about 1 when the
    two match; above 1 where samples crowd the dense regions). Coverage: the share of real samples
    whose ball holds at least one generated sample (1 when every real region is reached)."""
    real = _as_features(real_features, "real_features")
    fake = _as_features(fake_features, "fake_features")
    if k >= len(real):
        raise ValueError(f"k={k} needs more than {k} real samples.")
    radii = _knn_radii(real, k)  # (N,) distance of each real sample to its k-th neighbour
    inside = np.sqrt(_pairwise_sq(real, fake)) < radii[:, None]  # (N real, M fake), as Naeem et al.
    return float(inside.sum() / (k * len(fake))), float(inside.any(axis=1).mean())


def mann_whitney(a, b) -> tuple[float, float]:
    """The Mann-Whitney U of ``a`` against ``b`` (pairs with a > b, ties counting 1/2) and its
    exact two-sided p-value: the share of all ways to split the pooled values into groups of
    ``len(a)`` and ``len(b)`` whose U is at least as far from its mean ``len(a) len(b) / 2``
    (252 splits for 5 against 5, whose smallest p is 2/252). No approximation, ties included:
    the splits are counted by their sum of ranks (midranks for ties), not listed one by one."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    na, nb = len(a), len(b)
    if na == 0 or nb == 0:
        raise ValueError("Both groups need at least one value.")
    pooled = np.concatenate([a, b])
    # Twice the midranks: whole numbers, so the rank sums index an array.
    twice_rank = np.rint(_midranks(pooled) * 2).astype(int)
    # ways[j, s]: splits of the values seen so far with j in the first group, twice-rank sum s.
    ways = np.zeros((na + 1, int(twice_rank.sum()) + 1))
    ways[0, 0] = 1.0
    for r in twice_rank:
        ways[1:, r:] += ways[:-1, :ways.shape[1] - r].copy()
    u_of = (np.arange(ways.shape[1]) / 2 - na * (na + 1) / 2)  # U of each rank sum
    u = float(twice_rank[:na].sum() / 2 - na * (na + 1) / 2)
    centre = na * nb / 2
    far = np.abs(u_of - centre) >= abs(u - centre) - 1e-9
    return u, float(ways[na, far].sum() / ways[na].sum())


def _midranks(x) -> np.ndarray:
    """Ranks 1..n of ``x``, tied values sharing the mean of their ranks."""
    _, group, counts = np.unique(np.asarray(x, np.float64), return_inverse=True,
                                 return_counts=True)
    last = np.cumsum(counts)  # the highest rank of each group of equal values
    return (last - (counts - 1) / 2)[group]


MIN_SEEDS = 5  # training seeds per model before a verdict
ALPHA = 0.05  # the largest exact two-sided p-value that counts


def seed_verdict(claim_values, other_values=(), higher_supports: bool = True,
                 bar: float | None = None, alpha: float = ALPHA) -> dict:
    """The course's rule for a claim over training seeds, written down before any run.

    The claim is that the measure is higher (``higher_supports``) or lower for one model than for
    the other, each value from one training seed. With at least :data:`MIN_SEEDS` seeds on each
    side, the claim **holds** when the exact two-sided Mann-Whitney p-value (:func:`mann_whitney`)
    is at most :data:`ALPHA` and U lies on the claimed side of its mean (most pairs of seeds agree
    with the claim), **does not hold** when p is at most :data:`ALPHA` and U lies on the other
    side, and is **inconclusive** otherwise (``alpha`` replaces :data:`ALPHA` where one claim
    rests on several tests). Against a fixed ``bar`` (e.g. an accuracy of 0.9,
    ``other_values`` unused) it holds when at least :data:`MIN_SEEDS` seeds are all strictly on
    the claimed side (5 of 5: a sign test's one-sided p of 1/32), does not hold when they are all
    on the other side, and is inconclusive otherwise. Missing values (None, NaN) are dropped.

    Returns:
        ``{"verdict", "claim_median", "other_median", "p", "two_spreads"}``: the verdict, the
        medians (the bar for ``other_median``), the p-value (None against a bar), and the older
        rule's verdict beside it (a gap larger than twice the larger standard deviation,
        :func:`verdict`; "inconclusive" where a value is infinite).
    """
    def present(values):
        return np.asarray([v for v in values if v is not None and not np.isnan(v)], np.float64)

    a, b = present(claim_values), present([bar] if bar is not None else other_values)
    sign = 1.0 if higher_supports else -1.0
    out = {"claim_median": float(np.median(a)) if len(a) else None,
           "other_median": float(np.median(b)) if len(b) else None, "p": None}
    if not len(a) or not len(b):
        out["two_spreads"] = "n/a"
    elif not np.all(np.isfinite(np.concatenate([a, b]))):  # a threshold some seed never reached
        out["two_spreads"] = "inconclusive"
    else:
        out["two_spreads"] = verdict(float(a.mean()), float(a.std()), float(b.mean()),
                                     float(b.std()), higher_supports)
    n = min(len(a), len(b)) if bar is None else len(a)
    if n < MIN_SEEDS:
        out["verdict"] = f"inconclusive ({n} seed{'s' if n != 1 else ''}; {MIN_SEEDS} needed)"
        return out
    if bar is not None:
        side = sign * (a - bar)
        out["verdict"] = ("holds" if np.all(side > 0) else
                          "does not hold" if np.all(side < 0) else "inconclusive")
        return out
    u, out["p"] = mann_whitney(a, b)
    direction = sign * (u - len(a) * len(b) / 2)
    out["verdict"] = ("inconclusive" if out["p"] > alpha or direction == 0 else
                      "holds" if direction > 0 else "does not hold")
    return out


def first_held(values, steps, threshold: float, lower_is_better: bool = True):
    """The first step from which a metric stays at ``threshold`` (fixed before the run) or
    better until the last evaluation, or None. A model that touches the threshold and falls back
    (a GAN's accuracy at a lucky evaluation) has not yet reached it."""
    held = None
    for v, s in zip(reversed(list(values)), reversed(list(steps))):
        if v is None or not ((v <= threshold) if lower_is_better else (v >= threshold)):
            break
        held = s
    return held


def first_reaching(values, steps, threshold: float, lower_is_better: bool = True):
    """The first step at which a metric reaches ``threshold`` (fixed before the run), or None."""
    for v, s in zip(values, steps):
        if (v <= threshold) if lower_is_better else (v >= threshold):
            return s
    return None


def verdict(claim_value: float, claim_spread: float, other_value: float, other_spread: float,
            higher_supports: bool = True, evidence: bool = True) -> str:
    """Does a measured difference support a claim?

    The claim is that ``claim_value`` exceeds ``other_value`` (``higher_supports=True``) or falls
    below it. The difference counts only when it exceeds twice the spread across seeds (the larger
    of the two spreads); otherwise the verdict is "inconclusive". A run that is not evidence (the
    smoke preset) is always "not evidence".

    Returns:
        ``"holds"``, ``"does not hold"``, ``"inconclusive"`` or ``"not evidence"``.
    """
    if not evidence:
        return "not evidence"
    diff = claim_value - other_value
    if not higher_supports:
        diff = -diff
    margin = 2 * max(claim_spread, other_spread)
    if abs(diff) <= margin:
        return "inconclusive"
    return "holds" if diff > 0 else "does not hold"


# --------------------------------------------------------------------------- InceptionV3 features


def inception_resize(images, size: int = 299):
    """Images in [0, 1] -> InceptionV3 input: resized to ``size`` with antialiasing (bilinear),
    grey images repeated to three channels, scaled to [-1, 1]."""
    import tensorflow as tf

    x = tf.convert_to_tensor(images, tf.float32)
    if x.shape[-1] == 1:
        x = tf.repeat(x, 3, axis=-1)
    x = tf.image.resize(x, (size, size), method="bilinear", antialias=True)
    return x * 2.0 - 1.0


def inception_model():
    """InceptionV3 with ImageNet weights, average-pooled (2048 features), or ``None`` with the
    reason when the weights cannot be loaded (offline). Never a model with random weights."""
    import keras

    try:
        model = keras.applications.InceptionV3(include_top=False, pooling="avg",
                                               weights="imagenet", input_shape=(299, 299, 3))
    except Exception as e:  # download failure offline, or a damaged weights file
        return None, f"FID skipped: the InceptionV3 ImageNet weights could not be loaded ({e})."
    return model, ""


def inception_features(images, model, batch_size: int = 100) -> np.ndarray:
    """InceptionV3 pool features of images in [0, 1], batch by batch."""
    out = []
    for i in range(0, len(images), batch_size):
        out.append(np.asarray(model(inception_resize(images[i:i + batch_size]), training=False)))
    return np.concatenate(out).astype(np.float64)
