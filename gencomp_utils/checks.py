"""Checks of the code students write in notebook 03, against the package's own models.

Each check runs the student's code and the package's on the same input, with the same weights
copied in, the same noise passed in, float32 and no dropout, and one SGD step (its update is the
gradient itself, which Adam would rescale). It prints ``passed`` and what it compared, or raises
an ``AssertionError`` that names the mistake when it recognises one (the KL term missing, its
sign flipped, the label joined in the wrong place, ...) and otherwise says what differs.
"""
from __future__ import annotations

import keras
import numpy as np
from keras import ops

from .models import ACGAN, ConditionalVAE
from .models.architecture import Architecture

RTOL, ATOL = 1e-4, 1e-5  # float32 rounding, through a few layers


def _np(x):
    return np.asarray(ops.convert_to_numpy(x), dtype=np.float64)


def _close(a, b) -> bool:
    a, b = _np(a), _np(b)
    return a.shape == b.shape and np.allclose(a, b, rtol=RTOL, atol=ATOL)


def _gap(a, b) -> float:
    a, b = _np(a), _np(b)
    return float(np.max(np.abs(a - b))) if a.shape == b.shape else float("inf")


def _diagnose(got, expected, wrong: dict, what: str):
    """Raise with the name of the first wrong variant ``got`` matches, or with the difference.
    A wrong variant within rounding of the right value (a fresh network can make a mistake
    small) names the mistake only if ``got`` is nearer to it than to the right value."""
    for mistake, value in wrong.items():
        if _close(got, value) and _gap(got, value) < _gap(got, expected):
            raise AssertionError(f"{what}: {mistake}")
    if _close(got, expected):
        return
    got, expected = _np(got), _np(expected)
    if not np.all(np.isfinite(got)):
        raise AssertionError(f"{what} is not finite (NaN or infinity): a logarithm of 0 or of a "
                             f"negative number? The decoder gives logits, not probabilities.")
    if got.shape != expected.shape:
        raise AssertionError(f"{what}: shape {got.shape}, expected {expected.shape}.")
    raise AssertionError(f"{what} differs: largest difference "
                         f"{np.max(np.abs(got - expected)):.3g} (expected values like "
                         f"{np.ravel(expected)[:3].round(4).tolist()}, got "
                         f"{np.ravel(got)[:3].round(4).tolist()}).")


def _passed(message: str):
    print(f"passed: {message}")


def _inputs(arch: Architecture, batch: int = 8, seed: int = 0):
    """Images in [0, 1] with pixels near 0 and 1 (like digits), labels, and a generator of noise."""
    rng = np.random.default_rng(seed)
    x = rng.beta(0.3, 0.3, (batch,) + arch.image_shape).astype(np.float32)
    labels = (np.arange(batch) % arch.num_classes).astype(np.int32)
    return x, labels, rng


def _tensors(*arrays):
    import tensorflow as tf

    return [tf.constant(a) for a in arrays]


def _vae(arch: Architecture, beta: float = 1.0, seed: int = 0) -> ConditionalVAE:
    return ConditionalVAE(arch.image_shape, arch.num_classes, arch.latent_dim, arch.base_filters,
                          beta=beta, seed=seed)


# (a) reparameterize ------------------------------------------------------------------------------

