"""From trained models to measurements: samples are judged against held-out real images with the
project's domain classifier (and InceptionV3 where its ImageNet weights load).

The measures themselves live in :mod:`gencomp_utils.metrics`; the ``metrics.json`` schema in
:mod:`gencomp_utils.report`.
"""
from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np

from . import metrics


def importance_weighted_bound(vae, x, labels, k: int = 64, batch_size: int = 100,
                              seed: int = 0) -> float:
    """The importance-weighted bound on log p(x|y) (Burda et al., 2016), nats per image.

    ``log (1/k) sum_i p(x|z_i, y) p(z_i) / q(z_i|x, y)`` with ``z_i ~ q(z|x, y)``: a lower bound on
    log p(x|y) that tightens as k grows; k = 1 gives the ELBO in expectation.

    Args:
        vae: a trained :class:`gencomp_utils.models.ConditionalVAE`.
        x: images ``(N, H, W, C)`` in [0, 1]; labels: their classes.
        k: importance samples per image.
        batch_size: images per pass (each pass decodes ``k * batch_size`` latents).
        seed: seed of the draws.

    Returns:
        The mean bound over the images (nats per image; higher is better).
    """
    from keras import ops

    x = vae.check_images(x)
    labels = vae.check_labels(labels, n=len(x))
    rng = np.random.default_rng(seed)
    d = vae.latent_dim
    log2pi = math.log(2 * math.pi)
    total = 0.0
    for i in range(0, len(x), batch_size):
        xb, yb = x[i:i + batch_size], labels[i:i + batch_size]
        b = len(xb)
        mean, log_var = vae.encode_numpy(xb, yb)
        eps = rng.standard_normal((k, b, d)).astype(np.float32)
        z = mean[None] + np.exp(0.5 * log_var)[None] * eps  # (k, b, d)
        out = vae.decode_logits(z.reshape(k * b, d), np.tile(yb, (k,) + (1,) * (yb.ndim - 1)))
        nll = ops.convert_to_numpy(vae.neg_log_likelihood(np.tile(xb, (k, 1, 1, 1)), out))
        log_px_z = -np.asarray(nll, np.float64).reshape(k, b)
        log_pz = -0.5 * (np.square(z) + log2pi).sum(-1)
        log_qz = -0.5 * (np.square(eps) + log_var[None] + log2pi).sum(-1)
        log_w = log_px_z + log_pz - log_qz
        top = log_w.max(axis=0)
        total += float((top + np.log(np.exp(log_w - top).mean(axis=0))).sum())
    return total / len(x)


def binarized(images, seed: int = 0) -> np.ndarray:
    """Grey images in [0, 1] made binary once: each pixel is 1 with probability its intensity
    (seeded, so every model meets the same binary images). A Bernoulli decoder gives a
    probability to binary images only; on them its likelihood bound is a real bound, comparable
    with the published figures for binarised MNIST."""
    rng = np.random.default_rng(seed)
    images = np.asarray(images, np.float32)
    return (rng.random(images.shape) < images).astype(np.float32)


def bits_per_dim(log_likelihood_nats: float, shape) -> float:
    """Bits per dimension of a density on pixels in [0, 1], counted on the 256-level pixel scale:
    ``(-log p(x) + D log 256) / (D log 2)`` for D = H * W * C."""
    dims = int(np.prod(shape))
    return (-log_likelihood_nats + dims * math.log(256)) / (dims * math.log(2))


def sample_like(model, labels, seed: int = 0) -> np.ndarray:
    """Samples for exactly the given labels (so generated and real label mixes match)."""
    return model.sample(labels=np.asarray(labels), seed=seed)


