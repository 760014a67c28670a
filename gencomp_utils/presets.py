"""Named sizes for every notebook: ``smoke`` (CI), ``classroom`` (default) and ``paper``.

Budgets are counted in optimisation steps, not epochs, so a run on a smaller split does the same
amount of work. A notebook's parameters cell holds ``preset``, which defaults to the environment
variable ``GENCOMP_PRESET`` (else ``classroom``).
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    """Sizes shared by the notebooks.

    Attributes:
        name: ``smoke``, ``classroom`` or ``paper``.
        description: one line on what the preset is for.
        train_steps: optimisation steps per model (both models of an experiment get the same).
        batch_size: images per step.
        eval_every: steps between evaluations (sample grids, metrics).
        num_eval_images: images generated and compared in the final measures (the curve during
            training uses at most 500, the same ones at every evaluation).
        base_filters: width of the first convolution; later layers double it.
        latent_dim: size of the latent vector z of both models.
        theory_samples: Monte Carlo samples in the theory notebooks' checks.
        toy_steps: training steps of the small 1-D and 2-D toy models in the theory notebooks.
        classifier_steps: training steps of the project's domain classifiers.
        vae_beta: weight of the VAE's KL term (1: the plain ELBO of Eq. 1). Above 1 it pulls the
            codes towards the prior, so that samples drawn from the prior keep the requested
            class after a short training, at the price of more blur.
        vae_learning_rate: Adam's step size for the VAE.
        gan_learning_rate: Adam's step size for each network of the AC-GAN (with beta_1 = 0.5).
    """

    name: str
    description: str
    train_steps: int
    batch_size: int
    eval_every: int
    num_eval_images: int
    base_filters: int
    latent_dim: int
    theory_samples: int
    toy_steps: int
    classifier_steps: int
    vae_beta: float = 1.0
    vae_learning_rate: float = 1e-3
    gan_learning_rate: float = 2e-4

    def replace(self, **changes) -> "Preset":
        """A copy with some fields changed, e.g. ``preset.replace(train_steps=10)``."""
        return dataclasses.replace(self, **changes)


PRESETS = {
    "smoke": Preset(
        name="smoke",
        description="CI: a few seconds of work per notebook on 2 CPU cores; checks that everything runs",
        train_steps=30, batch_size=32, eval_every=15, num_eval_images=256,
        base_filters=8, latent_dim=8, theory_samples=20_000, toy_steps=300,
        classifier_steps=60, vae_beta=4.0,
    ),
    "classroom": Preset(
        name="classroom",
        description="default: minutes per notebook on a Colab GPU, recognisable samples",
        # Tuned for a lesson on a CPU: both MNIST models >= 90% conditional accuracy.
        train_steps=2_000, batch_size=64, eval_every=100, num_eval_images=1_000,
        base_filters=32, latent_dim=8, theory_samples=200_000, toy_steps=3_000,
        classifier_steps=1_500, vae_beta=4.0,
    ),
    "paper": Preset(
        name="paper",
        description="the paper's scale: about 50 epochs of 60,000 images at batch 64 per model",
        train_steps=50_000, batch_size=64, eval_every=2_500, num_eval_images=10_000,
        base_filters=64, latent_dim=100, theory_samples=1_000_000, toy_steps=10_000,
        classifier_steps=10_000, vae_beta=1.0,
    ),
}

DEFAULT_PRESET = "classroom"


def default_preset_name() -> str:
    """``GENCOMP_PRESET`` if set, else ``classroom``."""
    return os.environ.get("GENCOMP_PRESET") or DEFAULT_PRESET


def get_preset(name: str | None = None) -> Preset:
    """Look a preset up by name (``None``: :func:`default_preset_name`).

    Raises:
        ValueError: the name is not one of ``smoke``, ``classroom``, ``paper``.
    """
    name = name or default_preset_name()
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(
            f"Unknown preset {name!r}. Choose one of: {', '.join(PRESETS)} "
            "(set it in the notebook's parameters cell or with GENCOMP_PRESET)."
        ) from None
