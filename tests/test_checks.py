"""The checks of notebook 03 pass the notebook's own solutions and reject wrong answers made from
them, each with the right diagnosis."""
from __future__ import annotations

import json
import re

import pytest

from gencomp_utils import checks, paths
from gencomp_utils.models.architecture import Architecture

NOTEBOOK = paths.REPO_ROOT / "notebooks" / "03_build_the_models.ipynb"
ARCH = Architecture((28, 28, 1), num_classes=10, latent_dim=4, base_filters=4)
DEFINES = ("def reparameterize", "def make_encoder", "def make_decoder", "def vae_loss",
           "class MyVAE", "class GANNetworks", "class MyACGAN")


def solutions(*replacements: tuple[str, str]) -> dict:
    """The names the notebook's answer cells define, after each ``(old, new)`` replacement."""
    cells = ["".join(c["source"]) for c in json.loads(NOTEBOOK.read_text())["cells"]
             if c["cell_type"] == "code"]
    source = "\n\n".join(c for c in cells if any(d in c for d in DEFINES))
    for old, new in replacements:
        assert source.count(old) == 1, f"the notebook's solution no longer has {old!r}"
        source = source.replace(old, new)
    import keras
    import numpy as np
    import tensorflow as tf
    from keras import layers, ops

    from gencomp_utils.models.architecture import build_downsampler, build_upsampler

    namespace = dict(keras=keras, np=np, tf=tf, layers=layers, ops=ops, seed=0,
                     build_downsampler=build_downsampler, build_upsampler=build_upsampler)
    exec(compile(source, str(NOTEBOOK), "exec"), namespace)
    return namespace


def run(check: str, ns: dict):
    args = {"reparameterize": (ns["reparameterize"],),
            "encoder": (ns["make_encoder"], ARCH),
            "decoder": (ns["make_decoder"], ARCH),
            "vae_loss": (ns["vae_loss"], ARCH),
            "vae_step": (ns["MyVAE"], ARCH),
            "acgan_step": (ns["MyACGAN"], ARCH)}[check]
    getattr(checks, check)(*args)


@pytest.mark.parametrize("check", ["reparameterize", "encoder", "decoder", "vae_loss",
                                   "vae_step", "acgan_step"])
def test_the_notebooks_solutions_pass(check, capsys):
    run(check, solutions())
    assert capsys.readouterr().out.startswith("passed: ")


