"""What both models share: label encoding, input checks, the numpy sampling API (``sample``,
``blend``, ``interpolate``) and the plumbing of a gradient step."""
from __future__ import annotations

import inspect

import keras
import numpy as np
from keras import ops

from .architecture import Architecture, _check_precision


def gradient_step(tape, optimizer, loss, variables):
    """One step of ``optimizer`` down the gradient of ``loss`` (recorded by ``tape``).

    Backpropagation starts from the optimizer's loss scale (under ``mixed_float16``, where it keeps
    small gradients from vanishing in 16 bits; the optimizer divides it out again) divided by the
    replicas in sync (a ``tf.distribute`` strategy sums their gradients): the gradient of
    ``scale * loss / replicas``. With one device in float32 that is the gradient of ``loss``.
    """
    import tensorflow as tf

    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    seed = optimizer.scale_loss(ops.ones_like(loss)) / replicas
    optimizer.apply(tape.gradient(loss, variables, output_gradients=seed), variables)


def _loss_scaled(optimizer):
    from keras.optimizers import LossScaleOptimizer

    return optimizer if isinstance(optimizer, LossScaleOptimizer) else LossScaleOptimizer(optimizer)


class _Conditional(keras.Model):
    """What both models share: label encoding, checks, and the numpy sampling helpers."""

    value_range = (0.0, 1.0)
    # 2: the convolutions are Keras's own whatever ``fast_layers`` says (1 built CPU forms of
    # some, whose weights a saved model stores under other names)
    CONFIG_VERSION = 2

    def _init_common(self, image_shape, num_classes, latent_dim, base_filters, precision, seed):
        self.architecture = Architecture(tuple(image_shape), int(num_classes), int(latent_dim),
                                         int(base_filters))
        self.precision = _check_precision(precision)
        self.seed = int(seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed, name="noise_seed")

    @property
    def metrics(self):
        return list(self.trackers.values())  # reset by Keras at each epoch

    @property
    def image_shape(self) -> tuple:
        return self.architecture.image_shape

    @property
    def num_classes(self) -> int:
        return self.architecture.num_classes

    @property
    def latent_dim(self) -> int:
        return self.architecture.latent_dim

    def _onehot(self, labels):
        """``(B,)`` class indices -> ``(B, K)`` one-hot; multi-hot ``(B, K)`` passes as float."""
        labels = ops.convert_to_tensor(labels)
        if len(labels.shape) == 1:
            return ops.one_hot(ops.cast(labels, "int32"), self.num_classes, dtype="float32")
        return ops.cast(labels, "float32")

    def check_labels(self, labels, n: int | None = None) -> np.ndarray:
        """Labels as a numpy array, checked: indices in ``[0, K)``, or multi-hot ``(B, K)`` of 0/1.

        Args:
            labels: an int, a sequence of ints, or a ``(B, K)`` array.
            n: repeat a single int label ``n`` times.

        Raises:
            ValueError: a label out of range, or the wrong shape.
        """
        arr = np.asarray(labels)
        if arr.ndim == 0:
            arr = np.full(1 if n is None else int(n), int(arr))
        if arr.ndim == 1:
            if arr.size and (not np.issubdtype(arr.dtype, np.integer) and
                             not np.all(np.mod(arr, 1) == 0)):
                raise ValueError(f"Class labels must be integers, got {arr[:5]!r}.")
            arr = arr.astype(np.int32)
            bad = arr[(arr < 0) | (arr >= self.num_classes)]
            if bad.size:
                raise ValueError(f"Label {int(bad[0])} is out of range: this model has "
                                 f"{self.num_classes} classes, 0 to {self.num_classes - 1}.")
            return arr
        if arr.ndim == 2 and arr.shape[1] == self.num_classes:
            if not np.all((arr == 0) | (arr == 1)):
                raise ValueError("Multi-hot labels must hold only 0 and 1.")
            return arr.astype(np.float32)
        raise ValueError(f"Labels must be class indices (B,) or multi-hot (B, {self.num_classes}); "
                         f"got shape {arr.shape}.")

    def check_images(self, x) -> np.ndarray:
        """Images as float32 ``(B, H, W, C)``; raise a ValueError on the wrong shape."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 3:
            x = x[None]
        if x.shape[1:] != self.image_shape:
            raise ValueError(f"Images of shape {x.shape[1:]} given to a model of image shape "
                             f"{self.image_shape}.")
        return x

    def latent(self, n: int, seed: int | None = None, temperature: float = 1.0) -> np.ndarray:
        """``n`` latent vectors drawn from the standard normal prior, seeded (float32 ``(n, D)``)."""
        rng = np.random.default_rng(seed)
        return (temperature * rng.standard_normal((int(n), self.latent_dim))).astype(np.float32)

    def _latent_and_labels(self, n, labels, z, seed, temperature):
        if labels is None:
            if n is None and z is None:
                raise ValueError("Give labels, or n (then labels cycle through the classes).")
            n = len(z) if n is None else n
            labels = np.arange(int(n)) % self.num_classes
        labels = self.check_labels(labels, n=n if z is None else len(np.atleast_2d(z)))
        if z is None:
            z = self.latent(len(labels), seed, temperature)
        z = np.atleast_2d(np.asarray(z, np.float32))
        if z.shape[1] != self.latent_dim:
            raise ValueError(f"z has {z.shape[1]} dimensions; this model's latent_dim is "
                             f"{self.latent_dim}.")
        if len(z) == 1 and len(labels) > 1:
            z = np.repeat(z, len(labels), axis=0)
        if len(labels) == 1 and len(z) > 1:
            labels = np.repeat(labels, len(z), axis=0)
        if len(z) != len(labels):
            raise ValueError(f"{len(z)} latent vectors for {len(labels)} labels.")
        return z, labels

    def sample(self, n: int | None = None, labels=None, z=None, seed: int | None = None,
               temperature: float = 1.0, batch_size: int = 500) -> np.ndarray:
        """Generate images of the given classes.

        Args:
            n: number of images (``labels`` may then be one int, or None to cycle the classes).
            labels: class of each image (ints), or one int for all.
            z: latent vectors ``(n, latent_dim)`` (``None``: drawn from the prior with ``seed``).
            seed: seed of the latent draw.
            temperature: scale of the prior draw (1: the prior itself).
            batch_size: images per forward pass.

        Returns:
            float32 images ``(n, H, W, C)`` in [0, 1].
        """
        z, labels = self._latent_and_labels(n, labels, z, seed, temperature)
        return self._images(z, labels, batch_size)

    def _images(self, z, labels, batch_size: int) -> np.ndarray:
        out = [self._from_latent(z[i:i + batch_size], labels[i:i + batch_size])
               for i in range(0, len(z), batch_size)]
        return np.concatenate(out) if out else np.zeros((0,) + self.image_shape, np.float32)

    def _track(self, values: dict) -> dict:
        """Add a step's values to the metrics; return every metric's mean so far."""
        for k, v in values.items():
            self.trackers[k].update_state(v)
        return {k: t.result() for k, t in self.trackers.items()}

    def blend(self, z, label_weights, batch_size: int = 500) -> np.ndarray:
        """Images from latents and *weighted* labels: each row of ``label_weights`` holds K
        non-negative weights summing to 1, e.g. ``[0.3, 0.7]`` for 30% female, 70% male. The
        models were trained on one-hot labels only, so a blend asks for something never seen in
        training; the sliders of notebook 07 show what comes out.

        Args:
            z: latent vectors ``(n, latent_dim)``.
            label_weights: ``(n, K)`` or one ``(K,)`` row for all.

        Returns:
            float32 images ``(n, H, W, C)`` in [0, 1].
        """
        z = np.atleast_2d(np.asarray(z, np.float32))
        w = np.atleast_2d(np.asarray(label_weights, np.float32))
        if w.shape[1] != self.num_classes or z.shape[1] != self.latent_dim:
            raise ValueError(f"Need z (n, {self.latent_dim}) and label weights (n, "
                             f"{self.num_classes}); got {z.shape} and {w.shape}.")
        if np.any(w < 0) or not np.allclose(w.sum(1), 1.0, atol=1e-4):
            raise ValueError("Label weights must be non-negative and sum to 1 in each row, e.g. "
                             "[0.3, 0.7].")
        return self._images(z, np.broadcast_to(w, (len(z), self.num_classes)), batch_size)

    def interpolate(self, z_start, z_end, labels, steps: int = 8, spherical: bool = False):
        """Images along a path between two latent points, for each label.

        Args:
            z_start, z_end: latent vectors ``(latent_dim,)`` (or ``(n, latent_dim)``, one per label).
            labels: class of each row (one int or a sequence).
            steps: images per row, ends included.
            spherical: follow the great circle (slerp), which keeps the prior's typical norm.

        Returns:
            float32 images ``(rows, steps, H, W, C)`` in [0, 1].
        """
        labels = np.atleast_1d(self.check_labels(labels))
        a = np.broadcast_to(np.atleast_2d(np.asarray(z_start, np.float32)),
                            (len(labels), self.latent_dim))
        b = np.broadcast_to(np.atleast_2d(np.asarray(z_end, np.float32)),
                            (len(labels), self.latent_dim))
        t = np.linspace(0.0, 1.0, int(steps), dtype=np.float32)[None, :, None]
        if spherical:
            na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
            cos = np.clip(np.sum(a * b, 1) / np.maximum(na * nb, 1e-8), -1, 1)
            omega = np.arccos(cos)[:, None, None]
            so = np.where(np.abs(np.sin(omega)) < 1e-6, 1.0, np.sin(omega))
            path = np.where(np.abs(np.sin(omega)) < 1e-6, (1 - t) * a[:, None] + t * b[:, None],
                            np.sin((1 - t) * omega) / so * a[:, None] + np.sin(t * omega) / so
                            * b[:, None])
        else:
            path = (1 - t) * a[:, None] + t * b[:, None]  # (rows, steps, D)
        rows = np.repeat(labels, int(steps), axis=0)
        images = self.sample(z=path.reshape(-1, self.latent_dim).astype(np.float32), labels=rows)
        return images.reshape((len(labels), int(steps)) + self.image_shape)

    def _from_latent(self, z, labels):  # pragma: no cover - defined by subclasses
        raise NotImplementedError

    def build_all(self):
        """Create every variable now (the parts are functional models, built on construction)."""
        self.built = True

    def get_config(self):
        return {"image_shape": list(self.image_shape), "num_classes": self.num_classes,
                "latent_dim": self.latent_dim, "base_filters": self.architecture.base_filters,
                "precision": self.precision, "seed": self.seed, "name": self.name,
                "config_version": self.CONFIG_VERSION}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.pop("config_version", 1) < cls.CONFIG_VERSION and config.get("fast_layers"):
            raise ValueError(
                f"This {cls.__name__} was saved by an earlier version of gencomp_utils that built "
                "some of its layers in CPU forms this version no longer has, so its weights cannot "
                "be loaded: train it again.")
        if "fast_layers" not in inspect.signature(cls).parameters:  # the VAE's, saved before
            config.pop("fast_layers", None)
        return cls(**config)