def reparameterize(fn):
    """Check ``fn(mean, log_var, eps) -> z`` against :meth:`ConditionalVAE.reparameterize`: the
    values, and that the gradient reaches ``mean`` and ``log_var``."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    mean, log_var, eps = (tf.constant(rng.normal(size=(6, 4)), "float32") for _ in range(3))
    expected = _vae(Architecture((28, 28, 1), 10, 4)).reparameterize(mean, log_var, eps)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([mean, log_var])
        z = fn(mean, log_var, eps)
        total = ops.sum(ops.convert_to_tensor(z))
    if not _close(z, fn(mean, log_var, eps)):
        raise AssertionError("z changes from one call to the next: use the eps passed in, do "
                             "not draw new noise.")
    sigma = ops.exp(0.5 * log_var)
    _diagnose(z, expected, {
        "uses the variance exp(log_var) where the standard deviation exp(log_var / 2) belongs.":
            mean + ops.exp(log_var) * eps,
        "uses log_var itself as the standard deviation: take exp(log_var / 2).":
            mean + log_var * eps,
        "leaves out the noise: z must be mean + sigma * eps.": mean,
        "leaves out the mean: z must be mean + sigma * eps.": sigma * eps,
    }, "z")
    grads = [tape.gradient(total, v) for v in (mean, log_var)]
    cut = [name for name, g in zip(("mean", "log_var"), grads) if g is None]
    if cut:
        raise AssertionError(f"z has the right values, but no gradient reaches {' or '.join(cut)}:"
                             f" compute it with keras.ops (or TensorFlow), not NumPy.")
    _diagnose(grads[1], 0.5 * sigma * eps, {}, "the gradient of sum(z) with respect to log_var")
    _passed("z = mean + exp(log_var / 2) * eps, and its gradient reaches mean and log_var.")


# (b) the conditioning ------------------------------------------------------------------------------

def _copy_weights(source: keras.Model, target: keras.Model, what: str):
    got = [tuple(w.shape) for w in target.weights]
    expected = [tuple(w.shape) for w in source.weights]
    if got != expected:
        dense = [s for s in expected if len(s) == 2]
        raise AssertionError(
            f"{what} has weights of shapes {got}, expected {expected}. The first dense layer "
            f"should take {dense[0][0] if dense else '?'} inputs: the label's one-hot "
            f"({source.inputs[-1].shape[-1]} values) joined to the "
            f"{'image features' if what == 'the encoder' else 'latent z'}, in that order.")
    target.set_weights(source.get_weights())


def _compare_network(student, package: keras.Model, inputs: list, label_position: int, what: str):

    _copy_weights(package, student, what)
    def outputs(model, inputs):
        out = model(inputs, training=False)
        return list(out) if isinstance(out, (list, tuple)) else [out]

    expected, got = outputs(package, inputs), outputs(student, inputs)
    if len(got) != len(expected):
        raise AssertionError(f"{what} gives {len(got)} outputs, expected {len(expected)}.")
    other = list(inputs)
    other[label_position] = np.roll(inputs[label_position], 1, axis=0)
    ignores_label = all(_close(g, e) for g, e in zip(outputs(student, other), got))
    if ignores_label:
        raise AssertionError(f"{what}'s output does not depend on the label: join the one-hot "
                             f"label to the {'image features' if what == 'the encoder' else 'z'}.")
    for g, e in zip(got, expected):
        if not _close(g, e):
            raise AssertionError(
                f"{what} has the right weights but another output: the label is joined in the "
                f"wrong place or order (join [features, label] just before the first dense "
                f"layer), or a layer differs (largest difference "
                f"{np.max(np.abs(_np(g) - _np(e))):.3g}).")


def encoder(build, arch: Architecture):
    """Check ``build(arch) -> keras.Model([image, label], [z_mean, z_log_var])`` against the
    encoder of :class:`ConditionalVAE` (weights copied in, the same images and labels)."""
    x, labels, _ = _inputs(arch)
    y = np.eye(arch.num_classes, dtype=np.float32)[labels]
    _compare_network(build(arch), _vae(arch).encoder, [x, y], 1, "the encoder")
    _passed("the encoder's mean and log-variance equal the package's, and depend on the label.")


def decoder(build, arch: Architecture):
    """Check ``build(arch) -> keras.Model([z, label], logits)`` against the decoder of
    :class:`ConditionalVAE`."""
    _, labels, rng = _inputs(arch)
    z = rng.normal(size=(len(labels), arch.latent_dim)).astype(np.float32)
    y = np.eye(arch.num_classes, dtype=np.float32)[labels]
    _compare_network(build(arch), _vae(arch).decoder, [z, y], 1, "the decoder")
    _passed("the decoder's logits equal the package's, and depend on the label.")


# (c) the VAE loss ---------------------------------------------------------------------------------

def vae_loss(fn, arch: Architecture | None = None, beta: float = 4.0):
    """Check ``fn(x, logits, mean, log_var, beta) -> (loss, reconstruction, kl)`` (the loss a
    scalar, the two terms ``(B,)`` nats per image) against :class:`ConditionalVAE`'s
    ``neg_log_likelihood``, ``kl_divergence`` and ``objective``."""
    arch = arch or Architecture((28, 28, 1), 10, 8)
    x, _, rng = _inputs(arch)
    logits = rng.normal(0, 2, x.shape).astype(np.float32)
    mean, log_var = (rng.normal(size=(len(x), arch.latent_dim)).astype(np.float32)
                     for _ in range(2))
    import tensorflow as tf

    if beta == 1:
        raise ValueError("Check the loss with beta != 1, or a missing beta goes unseen.")
    vae = _vae(arch, beta=beta)
    recon, kl = vae.neg_log_likelihood(x, logits), vae.kl_divergence(mean, log_var)
    inputs = _tensors(logits, mean, log_var)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        loss, got_recon, got_kl = fn(tf.constant(x), *inputs, beta)
        total = ops.convert_to_tensor(loss)
    cut = [n for n, g in zip(("logits", "mean", "log_var"), tape.gradient(total, inputs))
           if g is None]
    pixels = int(np.prod(arch.image_shape))
    probs = ops.sigmoid(logits)
    _diagnose(got_recon, recon, {
        "the reconstruction term reads the decoder's logits as probabilities: use "
        "softplus(logits) - x * logits (or a cross-entropy with from_logits=True).":
            ops.sum(ops.reshape(keras.losses.binary_crossentropy(x, logits), (len(x), -1)), 1),
        "the reconstruction term is averaged over the pixels: sum it over each image's pixels.":
            recon / pixels,
        "the reconstruction term has the wrong sign: it is -log p(x|z), positive.": -recon,
        "the reconstruction term swaps x and the prediction.":
            ops.sum(ops.reshape(-(probs * ops.log(ops.clip(x, 1e-7, 1)) + (1 - probs)
                                  * ops.log(ops.clip(1 - x, 1e-7, 1))), (len(x), -1)), 1),
    }, "the reconstruction term")
    _diagnose(got_kl, kl, {
        "the KL term has its sign flipped: KL = 0.5 * sum(exp(log_var) + mean^2 - 1 - log_var) "
        "is never negative.": -kl,
        "the KL term uses the standard deviation where the variance belongs: exp(log_var), not "
        "exp(log_var / 2).": 0.5 * ops.sum(ops.exp(0.5 * log_var) + mean ** 2 - 1 - log_var, 1),
        "the KL term leaves out the factor 1/2.": 2 * kl,
        "the KL term is averaged over the latent dimensions: sum them.": kl / arch.latent_dim,
    }, "the KL term")
    _diagnose(loss, vae.objective(recon, kl), {
        "the KL term is missing from the loss.": ops.mean(recon),
        "the KL term is subtracted: the loss is reconstruction + beta * KL.":
            ops.mean(recon - beta * kl),
        "beta is missing: the loss is reconstruction + beta * KL.": ops.mean(recon + kl),
        "beta multiplies the reconstruction term, not the KL term.": ops.mean(beta * recon + kl),
        "the loss is summed over the batch: take the mean over images.":
            ops.sum(recon + beta * kl),
    }, "the loss")
    if cut:
        raise AssertionError(f"the loss has the right value, but no gradient reaches "
                             f"{', '.join(cut)}: compute it with keras.ops, not NumPy.")
    _passed(f"reconstruction (Bernoulli, from logits), KL (closed form) and loss = mean(recon + "
            f"{beta:g} KL) equal the package's.")


# The VAE's train step ------------------------------------------------------------------------------

def vae_step(model_class, arch: Architecture, beta: float = 4.0, learning_rate: float = 0.05):
    """Check ``model_class(arch, beta)``, a ``keras.Model`` whose ``encoder`` and ``decoder`` are
    the networks above and whose ``train_step((x, labels), eps=...)`` returns ``{"loss": ...}``,
    against :class:`ConditionalVAE`: the loss and every weight after one SGD step."""
    if beta == 1:
        raise ValueError("Check the step with beta != 1, or a missing beta goes unseen.")
    x, labels, rng = _inputs(arch)
    eps = rng.normal(size=(len(x), arch.latent_dim)).astype(np.float32)
    x, labels, eps = _tensors(x, labels, eps)  # as fit() gives them
    package, student = _vae(arch, beta=beta), model_class(arch, beta)
    for head in ("z_mean", "z_log_var"):  # codes away from the prior, so that KL is not ~0
        bias = package.encoder.get_layer(head).bias
        bias.assign(rng.normal(0, 1, tuple(bias.shape)).astype(np.float32))
    for part in ("encoder", "decoder"):
        _copy_weights(getattr(package, part), getattr(student, part), f"the {part}")
    package.compile(optimizer=keras.optimizers.SGD(learning_rate))
    student.compile(optimizer=keras.optimizers.SGD(learning_rate))
    saved = package.get_weights()  # a forward pass in training mode moves the batch norms
    recon, kl = package.losses_per_image(x, labels, training=True, eps=eps)
    package.set_weights(saved)
    expected = package.train_step((x, labels), eps=eps)["loss"]
    start = student.get_weights()  # a fresh decoder hardly depends on z: a loss computed with
    first = _np(student.train_step((x, labels), eps=eps)["loss"])  # other noise can look right,
    student.set_weights(start)  # but the same step twice from the same weights gives one loss
    got = student.train_step((x, labels), eps=eps)
    if not np.allclose(_np(got["loss"]), first, rtol=1e-6, atol=0):
        raise AssertionError("the step gives another loss each time from the same weights and "
                             "eps: it draws its own noise. Use the eps passed in; draw only when "
                             "it is None (as fit() calls it).")
    _diagnose(got["loss"], expected, {
        "the loss leaves out the KL term.": ops.mean(recon),
        "the loss leaves out beta.": ops.mean(recon + kl),
        "the KL term is subtracted.": ops.mean(recon - beta * kl),
    }, "the loss of the step")
    for part in ("encoder", "decoder"):
        for w_got, w_exp in zip(getattr(student, part).weights, getattr(package, part).weights):
            if not _close(w_got, w_exp):
                raise AssertionError(
                    f"the loss is right but after one step {part} weight {w_got.name} differs "
                    f"from the package's: take the gradient of the loss with respect to every "
                    f"trainable variable, call the networks with training=True, and apply it "
                    f"with self.optimizer.")
    _passed("the loss and every weight after one SGD step equal the package's.")


# (d) the AC-GAN's train step -----------------------------------------------------------------------

def _gan(arch: Architecture, **kwargs) -> ACGAN:
    return ACGAN(arch.image_shape, arch.num_classes, arch.latent_dim, arch.base_filters,
                 projection=False, fake_class_loss=False, dropout=0.0, **kwargs)


def acgan_step(model_class, arch: Architecture, learning_rate: float = 0.05):
    """Check ``model_class(arch)``, a ``keras.Model`` with a ``generator``, a two-headed
    ``discriminator`` (real/fake logit, class logits), optimizers ``d_optimizer`` and
    ``g_optimizer``, and ``train_step((x, labels), noise=(z_d, z_g))`` returning ``{"d_loss":
    ..., "g_loss": ...}``, against :class:`ACGAN` without a projection head, class term on
    generated images or dropout: both losses, and every weight after one SGD step of each
    player (the optimizers are replaced by SGD for the check, the generator's at half the
    rate, so that each network must be updated by its own)."""
    x, labels, rng = _inputs(arch)
    x = 2 * x - 1  # the GAN's range
    z_d, z_g = (rng.normal(size=(len(x), arch.latent_dim)).astype(np.float32) for _ in range(2))
    x, labels, z_d, z_g = _tensors(x, labels, z_d, z_g)
    package, student = _gan(arch), model_class(arch)
    for part in ("generator", "discriminator"):
        _copy_weights(getattr(package, part), getattr(student, part), f"the {part}")
    package.compile(g_optimizer=keras.optimizers.SGD(learning_rate / 2),
                    d_optimizer=keras.optimizers.SGD(learning_rate))
    student.d_optimizer = keras.optimizers.SGD(learning_rate)
    student.g_optimizer = keras.optimizers.SGD(learning_rate / 2)

    y = package._onehot(labels)
    ce = package._class_loss  # the mean cross-entropy of class logits

    def bce(logit, target):  # the mean binary cross-entropy of logits against 0 or 1
        return ops.mean(ops.softplus(-logit) if target else ops.softplus(logit))

    saved = package.get_weights()  # a forward pass in training mode moves the batch norms
    real_logit, real_cls = package.judge(x, y, training=True)
    fake_logit, fake_cls = package.judge(package.generator([z_d, y], training=True), y,
                                         training=True)
    g_logit_before, g_cls_before = package.judge(package.generator([z_g, y], training=True), y,
                                                 training=True)
    adversarial = bce(real_logit, 1) + bce(fake_logit, 0)
    d_wrong = {
        "the class term is applied to generated images too: the discriminator learns classes "
        "from real images only.": adversarial + ce(real_cls, labels) + ce(fake_cls, labels),
        "the class term on real images is missing.": adversarial,
        "real and generated images have swapped targets: real -> 1, generated -> 0.":
            bce(real_logit, 0) + bce(fake_logit, 1) + ce(real_cls, labels),
        "the class term is computed on generated images instead of real ones.":
            adversarial + ce(fake_cls, labels),
    }
    package.set_weights(saved)
    d_loss = package.discriminator_step(x, y, labels, z_d)[0]
    saved = package.get_weights()
    logit, cls = package.judge(package.generator([z_g, y], training=True), y, training=True)
    g_wrong = {
        "the generator uses the saturating loss log(1 - D(G(z))); use -log D(G(z)), whose "
        "gradient does not vanish when the discriminator rejects the fakes.":
            -ops.mean(ops.softplus(logit)) + ce(cls, labels),
        "the class term is missing from the generator's loss.": bce(logit, 1),
        "the generator's target is 0: it should want its images called real (1).":
            bce(logit, 0) + ce(cls, labels),
        "the generator's loss uses the discriminator from before its step: update the "
        "discriminator first, then judge fresh fakes with it.":
            bce(g_logit_before, 1) + ce(g_cls_before, labels),
        "the generator's step reuses the discriminator's noise: use the second noise (z_g).":
            bce(package.judge(package.generator([z_d, y], training=True), y, training=True)[0],
                1) + ce(package.judge(package.generator([z_d, y], training=True), y,
                                      training=True)[1], labels),
    }
    package.set_weights(saved)
    g_loss = package.generator_step(y, labels, z_g)
    got = student.train_step((x, labels), noise=(z_d, z_g))
    for part, loss, wrong in (("discriminator", d_loss, d_wrong), ("generator", g_loss, g_wrong)):
        # the generator's loss is judged by the stepped discriminator: check that step first
        _diagnose(got[f"{part[0]}_loss"], loss, wrong, f"the {part}'s loss")
        for w_got, w_exp in zip(getattr(student, part).weights, getattr(package, part).weights):
            if not _close(w_got, w_exp):
                raise AssertionError(
                    f"the {part}'s loss is right, but after the step the {part}'s weight "
                    f"{w_got.name} differs from the package's: each optimizer updates only its "
                    f"own network's trainable variables, each from the gradient of its own loss.")
    _passed("the discriminator's and the generator's losses, and every weight after one SGD "
            "step of each, equal the package's.")
