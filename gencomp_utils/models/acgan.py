"""The auxiliary-classifier GAN: a generator G(z, y) and a discriminator that judges real against
generated (the game of the paper's Eq. (6)) and names the class."""
from __future__ import annotations

import keras
import numpy as np
from keras import ops

from ..fast_layers import MaskDropout
from .architecture import build_downsampler, build_upsampler
from .conditional import _Conditional, _loss_scaled, gradient_step

GAN_LOSSES = ("non_saturating", "minimax")


@keras.saving.register_keras_serializable(package="gencomp")
class ACGAN(_Conditional):
    """An auxiliary-classifier GAN: G(z, y) and a discriminator with two heads.

    The discriminator's ``real_fake`` head is the D of Eq. (6) (a logit; the sigmoid is in the
    loss); its ``class`` head names the class. The discriminator minimises ``BCE(real, 1) +
    BCE(fake, 0) + class_weight * CE(real)`` (ascending Eq. (8)); the generator minimises
    ``-log D(G(z, y))`` (non-saturating) or ``log(1 - D(G(z, y)))`` (Eq. (7)), plus
    ``class_weight * CE(fake)``. Generated images use the real batch's labels.

    Args:
        image_shape, num_classes, latent_dim, base_filters: as for :class:`ConditionalVAE`.
        gan_loss: ``"non_saturating"`` or ``"minimax"``.
        class_weight: weight of the class terms.
        fake_class_loss: also train the discriminator's class head on generated images (the
            original AC-GAN; off by default: the generator then learns to fool that head).
        projection: add a projection head, so that the real/fake score judges an image *as
            the requested class* (a wrong digit is then fake), not only as a digit. With
            ``projection=False, fake_class_loss=True`` this is the original AC-GAN (Odena et al.,
            2017); on MNIST at classroom budgets its samples drifted to wrong digits (78%
            right after 1,200 steps), while the default reached 98.6% after 2,000.
        label_smoothing: one-sided smoothing: the discriminator's target for real images is
            ``1 - label_smoothing``.
        dropout: dropout in the discriminator.
        precision: Keras dtype policy.
        seed: seed of the generator's noise.
        fast_layers: the discriminator's dropout in its faster CPU form (the same function;
            :mod:`gencomp_utils.fast_layers`): pass ``devices.choose(...).fast_layers``.
        spectral_norm: spectral normalisation of the discriminator's weights (a remedy for
            unstable training, notebook 05).

    With ``num_classes=1`` (every label 0) it is an unconditional GAN: the label is a constant,
    and the class terms are the cross-entropy of one class, always 0.

    Trains on images in [-1, 1] (the generator ends in tanh); every sampling helper returns
    images in [0, 1]. Metrics: ``d_loss``, ``g_loss``, ``d_class`` (class loss on real images),
    ``real_score`` and ``fake_score`` (mean D(x) and D(G(z))), ``class_accuracy`` (of the
    discriminator on real images).
    """

    value_range = (-1.0, 1.0)

    def __init__(self, image_shape=(28, 28, 1), num_classes=10, latent_dim=32, base_filters=32,
                 gan_loss="non_saturating", class_weight=1.0, fake_class_loss=False,
                 projection=True, label_smoothing=0.0, dropout=0.25, precision="float32",
                 seed=0, fast_layers=False, spectral_norm=False, name="acgan", **kwargs):
        super().__init__(name=name, **kwargs)
        self._init_common(image_shape, num_classes, latent_dim, base_filters, precision, seed)
        if gan_loss not in GAN_LOSSES:
            raise ValueError(f"gan_loss must be one of {', '.join(GAN_LOSSES)}, got {gan_loss!r}.")
        if not 0.0 <= float(label_smoothing) < 0.5:
            raise ValueError(f"label_smoothing must be in [0, 0.5), got {label_smoothing!r}.")
        self.gan_loss = gan_loss
        self.class_weight = float(class_weight)
        self.fake_class_loss = bool(fake_class_loss)
        self.projection = bool(projection)
        self.label_smoothing = float(label_smoothing)
        self.dropout = float(dropout)
        self.fast_layers = bool(fast_layers)
        self.spectral_norm = bool(spectral_norm)
        arch = self.architecture
        self.generator = build_upsampler(arch, "generator", "tanh", precision=self.precision)
        heads = {"real_fake": 1, "class": arch.num_classes}
        if self.projection:
            heads["projection"] = arch.num_classes
        self.discriminator = build_downsampler(arch, "discriminator", heads, label_input=False,
                                               precision=self.precision, dropout=self.dropout,
                                               dropout_layer=MaskDropout if self.fast_layers
                                               else keras.layers.Dropout,
                                               spectral_norm=self.spectral_norm)
        self.trackers = {k: keras.metrics.Mean(name=k) for k in (
            "d_loss", "g_loss", "d_class", "real_score", "fake_score", "class_accuracy")}
        self.g_optimizer = self.d_optimizer = None
        self.build_all()

    def get_config(self):
        config = super().get_config()
        config.update(gan_loss=self.gan_loss, class_weight=self.class_weight,
                      fake_class_loss=self.fake_class_loss, projection=self.projection,
                      label_smoothing=self.label_smoothing, dropout=self.dropout,
                      fast_layers=self.fast_layers, spectral_norm=self.spectral_norm)
        return config

    def compile(self, g_optimizer=None, d_optimizer=None, learning_rate=2e-4, **kwargs):
        """Both optimizers go here (default: Adam (``learning_rate``, beta_1=0.5) each).

        Args:
            g_optimizer: the generator's optimizer.
            d_optimizer: the discriminator's optimizer.
            learning_rate: step size of the default optimizers.
            **kwargs: passed to ``keras.Model.compile`` (e.g. ``jit_compile``).
        """
        kwargs.pop("optimizer", None)
        super().compile(optimizer=None, **kwargs)
        g = keras.optimizers.get(g_optimizer or keras.optimizers.Adam(learning_rate, beta_1=0.5))
        d = keras.optimizers.get(d_optimizer or keras.optimizers.Adam(learning_rate, beta_1=0.5))
        if self.precision == "mixed_float16":
            g, d = _loss_scaled(g), _loss_scaled(d)
        self.g_optimizer, self.d_optimizer = g, d
        self.g_optimizer.build(self.generator.trainable_variables)
        self.d_optimizer.build(self.discriminator.trainable_variables)

    def get_compile_config(self):
        if self.g_optimizer is None:
            return {}
        inner = [getattr(o, "inner_optimizer", o) for o in (self.g_optimizer, self.d_optimizer)]
        return {"g_optimizer": keras.optimizers.serialize(inner[0]),
                "d_optimizer": keras.optimizers.serialize(inner[1])}

    def compile_from_config(self, config):
        self.compile(g_optimizer=keras.optimizers.deserialize(config["g_optimizer"]),
                     d_optimizer=keras.optimizers.deserialize(config["d_optimizer"]))

    @property
    def optimizers(self) -> dict:
        """``{"generator": g_optimizer, "discriminator": d_optimizer}``."""
        return {"generator": self.g_optimizer, "discriminator": self.d_optimizer}

    def call(self, inputs, training=False):
        """Generate from ``(z, labels)``: images in [-1, 1] (the training range)."""
        z, labels = inputs
        z = ops.convert_to_tensor(z, dtype="float32")
        return self.generator([z, self._onehot(labels)], training=training)

    def _class_loss(self, logits, labels):
        if len(labels.shape) == 1:
            per = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        else:
            per = ops.mean(ops.softplus(logits) - ops.cast(labels, "float32") * logits, axis=-1)
        return ops.mean(per)

    def judge(self, x, y_onehot, training=False):
        """The discriminator on images ``x`` (in [-1, 1]) asked about classes ``y_onehot``.

        Returns:
            ``(real/fake logit (B, 1), class logits (B, K))``; with ``projection`` the logit
            also depends on the class: ``psi(phi(x)) + y^T V phi(x)`` (Miyato and Koyama, 2018).
        """
        out = self.discriminator(x, training=training)
        logit, cls = out[0], out[1]
        if self.projection:
            logit = logit + ops.sum(y_onehot * ops.cast(out[2], "float32"), axis=-1,
                                    keepdims=True)
        return logit, cls

    def discriminator_loss(self, real_logit, real_cls, fake_logit, fake_cls, labels):
        """``(loss, class term on real images)``: ``BCE(real, 1 - smoothing) + BCE(fake, 0)``,
        Eq. (8) to ascend written as a loss to descend, plus ``class_weight`` times the class
        cross-entropy of real images (and of generated ones with ``fake_class_loss``)."""
        s = self.label_smoothing  # softplus(-l) = -log sigmoid(l) = -log D
        adversarial = (ops.mean((1 - s) * ops.softplus(-real_logit) + s * ops.softplus(real_logit))
                       + ops.mean(ops.softplus(fake_logit)))
        d_class = self._class_loss(real_cls, labels)
        classes = d_class + (self._class_loss(fake_cls, labels) if self.fake_class_loss else 0.0)
        return adversarial + self.class_weight * classes, d_class

    def generator_loss(self, logit, cls, labels):
        """``-log D(G(z))`` (non-saturating) or ``log(1 - D(G(z)))`` (Eq. (7)), plus
        ``class_weight`` times the class cross-entropy of the generated images."""
        if self.gan_loss == "non_saturating":
            adversarial = ops.mean(ops.softplus(-logit))
        else:
            adversarial = -ops.mean(ops.softplus(logit))
        return adversarial + self.class_weight * self._class_loss(cls, labels)

    def train_step(self, data, noise=None):
        """One step of each player on a batch ``(x, labels)``: the discriminator, then the
        generator. ``noise``, two ``(B, latent_dim)`` arrays (one per player), replaces the draws."""
        x, labels = data[0], data[1]
        y, shape = self._onehot(labels), (ops.shape(x)[0], self.latent_dim)
        z_d, z_g = noise if noise is not None else (
            keras.random.normal(shape, seed=self.seed_generator) for _ in range(2))
        d_loss, d_class, real_logit, fake_logit, real_cls = self.discriminator_step(x, y, labels,
                                                                                    z_d)
        g_loss = self.generator_step(y, labels, z_g)
        return self._update(d_loss, g_loss, d_class, real_logit, fake_logit, real_cls, labels)

    def discriminator_step(self, x, y, labels, z):
        """One step of the discriminator: real -> 1, generated (from ``z``) -> 0, the class.
        Real and generated images go through it as one batch: spectral normalisation rewrites
        the weights at each training-mode call, and so judges both with the same weights."""
        import tensorflow as tf

        with tf.GradientTape() as tape:
            fake = self.generator([z, y], training=True)
            logit, cls = self.judge(ops.concatenate([x, fake], axis=0),
                                    ops.concatenate([y, y], axis=0), training=True)
            real_logit, fake_logit = ops.split(logit, 2)
            real_cls, fake_cls = ops.split(cls, 2)
            d_loss, d_class = self.discriminator_loss(real_logit, real_cls, fake_logit,
                                                      fake_cls, labels)
        gradient_step(tape, self.d_optimizer, d_loss, self.discriminator.trainable_variables)
        return d_loss, d_class, real_logit, fake_logit, real_cls

    def generator_step(self, y, labels, z):
        """One step of the generator: fool the discriminator, with the class asked for."""
        import tensorflow as tf

        with tf.GradientTape() as tape:
            logit, cls = self.judge(self.generator([z, y], training=True), y, training=True)
            g_loss = self.generator_loss(logit, cls, labels)
        gradient_step(tape, self.g_optimizer, g_loss, self.generator.trainable_variables)
        return g_loss

    def _update(self, d_loss, g_loss, d_class, real_logit, fake_logit, real_cls, labels):
        if len(labels.shape) == 1:
            hit = ops.equal(ops.argmax(real_cls, axis=-1), ops.cast(labels, "int32"))
        else:
            hit = ops.equal(ops.cast(real_cls > 0, "float32"), ops.cast(labels, "float32"))
        return self._track({"d_loss": d_loss, "g_loss": g_loss, "d_class": d_class,
                            "real_score": ops.mean(ops.sigmoid(real_logit)),
                            "fake_score": ops.mean(ops.sigmoid(fake_logit)),
                            "class_accuracy": ops.mean(ops.cast(hit, "float32"))})

    def _from_latent(self, z, labels):
        out = self.generator([ops.convert_to_tensor(z), self._onehot(ops.convert_to_tensor(labels))],
                             training=False)
        return np.asarray((ops.convert_to_numpy(out) + 1.0) / 2.0, np.float32)