def judge_samples(fake, fake_labels, real, real_features, classifier, inception=None,
                  real_inception=None, seed: int = 0) -> dict:
    """Every sample-quality measure of one set of generated images.

    Args:
        fake: generated images in [0, 1]; fake_labels: what each was generated for.
        real: held-out real images in [0, 1] (the reference; same count as ``fake`` is best).
        real_features: ``classifier.features(real)``, computed once by the caller.
        classifier: the data set's domain classifier.
        inception: an InceptionV3 pool model, or None (FID then skipped).
        real_inception: its features of ``real``.
        seed: seed of KID's subsets.

    Returns:
        ``fd_domain``, ``kid``, ``kid_std``, ``precision``, ``recall``, ``density``,
        ``coverage``, ``sharpness_ratio``, ``conditional_accuracy``, ``fid``, ``collapsed``.
    """
    f = classifier.features(fake)
    # subsets of half the images, so that their spread says how much KID moves with the sample
    kid, kid_std = metrics.kernel_inception_distance(real_features, f, subsets=10,
                                                     subset_size=min(1000, len(f) // 2),
                                                     seed=seed)
    precision, recall = metrics.precision_recall(real_features, f, k=3)
    density, coverage = metrics.density_coverage(real_features, f, k=5)
    fid = None
    if inception is not None and real_inception is not None:
        fid = metrics.frechet_distance(real_inception, metrics.inception_features(fake, inception))
    return {
        "fd_domain": metrics.frechet_distance(real_features, f),
        "kid": kid, "kid_std": kid_std, "precision": precision, "recall": recall,
        "density": density, "coverage": coverage,
        "sharpness_ratio": metrics.sharpness_ratio(fake, real),
        "conditional_accuracy": classifier.conditional_accuracy(fake, fake_labels).overall,
        "fid": fid,
        "collapsed": metrics.is_collapsed(fake[:256]),
    }


# Quality threshold of each data set, fixed before any run: the conditional accuracy (share of
# samples the domain classifier reads as the requested class) that counts as "trained".
THRESHOLDS = {"mnist": ("conditional_accuracy", 0.8), "cifar10": ("conditional_accuracy", 0.3),
              "celeba": ("conditional_accuracy", 0.8)}


def progress_hook(classifier, x_eval, y_eval, num_images: int = 500, seed: int = 0):
    """An ``eval_fn`` for :func:`gencomp_utils.training.train`: for ``num_images`` samples at each
    evaluation, FD (domain classifier), coverage (:func:`metrics.density_coverage`), conditional
    accuracy, how many samples the judge reads as each class (``class_counts``) and the classes
    missing (:func:`metrics.vanished_classes`, a bit mask). An unconditional model (one class)
    is asked for its samples with label 0, and has no conditional accuracy (None)."""
    n = min(int(num_images), len(x_eval))
    real, labels = np.asarray(x_eval[:n]), np.asarray(y_eval[:n])
    real_features = classifier.features(real)
    classes = len(classifier.class_names)

    def hook(model, step):
        conditional = model.num_classes > 1
        fake = sample_like(model, labels if conditional else np.zeros_like(labels),
                           seed=seed + 1)
        f = classifier.features(fake)
        read = classifier.predict(fake)  # once: the accuracy, the counts, the missing classes
        return {"fd_domain": metrics.frechet_distance(real_features, f),
                "coverage": metrics.density_coverage(real_features, f, k=5)[1],
                "conditional_accuracy": float(np.mean(read == labels)) if conditional else None,
                "class_counts": np.bincount(read, minlength=classes).tolist(),
                "vanished_classes": metrics.vanished_classes(read, classes)}

    path = getattr(classifier, "path", None)
    hook.settings = {"images": n, "seed": seed, "judge": Path(path).name if path else None,
                     "measures": 2}  # 2: with coverage and class counts
    return hook


def judge_record(classifier) -> dict:
    """Which judge measured a run: its file, its accuracy on held-out images, and a hash of the
    file, so that results from different judges are never compared as one."""
    return {"file": Path(classifier.path).name, "accuracy": float(classifier.accuracy),
            "sha1": hashlib.sha1(Path(classifier.path).read_bytes()).hexdigest()[:12]}


def _curve(run) -> dict:
    h = run.history
    per_step = h["train_seconds"] / max(1, h["step"])
    evals = [e for e in h["evals"] if "fd_domain" in e.get("metrics", {})]
    return {"step": [e["step"] for e in evals],
            "seconds": [e["step"] * per_step for e in evals],
            "fd_domain": [e["metrics"]["fd_domain"] for e in evals],
            "conditional_accuracy": [e["metrics"]["conditional_accuracy"] for e in evals],
            "collapsed": [bool(e.get("collapsed")) for e in evals],
            "vanished_classes": [e["metrics"].get("vanished_classes") for e in evals]}


def experiment_metrics(dataset: str, session, splits, runs: dict, classifier, x_eval, y_eval,
                       num_images: int | None = None, iwae_samples: int | None = None,
                       use_inception: bool = True, arms: dict | None = None) -> dict:
    """Measure a finished experiment and write its ``metrics.json`` (see
    :mod:`gencomp_utils.report` for the schema) into the session's output folder.

    Args:
        dataset: ``"mnist"``, ``"cifar10"`` or ``"celeba"``.
        session: the notebook's :class:`gencomp_utils.course.Session`.
        splits: the :class:`gencomp_utils.data.Splits` used (their note is recorded).
        runs: ``{"vae": Run, "gan": Run}`` from :func:`gencomp_utils.training.train`, trained
            with :func:`progress_hook` as ``eval_fn`` so that their curves hold FD values.
        classifier: the data set's domain classifier.
        x_eval, y_eval: held-out real images in [0, 1] and labels.
        num_images: images generated and compared (default: the preset's ``num_eval_images``).
        iwae_samples: importance samples of the VAE's likelihood bound (default: 8 under smoke,
            64 otherwise).
        use_inception: try InceptionV3 (FID); skipped with a note when its weights do not load.
        arms: ``{name: Run}`` of VAEs trained beside the compared pair with another setting
            (``"vae_beta1"``: the plain ELBO; ``"vae_beta1_fixed_sigma"``: and a fixed decoder
            σ), their samples judged on the same real images, for the claims about blur.

    Returns:
        The metrics dict (also written to ``<out_dir>/metrics.json``).
    """
    from .report import write_metrics

    preset = session.preset
    n = min(int(num_images or preset.num_eval_images), len(x_eval))
    real, labels = np.asarray(x_eval[:n]), np.asarray(y_eval[:n])
    real_features = classifier.features(real)
    inception, fid_note = (None, "FID not asked for.")
    if use_inception:
        inception, fid_note = metrics.inception_model()
    real_inception = metrics.inception_features(real, inception) if inception else None
    k = iwae_samples or (8 if preset.name == "smoke" else 64)
    thr_metric, thr_value = THRESHOLDS[dataset]
    out = {}
    for key, run in runs.items():
        fake = sample_like(run.model, labels, seed=session.seed + 7)
        m = judge_samples(fake, labels, real, real_features, classifier, inception,
                          real_inception, seed=session.seed)
        m["fid_note"] = "" if m["fid"] is not None else fid_note
        m["log_likelihood_nats"] = m["bits_per_dim"] = None
        if key == "vae":
            m.update(beta=run.model.beta, likelihood=run.model.likelihood,
                     gaussian_sigma=run.model.gaussian_sigma)  # a Bernoulli decoder is judged on binary digits (see binarized)
            few = min(n, 500)
            images = real[:few] if run.model.likelihood != "bernoulli" else binarized(real[:few])
            ll = importance_weighted_bound(run.model, images, labels[:few], k=k,
                                           seed=session.seed)
            m["log_likelihood_nats"] = ll
            if real.shape[-1] == 3:
                m["bits_per_dim"] = bits_per_dim(ll, real.shape[1:])
        h = run.history
        curve = _curve(run)
        reached = metrics.first_held(curve[thr_metric], curve["step"], thr_value,
                                         lower_is_better=(thr_metric == "fd_domain"))
        per_step = h["train_seconds"] / max(1, h["step"])
        m.update({
            "seconds_per_epoch": run.seconds_per_epoch(),
            "train_seconds": h["train_seconds"], "steps": h["step"],
            "images_seen": h["images_seen"],
            "steps_to_threshold": reached,
            "seconds_to_threshold": None if reached is None else reached * per_step,
            "epochs_to_threshold": None if reached is None else reached / h["steps_per_epoch"],
            "oscillation": metrics.oscillation(curve["fd_domain"]),
            "log_oscillation": metrics.log_oscillation(curve["fd_domain"]),
            "collapsed": bool(m["collapsed"] or h.get("collapsed_at") is not None),
            "collapse_events": metrics.collapse_events(curve["collapsed"],
                                                       curve["vanished_classes"]),
            "curve": curve,
        })
        out[key] = m
    result = {"schema": 1, "dataset": dataset, "preset": preset.name, "seed": session.seed,
              "evidence": not preset.name.startswith("smoke"),
              "splits": {"train": splits.train, "eval": splits.eval, "note": splits.note},
              "num_eval_images": n, "threshold": {"metric": thr_metric, "value": thr_value},
              "judge": judge_record(classifier),
              "models": out}
    if arms:
        result["arms"] = {}
        for key, run in arms.items():
            fake = sample_like(run.model, labels, seed=session.seed + 7)
            m = judge_samples(fake, labels, real, real_features, classifier, seed=session.seed)
            del m["fid"]
            result["arms"][key] = {"beta": run.model.beta, "likelihood": run.model.likelihood,
                                   "gaussian_sigma": run.model.gaussian_sigma,
                                   "steps": run.history["step"], **m}
    write_metrics(session.out_dir / "metrics.json", result)
    return result
