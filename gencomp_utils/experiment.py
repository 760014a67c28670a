"""The steps every experiment notebook (04 MNIST, 05 GANs that fail, 06 CIFAR-10, 07 CelebA)
shares, so that each notebook shows what differs between data sets and calls these for what does
not.

- :func:`builders`: the conditional VAE and the AC-GAN for a data set, from one architecture.
- :func:`timing`: seconds per epoch and images per second of finished runs, with checks that they
  had the same budget.
- :func:`threshold_progress`: a metric at every evaluation and the first step from which it
  stayed at a threshold.
- :func:`training_grids`: the grids drawn during training, and whether a collapse was flagged.
- :func:`metrics_lines`: the measurements of ``metrics.json`` as readable lines.
- :func:`sibling_metrics`: the ``metrics.json`` another experiment notebook wrote in the same run.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def builders(image_shape, num_classes: int, preset, device, seed: int = 0,
             likelihood: str = "bernoulli"):
    """The architecture and two model factories for :func:`gencomp_utils.training.train`.

    Args:
        image_shape: ``(H, W, C)``.
        num_classes: classes the models are conditioned on.
        preset: the :class:`gencomp_utils.presets.Preset` (latent size, width, the VAE's beta,
            the learning rates).
        device: from :func:`gencomp_utils.devices.choose` (its precision, and the AC-GAN's
            dropout form).
        seed: seeds the weights and the noise.
        likelihood: the VAE decoder's default likelihood (``"bernoulli"`` or ``"gaussian"``).

    Returns:
        ``(architecture, build_vae, build_gan)``; ``build_vae(likelihood=..., beta=...,
        gaussian_sigma=...)`` (a fixed decoder σ; None learns it) and
        ``build_gan(projection=True, fake_class_loss=False, spectral_norm=False)`` return fresh
        models, compiled with the preset's Adam learning rates.
    """
    from . import models

    arch = models.Architecture(tuple(image_shape), num_classes=int(num_classes),
                               latent_dim=preset.latent_dim, base_filters=preset.base_filters)

    def build_vae(likelihood: str = likelihood, beta: float | None = None,
                  gaussian_sigma: float | None = None):
        vae = models.ConditionalVAE(arch.image_shape, arch.num_classes, arch.latent_dim,
                                    arch.base_filters, likelihood=likelihood,
                                    gaussian_sigma=gaussian_sigma,
                                    beta=preset.vae_beta if beta is None else beta,
                                    precision=device.precision, seed=seed)
        vae.compile(learning_rate=preset.vae_learning_rate)
        return vae

    def build_gan(projection: bool = True, fake_class_loss: bool = False,
                  spectral_norm: bool = False):
        gan = models.ACGAN(arch.image_shape, arch.num_classes, arch.latent_dim,
                           arch.base_filters, projection=projection,
                           fake_class_loss=fake_class_loss, spectral_norm=spectral_norm,
                           precision=device.precision,
                           seed=seed, fast_layers=device.fast_layers)
        gan.compile(learning_rate=preset.gan_learning_rate)
        return gan

    return arch, build_vae, build_gan


def timing(runs: dict) -> dict:
    """Print seconds per epoch, images per second and total training time of each run, and
    check that the runs had the same budget and finished.

    Args:
        runs: ``{name: Run}``.

    Returns:
        ``{name: images per second}``.

    Raises:
        AssertionError: the runs saw different numbers of images, or one did not complete.
    """
    for name, run in runs.items():
        h = run.history
        print(f"{name:15s} {run.seconds_per_epoch():7.2f} s per epoch of {h['steps_per_epoch']} "
              f"steps, {run.images_per_second():6.0f} images/s, {h['train_seconds']:7.1f} s in "
              f"all ({run.how})")
    seen = {name: r.history["images_seen"] for name, r in runs.items()}
    assert len(set(seen.values())) == 1, f"different budgets: {seen}"
    assert all(r.history["status"] == "completed" for r in runs.values())
    return {name: run.images_per_second() for name, run in runs.items()}


def threshold_progress(runs: dict, metric: str, threshold: float | None = None,
                       lower_is_better: bool = False) -> dict:
    """Print ``metric`` at each evaluation of each run and return the first step from which it
    stayed at ``threshold`` or better (:func:`gencomp_utils.metrics.first_held`; ``None``: never;
    no threshold: an empty dict).

    Args:
        runs: ``{name: Run}`` trained with an ``eval_fn`` that records ``metric``.
        metric: e.g. ``"conditional_accuracy"`` or ``"fd_domain"``.
        threshold: the value that counts as reached (``None``: only print the values).
        lower_is_better: ``True`` for distances such as FD.
    """
    from .metrics import first_held

    reach = {}
    for name, run in runs.items():
        evals = [e for e in run.history["evals"]  # NaN is written as null
                 if e.get("metrics", {}).get(metric) is not None]
        steps = [e["step"] for e in evals]
        values = [e["metrics"][metric] for e in evals]
        if threshold is not None:
            reach[name] = first_held(values, steps, threshold, lower_is_better=lower_is_better)
        print(f"{name:15s} {metric} by step: " +
              ", ".join(f"{s}: {v:.2f}" for s, v in zip(steps, values)))
    if threshold is not None:
        print(f"held at {threshold:g} or {'below' if lower_is_better else 'above'} from step:",
              reach)
    return reach


def training_grids(runs: dict, max_frames: int = 5, path_dir=None) -> dict:
    """Show the grids each run drew from fixed noise during training and say whether a collapse
    was flagged.

    Returns:
        ``{name: step of the first collapse or None}``.
    """
    from . import plots

    out = {}
    for name, run in runs.items():
        frames, steps = run.grids()
        path = None if path_dir is None else Path(path_dir) / f"over_training_{name}.png"
        plots.grids_over_training(frames, steps, max_frames=max_frames, path=path)
        collapsed = run.history["collapsed_at"]
        print(f"{name}: {len(frames)} grids; collapse: "
              f"{'none' if collapsed is None else f'at step {collapsed}'}")
        assert len(frames) == len(run.history["evals"]) >= 2
        out[name] = collapsed
    return out


def metrics_lines(result: dict) -> list[str]:
    """The measurements of one ``metrics.json`` (see :mod:`gencomp_utils.report`), one line per
    model."""
    lines = []
    for key, m in result["models"].items():
        fid = "skipped" if m.get("fid") is None else f"{m['fid']:.1f}"
        lines.append(
            f"{key}: FD (domain classifier) {m['fd_domain']:.2f}, KID {m['kid']:.4f}, precision "
            f"{m['precision']:.2f}, recall {m['recall']:.2f}, sharpness {m['sharpness_ratio']:.0%}"
            f" of real, conditional accuracy {m['conditional_accuracy']:.3f}, FID {fid}, "
            f"{m['seconds_per_epoch']:.1f} s per epoch, steps to "
            f"{result['threshold']['value']:g}: {m['steps_to_threshold']}")
    vae = result["models"].get("vae", {})
    if vae.get("log_likelihood_nats") is not None:
        bpd = vae.get("bits_per_dim")
        what = "binarised held-out digit" if result["dataset"] == "mnist" else "held-out image"
        lines.append(f"VAE: log p(x|y) >= {vae['log_likelihood_nats']:.1f} nats per {what}"
                     + ("" if bpd is None else f" ({bpd:.2f} bits per dimension)"))
    return lines


def sibling_metrics(session, notebook: str):
    """The ``metrics.json`` that ``notebook`` (e.g. ``"04_mnist_experiment"``) wrote beside this
    session's output folder, if it was run with the same preset and seed; else ``None``."""
    path = Path(session.out_dir).parent / notebook / "metrics.json"
    if not path.is_file():
        return None
    m = json.loads(path.read_text())
    if m.get("preset") != session.preset.name or m.get("seed") != session.seed:
        return None
    return m


def blur_table(rows: dict) -> str:
    """A Markdown table of sharpness ratio and FD per data set and model.

    Args:
        rows: ``{dataset: metrics dict (metrics.json)}``.
    """
    lines = ["| data set | VAE sharpness | GAN sharpness | VAE FD (domain) | GAN FD (domain) |",
             "| --- | --- | --- | --- | --- |"]
    for dataset, m in rows.items():
        v, g = m["models"]["vae"], m["models"]["gan"]
        lines.append(f"| {dataset} | {v['sharpness_ratio']:.0%} | {g['sharpness_ratio']:.0%} | "
                     f"{v['fd_domain']:.1f} | {g['fd_domain']:.1f} |")
    return "\n".join(lines)


def per_class_grid(model, num_classes: int, per_class: int = 10, seed: int = 0) -> np.ndarray:
    """Samples of every class, one row per class: ``(num_classes, per_class, H, W, C)``."""
    labels = np.repeat(np.arange(num_classes), per_class)
    images = model.sample(labels=labels, seed=seed)
    return images.reshape((num_classes, per_class) + tuple(images.shape[1:]))
