"""The conditional VAE: encoder q(z|x, y), prior N(0, I), decoder p(x|z, y), trained on the
negative ELBO of the paper's Eq. (1), estimated as in Eqs. (2)-(3)."""
from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from .architecture import build_downsampler, build_upsampler
from .conditional import _Conditional, _loss_scaled, gradient_step

LIKELIHOODS = ("bernoulli", "gaussian")


@keras.saving.register_keras_serializable(package="gencomp")
class ConditionalVAE(_Conditional):
    """A conditional VAE: encoder q(z|x, y), prior N(0, I), decoder p(x|z, y).

    The loss per image is the negative ELBO of Eq. (1), ``reconstruction + beta * KL``, where the
    reconstruction term ``-log p(x|z, y)`` is averaged over ``num_samples`` reparameterised draws
    of z (Eqs. (2)-(3)) and the KL term is computed in closed form for the diagonal Gaussian.

    Args:
        image_shape: ``(H, W, C)`` of the images.
        num_classes: number of classes (or attributes, for multi-hot labels).
        latent_dim: size of z.
        base_filters: width of the first convolution.
        likelihood: ``"bernoulli"`` (pixels in [0, 1] read as probabilities: MNIST) or
            ``"gaussian"`` (colour images; mean from the decoder, one shared standard deviation).
        gaussian_sigma: the Gaussian's standard deviation; ``None`` learns it (one scalar).
        num_samples: L, reparameterised samples per image in the reconstruction term.
        beta: weight of the KL term (1: the ELBO itself).
        precision: Keras dtype policy (``"float32"``, ``"mixed_bfloat16"``, ``"mixed_float16"``).
        seed: seed of the reparameterisation noise.

    Metrics (per image, in nats): ``loss``, ``reconstruction``, ``kl`` and ``elbo``
    (``-(reconstruction + kl)``, whatever ``beta`` is).
    """

    value_range = (0.0, 1.0)

    def __init__(self, image_shape=(28, 28, 1), num_classes=10, latent_dim=32, base_filters=32,
                 likelihood="bernoulli", gaussian_sigma=None, num_samples=1, beta=1.0,
                 precision="float32", seed=0, name="conditional_vae", **kwargs):
        super().__init__(name=name, **kwargs)
        self._init_common(image_shape, num_classes, latent_dim, base_filters, precision, seed)
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {', '.join(LIKELIHOODS)}, got "
                             f"{likelihood!r}.")
        if int(num_samples) < 1:
            raise ValueError(f"num_samples (L) must be at least 1, got {num_samples!r}.")
        if float(beta) < 0:
            raise ValueError(f"beta must be non-negative, got {beta!r}.")
        if gaussian_sigma is not None and float(gaussian_sigma) <= 0:
            raise ValueError(f"gaussian_sigma must be positive (or None to learn it), got "
                             f"{gaussian_sigma!r}.")
        self.likelihood = likelihood
        self.gaussian_sigma = None if gaussian_sigma is None else float(gaussian_sigma)
        self.num_samples = int(num_samples)
        self.beta = float(beta)
        arch = self.architecture
        self.encoder = build_downsampler(arch, "encoder", {"z_mean": arch.latent_dim,
                                                           "z_log_var": arch.latent_dim},
                                         label_input=True, precision=self.precision)
        self.decoder = build_upsampler(arch, "decoder", None, precision=self.precision)
        init = 0.0 if self.gaussian_sigma is None else math.log(self.gaussian_sigma)
        self.log_sigma = self.add_weight(shape=(), initializer=keras.initializers.Constant(init),
                                         trainable=self.gaussian_sigma is None
                                         and likelihood == "gaussian",
                                         dtype="float32", name="log_sigma")
        self.trackers = {k: keras.metrics.Mean(name=k)
                         for k in ("loss", "reconstruction", "kl", "elbo")}
        self.build_all()

    def get_config(self):
        config = super().get_config()
        config.update(likelihood=self.likelihood, gaussian_sigma=self.gaussian_sigma,
                      num_samples=self.num_samples, beta=self.beta)
        return config

    def compile(self, optimizer=None, learning_rate=1e-3, **kwargs):
        """Adam (``learning_rate``) unless an optimizer is given; loss-scaled under
        ``mixed_float16``."""
        optimizer = optimizer or keras.optimizers.Adam(learning_rate)
        if self.precision == "mixed_float16":
            optimizer = _loss_scaled(keras.optimizers.get(optimizer))
        super().compile(optimizer=optimizer, **kwargs)

    def get_compile_config(self):
        if not self.compiled:
            return {}
        opt = self.optimizer
        inner = getattr(opt, "inner_optimizer", opt)
        return {"optimizer": keras.optimizers.serialize(inner)}

    def compile_from_config(self, config):
        self.compile(optimizer=keras.optimizers.deserialize(config["optimizer"]))
        self.optimizer.build(self.trainable_variables)  # so that its saved state loads

    # The parts of the loss -------------------------------------------------------------------

    def encode(self, x, labels, training=False):
        """``(z_mean, z_log_var)`` of q(z|x, y), each ``(B, latent_dim)`` float32."""
        x = ops.convert_to_tensor(x, dtype="float32")
        mean, log_var = self.encoder([x, self._onehot(labels)], training=training)
        return mean, log_var

    def decode_logits(self, z, labels, training=False):
        """Decoder output before the likelihood's link: logits (Bernoulli) or pre-sigmoid mean."""
        z = ops.convert_to_tensor(z, dtype="float32")
        return self.decoder([z, self._onehot(labels)], training=training)

    def neg_log_likelihood(self, x, out):
        """``-log p(x|z)`` summed over the pixels of each image, ``(B,)`` nats."""
        x = ops.cast(x, "float32")
        if self.likelihood == "bernoulli":
            # -[x log s(o) + (1 - x) log(1 - s(o))] = softplus(o) - x o, exact and stable
            per_pixel = ops.softplus(out) - x * out
        else:
            mean = ops.sigmoid(out)
            log_sigma = ops.cast(self.log_sigma, "float32")
            per_pixel = (0.5 * ops.square((x - mean) / ops.exp(log_sigma)) + log_sigma
                         + 0.5 * math.log(2 * math.pi))
        return ops.sum(ops.reshape(per_pixel, (ops.shape(x)[0], -1)), axis=1)

    def reparameterize(self, mean, log_var, eps=None):
        """``num_samples`` (L) draws from q(z|x, y) for each image, ``z = mean + sigma * eps``
        with ``eps ~ N(0, I)`` (Eq. (3)), so that the gradient flows through ``mean`` and
        ``sigma``: ``(L * B, latent_dim)``, the L draws of the batch one after another. ``eps``
        ``(L, B, latent_dim)`` (or ``(B, latent_dim)`` when L is 1) replaces the draw."""
        b, d, big_l = ops.shape(mean)[0], self.latent_dim, self.num_samples
        if eps is None:
            eps = keras.random.normal((big_l, b, d), seed=self.seed_generator)
        eps = ops.reshape(ops.convert_to_tensor(eps, dtype="float32"), (big_l, b, d))
        z = ops.expand_dims(mean, 0) + ops.exp(0.5 * log_var)[None] * eps  # (L, B, D)
        return ops.reshape(z, (big_l * b, d))

    def kl_divergence(self, mean, log_var):
        """``KL(q(z|x, y) || N(0, I))`` of each image in closed form, ``(B,)`` nats."""
        return 0.5 * ops.sum(ops.exp(log_var) + ops.square(mean) - 1.0 - log_var, axis=1)

    def losses_per_image(self, x, labels, training=False, eps=None):
        """The two terms of the negative ELBO of each image, ``(reconstruction, KL)``, ``(B,)``
        nats each: ``-log p(x|z, y)`` averaged over the L draws of :meth:`reparameterize`
        (Eqs. (2)-(3); ``eps`` as there), and :meth:`kl_divergence`."""
        x = ops.convert_to_tensor(x, dtype="float32")
        mean, log_var = self.encode(x, labels, training=training)  # (B, D) each
        z = self.reparameterize(mean, log_var, eps)  # (L * B, D)
        y, big_l = self._onehot(labels), self.num_samples
        if big_l > 1:  # the batch once per draw
            x, y = ops.tile(x, (big_l, 1, 1, 1)), ops.tile(y, (big_l, 1))
        out = self.decode_logits(z, y, training=training)  # (L * B, H, W, C)
        recon = ops.mean(ops.reshape(self.neg_log_likelihood(x, out), (big_l, -1)), axis=0)
        return recon, self.kl_divergence(mean, log_var)

    def objective(self, recon, kl):
        """What training minimises: the batch's mean of ``reconstruction + beta * KL`` (the
        negative ELBO when ``beta`` is 1)."""
        return ops.mean(recon + self.beta * kl)

    def call(self, inputs, training=False):
        """Reconstruct ``(x, labels)`` through the posterior mean: images in [0, 1]."""
        x, labels = inputs
        mean, _ = self.encode(x, labels, training=training)
        return self._mean_image(self.decode_logits(mean, labels, training=training))

    def _mean_image(self, out):
        return ops.sigmoid(out)

    def _update(self, recon, kl, loss):
        return self._track({"loss": loss, "reconstruction": ops.mean(recon), "kl": ops.mean(kl),
                            "elbo": -ops.mean(recon + kl)})

    def train_step(self, data, eps=None):
        """One gradient step on a batch ``(x, labels)``; ``eps`` as in :meth:`reparameterize`."""
        import tensorflow as tf

        x, labels = data[0], data[1]
        with tf.GradientTape() as tape:
            recon, kl = self.losses_per_image(x, labels, training=True, eps=eps)
            loss = self.objective(recon, kl)
        gradient_step(tape, self.optimizer, loss, self.trainable_variables)
        return self._update(recon, kl, loss)

    def test_step(self, data):
        x, labels = data[0], data[1]
        recon, kl = self.losses_per_image(x, labels, training=False)
        return self._update(recon, kl, self.objective(recon, kl))

    # Numpy helpers ---------------------------------------------------------------------------

    def _from_latent(self, z, labels):
        out = self.decode_logits(ops.convert_to_tensor(z), ops.convert_to_tensor(labels))
        return np.asarray(ops.convert_to_numpy(self._mean_image(out)), np.float32)

    def reconstruct(self, x, labels, sample: bool = False, seed: int | None = None) -> np.ndarray:
        """Encode then decode: the decoder's mean image for the posterior mean (or a draw).

        Args:
            x: images ``(B, H, W, C)`` in [0, 1].
            labels: their classes.
            sample: decode a draw from q(z|x, y) rather than its mean.
            seed: seed of that draw.

        Returns:
            float32 images ``(B, H, W, C)`` in [0, 1].
        """
        z, log_var = self.encode_numpy(x, labels)
        if sample:
            z = z + np.exp(0.5 * log_var) * np.random.default_rng(seed).standard_normal(z.shape)
        return self.sample(z=z.astype(np.float32), labels=self.check_labels(labels, n=len(z)))

    def encode_numpy(self, x, labels) -> tuple[np.ndarray, np.ndarray]:
        """``(z_mean, z_log_var)`` of q(z|x, y) as numpy arrays."""
        x = self.check_images(x)
        labels = self.check_labels(labels, n=len(x))
        mean, log_var = self.encode(ops.convert_to_tensor(x), ops.convert_to_tensor(labels))
        return ops.convert_to_numpy(mean), ops.convert_to_numpy(log_var)

    def elbo(self, x, labels, batch_size: int = 500) -> float:
        """Mean ELBO of images ``x`` in nats per image (higher is better)."""
        x = self.check_images(x)
        labels = self.check_labels(labels, n=len(x))
        total = 0.0
        for i in range(0, len(x), batch_size):
            recon, kl = self.losses_per_image(ops.convert_to_tensor(x[i:i + batch_size]),
                                              ops.convert_to_tensor(labels[i:i + batch_size]))
            total += float(ops.convert_to_numpy(ops.sum(recon + kl)))
        return -total / len(x)