WRONG = [
    # (check, the solution's text, a wrong answer, words of the diagnosis)
    ("reparameterize", "ops.exp(0.5 * log_var) * eps", "ops.exp(log_var) * eps",
     "uses the variance"),
    ("reparameterize", "mean + ops.exp(0.5 * log_var) * eps", "mean + 0 * eps",
     "leaves out the noise"),
    ("reparameterize", "ops.exp(0.5", "np.exp(0.5", "no gradient reaches"),
    ("reparameterize", "log_var) * eps", "log_var) * keras.random.normal(ops.shape(eps))",
     "changes from one call to the next"),
    ("encoder", "Concatenate()([h, label])", "Concatenate()([label, h])",
     "joined in the wrong place or order"),
    ("encoder", "h = layers.Concatenate()([h, label])", "pass", "The first dense layer"),
    ("decoder", "Concatenate()([z, label])", "Concatenate()([label, z])",
     "joined in the wrong place or order"),
    ("decoder", "Concatenate()([z, label])", "Concatenate()([z, label * 0])",
     "does not depend on the label"),
    ("vae_loss", "ops.mean(reconstruction + beta * kl)", "ops.mean(reconstruction)",
     "the KL term is missing from the loss"),
    ("vae_loss", "kl = 0.5 *", "kl = -0.5 *", "the KL term has its sign flipped"),
    ("vae_loss", "ops.mean(reconstruction + beta * kl)", "ops.mean(reconstruction + kl)",
     "beta is missing"),
    ("vae_loss", "per_pixel = ops.softplus(logits) - x * logits",
     "per_pixel = keras.losses.binary_crossentropy(x, logits)",
     "reads the decoder's logits as probabilities"),
    ("vae_loss", "ops.sum(ops.reshape(per_pixel", "ops.mean(ops.reshape(per_pixel",
     "averaged over the pixels"),
    ("vae_loss", "ops.exp(log_var) + ops.square(mean)", "ops.exp(0.5 * log_var) + ops.square(mean)",
     "uses the standard deviation where the variance belongs"),
    ("vae_loss", "per_pixel = ops.softplus(logits) - x * logits",
     "per_pixel = np.logaddexp(0, logits) - np.asarray(x) * np.asarray(logits)",
     "no gradient reaches logits"),
    ("vae_step", "vae_loss(x, logits, mean, log_var, self.beta)",
     "vae_loss(x, logits, mean, log_var, 1.0)", "the loss leaves out beta"),
    ("vae_step", "tape.gradient(loss, self.trainable_variables)\n"
     "        self.optimizer.apply(grads, self.trainable_variables)",
     "tape.gradient(loss, self.encoder.trainable_variables)\n"
     "        self.optimizer.apply(grads, self.encoder.trainable_variables)",
     "after one step decoder weight"),
    ("vae_step", "if eps is None:", "if True:", "it draws its own noise"),
    ("acgan_step", "+ bce(ops.zeros_like(fake_logit), fake_logit))",
     "+ bce(ops.zeros_like(fake_logit), fake_logit) + ce(labels, fake_class))",
     "the class term is applied to generated images too"),
    ("acgan_step", "g_loss = bce(ops.ones_like(logit), logit)",
     "g_loss = -bce(ops.zeros_like(logit), logit)", "the saturating loss"),
    ("acgan_step", "g_loss = bce(ops.ones_like(logit), logit) + ce(labels, cls)",
     "g_loss = bce(ops.ones_like(logit), logit)",
     "the class term is missing from the generator's loss"),
    ("acgan_step", "self.generator([noise[1], y]", "self.generator([noise[0], y]",
     "reuses the discriminator's noise"),
    ("acgan_step", "+ ce(labels, real_class)", "", "the class term on real images is missing"),
    ("acgan_step", "bce(ops.ones_like(real_logit), real_logit) + ce(labels, real_class)\n"
     "                      + bce(ops.zeros_like(fake_logit), fake_logit)",
     "bce(ops.zeros_like(real_logit), real_logit) + ce(labels, real_class)\n"
     "                      + bce(ops.ones_like(fake_logit), fake_logit)", "have swapped targets"),
    ("acgan_step", "g_loss = bce(ops.ones_like(logit), logit)",
     "g_loss = bce(ops.zeros_like(logit), logit)", "the generator's target is 0"),
]


FAKE_CLASS = ("fake_logit, _ = self", "fake_logit, fake_class = self")


def test_the_step_check_finds_each_network_updated_by_the_other_players_optimizer():
    d_step = "self.update(self.d_optimizer, tape, d_loss"
    g_step = "self.update(self.g_optimizer, tape, g_loss"
    swapped = solutions((d_step, "D_STEP"), (g_step, g_step.replace("g_optimizer", "d_optimizer")),
                        ("D_STEP", d_step.replace("d_optimizer", "g_optimizer")))
    with pytest.raises(AssertionError, match="each optimizer updates only its own network"):
        run("acgan_step", swapped)


@pytest.mark.parametrize("check, old, new, diagnosis", WRONG,
                         ids=[f"{w[0]}-{w[3][:30]}" for w in WRONG])
def test_each_check_rejects_a_wrong_answer_and_names_it(check, old, new, diagnosis):
    keep = [FAKE_CLASS] if "fake_class" in new else []  # the class logits of generated images
    with pytest.raises(AssertionError, match=re.escape(diagnosis)):
        run(check, solutions(*keep, (old, new)))
