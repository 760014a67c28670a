"""One description of the architecture of every network, and the two builders.

:class:`Architecture` scales with the image size and the number of channels (28x28x1 MNIST,
32x32x3 CIFAR-10, 64x64x3 CelebA, and the 8-16 pixel images of the tests):
:func:`build_downsampler` stacks stride-2 convolutions that halve the image until it is at most
9 pixels a side (the VAE's encoder and the GAN's discriminator), and :func:`build_upsampler` a
mirror tower of stride-2 transposed convolutions that doubles it back (the decoder and the
generator).
"""
from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers

from ..data import MAX_SIDE, MIN_SIDE
from ..devices import PRECISIONS

MAX_START = 9  # the towers halve each side until it is at most this
_POLICIES = tuple(p for p in PRECISIONS if p not in ("auto", "mixed"))


@dataclass(frozen=True)
class Architecture:
    """The shape of every network of both models, derived from the image size.

    Attributes:
        image_shape: ``(height, width, channels)``; each side from 8 to 72 pixels, halvable down
            to at most 9 pixels (28 -> 14 -> 7, 32 -> 16 -> 8 -> 4, 64 -> ... -> 4).
        num_classes: number of classes (or of attributes, for multi-hot labels).
        latent_dim: size of z.
        base_filters: filters of the first convolution; each halving doubles them.
        max_filters: cap on the filters of any layer.
        kernel_size: kernel of the stride-2 (transposed) convolutions.
    """

    image_shape: tuple = (28, 28, 1)
    num_classes: int = 10
    latent_dim: int = 32
    base_filters: int = 32
    max_filters: int = 256
    kernel_size: int = 4

    def __post_init__(self):
        shape = tuple(int(s) for s in self.image_shape)
        object.__setattr__(self, "image_shape", shape)
        if len(shape) != 3 or shape[2] not in (1, 3):
            raise ValueError(f"image_shape must be (height, width, channels) with 1 or 3 "
                             f"channels, got {self.image_shape!r}.")
        h, w, _ = shape
        if not (MIN_SIDE <= h <= MAX_SIDE and MIN_SIDE <= w <= MAX_SIDE):
            raise ValueError(f"Image size {h}x{w} is not supported: each side must be from "
                             f"{MIN_SIDE} to {MAX_SIDE} pixels (e.g. 28, 32 or 64).")
        if self.start_size[0] > MAX_START or self.start_size[1] > MAX_START:
            raise ValueError(
                f"Image size {h}x{w} is not supported: the networks halve each side with stride-2 "
                f"convolutions until it is at most {MAX_START} pixels, and {h}x{w} stops at "
                f"{self.start_size[0]}x{self.start_size[1]}. Use sides like 16, 28, 32, 48 or 64.")
        for name in ("num_classes", "latent_dim", "base_filters", "max_filters", "kernel_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}.")

    @property
    def levels(self) -> int:
        """Number of stride-2 halvings: while both sides are even and their halves at least 4."""
        h, w, _ = self.image_shape
        n = 0
        while h % 2 == 0 and w % 2 == 0 and h // 2 >= 4 and w // 2 >= 4:
            h, w, n = h // 2, w // 2, n + 1
        return n

    @property
    def start_size(self) -> tuple[int, int]:
        """``(h, w)`` at the narrow end of the towers, e.g. ``(7, 7)`` for 28x28."""
        f = 2 ** self.levels
        return self.image_shape[0] // f, self.image_shape[1] // f

    @property
    def filters(self) -> list[int]:
        """Filters of the downsampling tower, level by level, e.g. ``[32, 64]`` for 28x28."""
        return [min(self.base_filters * 2 ** i, self.max_filters) for i in range(self.levels)]

    def sizes(self) -> list[tuple[int, int]]:
        """Side lengths from the image down to the narrow end, e.g. ``[(28, 28), (14, 14), (7, 7)]``."""
        h, w, _ = self.image_shape
        return [(h // 2 ** i, w // 2 ** i) for i in range(self.levels + 1)]

    def describe(self) -> str:
        """A one-line summary of the towers, e.g. ``28x28x1 -> 14x14x32 -> 7x7x64``."""
        parts = [f"{self.image_shape[0]}x{self.image_shape[1]}x{self.image_shape[2]}"]
        parts += [f"{h}x{w}x{f}" for (h, w), f in zip(self.sizes()[1:], self.filters)]
        return " -> ".join(parts) + f"; latent {self.latent_dim}, {self.num_classes} classes"


def _check_precision(precision: str) -> str:
    if precision not in _POLICIES:
        raise ValueError(f"precision must be one of {', '.join(_POLICIES)} (pick it with "
                         f"gencomp_utils.devices.choose), got {precision!r}.")
    return precision


def build_downsampler(arch: Architecture, name: str, heads: dict[str, int], label_input: bool,
                      precision: str = "float32", dropout: float = 0.0,
                      normalize: bool = False, dropout_layer=layers.Dropout,
                      spectral_norm: bool = False) -> keras.Model:
    """Stride-2 convolutions from the image to ``start_size``, then dense heads.

    The encoder of the VAE (heads ``z_mean``, ``z_log_var``; the label is an input) and the
    discriminator of the GAN (heads ``real_fake``, ``class``; no label input) are both this.

    Args:
        arch: the architecture.
        name: model name.
        heads: output name -> units; the heads compute in float32.
        label_input: take the one-hot label ``(B, K)`` as a second input.
        precision: Keras dtype policy of the hidden layers.
        dropout: dropout after each convolution.
        normalize: batch-normalise the hidden convolutions (not the first).
        dropout_layer: the dropout class (Keras's, or :class:`gencomp_utils.fast_layers.MaskDropout`).
        spectral_norm: divide the weights of every convolution and head by their largest
            singular value (``keras.layers.SpectralNormalization``; Miyato et al., 2018), which
            bounds how fast the output can change with the input. Each call with
            ``training=True`` takes one power-iteration step towards that singular value and
            writes W / sigma into the kernel; calls with ``training=False`` use the kernel as
            it is.

    Returns:
        A functional model ``[x] or [x, y_onehot] -> [head, ...]``.
    """
    def weights(layer):
        if not spectral_norm:
            return layer
        # float32 whatever the layer's policy: the wrapper writes W / sigma into the kernel,
        # which a float16 computation would round (the layer itself still computes in its own)
        return layers.SpectralNormalization(layer, dtype="float32", name=f"{layer.name}_sn")

    h, w, c = arch.image_shape
    x_in = keras.Input((h, w, c), name="image")
    inputs = [x_in]
    x = x_in
    for i, f in enumerate(arch.filters):
        # (B, 2h, 2w, c) -> (B, h, w, f): one halving
        x = weights(layers.Conv2D(f, arch.kernel_size, strides=2, padding="same", dtype=precision,
                                  name=f"conv{i}"))(x)
        if normalize and i > 0:
            x = layers.BatchNormalization(dtype=precision, name=f"norm{i}")(x)
        x = layers.LeakyReLU(0.2, dtype=precision, name=f"act{i}")(x)
        if dropout:
            x = dropout_layer(dropout, dtype=precision, name=f"drop{i}")(x)
    x = layers.Flatten(dtype=precision, name="flatten")(x)  # (B, h0 * w0 * filters[-1])
    if label_input:
        y_in = keras.Input((arch.num_classes,), name="label")
        inputs.append(y_in)
        x = layers.Concatenate(dtype=precision, name="with_label")([x, y_in])
    outputs = [weights(layers.Dense(units, dtype="float32", name=head))(x)
               for head, units in heads.items()]
    return keras.Model(inputs if label_input else x_in, outputs, name=name)


def build_upsampler(arch: Architecture, name: str, out_activation: str | None,
                    precision: str = "float32") -> keras.Model:
    """From ``(z, y_onehot)`` to an image: a dense layer to ``start_size``, then stride-2
    transposed convolutions, each doubling the image (the decoder and the generator).

    Args:
        arch: the architecture.
        name: model name.
        out_activation: activation of the last layer (``None``: logits; ``"tanh"``).
        precision: Keras dtype policy of the hidden layers (the last layer is float32).

    Returns:
        A functional model ``[z (B, latent), y (B, K)] -> image (B, H, W, C)``.
    """
    h0, w0 = arch.start_size
    filters = arch.filters[::-1]
    z_in = keras.Input((arch.latent_dim,), name="z")
    y_in = keras.Input((arch.num_classes,), name="label")
    x = layers.Concatenate(dtype=precision, name="z_and_label")([z_in, y_in])
    x = layers.Dense(h0 * w0 * filters[0], use_bias=False, dtype=precision, name="project")(x)
    x = layers.BatchNormalization(dtype=precision, name="project_norm")(x)
    x = layers.ReLU(dtype=precision, name="project_act")(x)
    x = layers.Reshape((h0, w0, filters[0]), dtype=precision, name="to_map")(x)  # (B, h0, w0, f)
    for i, f in enumerate(filters[1:]):
        # (B, h, w, 2f) -> (B, 2h, 2w, f): one doubling
        x = layers.Conv2DTranspose(f, arch.kernel_size, strides=2, padding="same", use_bias=False,
                                   dtype=precision, name=f"up{i}")(x)
        x = layers.BatchNormalization(dtype=precision, name=f"norm{i}")(x)
        x = layers.ReLU(dtype=precision, name=f"act{i}")(x)
    # (B, H/2, W/2, f) -> (B, H, W, C), in float32 for the likelihood or the tanh
    out = layers.Conv2DTranspose(arch.image_shape[2], arch.kernel_size, strides=2,
                                 padding="same", activation=out_activation, dtype="float32",
                                 name="to_image")(x)
    return keras.Model([z_in, y_in], out, name=name)
