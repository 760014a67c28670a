"""The two models the course compares: a conditional VAE and an auxiliary-classifier GAN.

Both are built from one description of the architecture, :class:`Architecture`, which scales with
the image size and the number of channels (28x28x1 MNIST, 32x32x3 CIFAR-10, 64x64x3 CelebA, and
the 8-16 pixel images of the tests): a tower of stride-2 convolutions halves the image until it is
at most 9 pixels a side (the encoder and the discriminator), and a mirror tower of stride-2
transposed convolutions doubles it back (the decoder and the generator).

- :class:`ConditionalVAE` maximises the evidence lower bound of the paper's Eq. (1), estimated with
  ``L`` reparameterised samples as in Eqs. (2)-(3), with a diagonal Gaussian encoder q(z|x, y), a
  standard normal prior and a Bernoulli (binary images) or Gaussian (colour images) decoder
  p(x|z, y). An optional ``beta`` weighs the KL term.
- :class:`ACGAN` plays the game of Eq. (6): the discriminator ascends Eq. (8) and also names the
  class; the generator uses the non-saturating form of Eq. (7) by default.

Four parts compute what Keras's own layers compute, in a form that is faster on a CPU
(``fast_layers=False`` builds the networks from Keras's layers instead; the benchmark's reference
does): the last transposed convolution (:class:`SubpixelConv2DTranspose`), the gradient to the
image of the first convolution (:class:`SubpixelGradConv2D`), the discriminator's dropout
(:class:`MaskDropout`), and the default optimizer (:class:`FusedAdam`).

Labels are class indices ``(B,)`` (one-hot encoded inside the models), or multi-hot vectors
``(B, K)`` for several CelebA attributes at once. Every sampling helper returns images in [0, 1],
whatever range the model trains on.

Taught in notebooks 03 (MNIST), 04 (CIFAR-10) and 05 (CelebA).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import keras
import numpy as np
from keras import layers, ops

from .data import MAX_SIDE, MIN_SIDE
from .devices import PRECISIONS

LIKELIHOODS = ("bernoulli", "gaussian")
GAN_LOSSES = ("non_saturating", "minimax")
MAX_START = 9  # the towers halve each side until it is at most this
_POLICIES = tuple(p for p in PRECISIONS if p not in ("auto", "mixed"))


# --------------------------------------------------------------------------------------------
# One description of the architecture


@dataclass(frozen=True)
class Architecture:
    """The shape of every network in this module, derived from the image size.

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


# --------------------------------------------------------------------------------------------
# Two layers and an optimizer that compute what Keras's own compute, faster on a CPU

def _subpixel_index() -> np.ndarray:
    """``(3, 3, 2, 2)``: for each 3x3 tap ``(dy, dx)`` and output phase ``(ry, rx)``, the index
    ``4 a + b`` of the 4x4 kernel tap it takes, or 16 (a zero) where the phase has none.

    Output row ``2m + r`` of a stride-2, kernel-4, "same" transposed convolution takes input
    rows ``m - 1, m, m + 1`` (``d = 0, 1, 2``) through kernel rows ``taps[r][d]`` (-1: none).
    """
    taps = ((3, 1, -1), (-1, 2, 0))
    index = np.full((3, 3, 2, 2), 16, np.int32)
    for ry, rx, dy, dx in np.ndindex(2, 2, 3, 3):
        a, b = taps[ry][dy], taps[rx][dx]
        if a >= 0 and b >= 0:
            index[dy, dx, ry, rx] = 4 * a + b
    return index


_SUBPIXEL_INDEX = _subpixel_index()


@functools.lru_cache(maxsize=None)
def _subpixel_gather(out_c: int, in_c: int) -> np.ndarray:
    """``(3, 3, in_c, 4 * out_c)``: where each entry of the sub-pixel kernel sits in the
    flattened ``(4, 4, out_c, in_c)`` kernel, or ``16 * out_c * in_c`` (an appended zero)."""
    dy, dx, c, ry, rx, o = np.meshgrid(*(np.arange(n) for n in (3, 3, in_c, 2, 2, out_c)),
                                       indexing="ij")
    tap = _SUBPIXEL_INDEX[dy, dx, ry, rx]
    flat = np.where(tap < 16, (tap * out_c + o) * in_c + c, 16 * out_c * in_c)
    return flat.reshape(3, 3, in_c, 4 * out_c).astype(np.int32)


def _subpixel_kernel(kernel):
    """A transposed convolution's kernel ``(4, 4, out, in)`` as the 3x3 kernel ``(3, 3, in,
    2 * 2 * out)`` of its sub-pixel form, zero where a phase has no tap (one gather: the
    kernels that take this form are small)."""
    k = ops.convert_to_tensor(kernel)
    flat = ops.concatenate([ops.reshape(k, (-1,)), ops.zeros((1,), k.dtype)], axis=0)
    return ops.take(flat, _subpixel_gather(int(k.shape[2]), int(k.shape[3])))


def _subpixel_form(x, kernel):
    """The stride-2, kernel-4, "same" transposed convolution of ``x (B, h, w, in)`` with
    ``kernel (4, 4, out, in)`` in its sub-pixel form: ``(B, 2h, 2w, out)``."""
    import tensorflow as tf

    y = tf.nn.conv2d(x, _subpixel_kernel(kernel), 1, "SAME")  # (B, h, w, 2 * 2 * out)
    return tf.nn.depth_to_space(y, 2)  # channel (ry * 2 + rx) * out + c -> pixel (ry, rx)


def _stride2_kernel4_same(layer) -> bool:
    """Whether a (transposed) convolution layer is the one the sub-pixel form computes:
    stride 2, kernel 4, "same" padding, channels last, no dilation."""
    return (tuple(layer.strides) == (2, 2) and tuple(layer.kernel_size) == (4, 4)
            and layer.padding == "same" and layer.data_format == "channels_last"
            and tuple(layer.dilation_rate) == (1, 1))


def _stride2_conv_pair(x, kernel, transposed: bool):
    """One of the two mirror-image stride-2, kernel-4, "same" operations, without bias, each
    computing one direction in the sub-pixel form (:func:`_subpixel_form`) and the other as an
    ordinary stride-2 convolution:

    - ``transposed=True``: Keras's transposed convolution of ``x (B, h, w, in)`` with ``kernel
      (4, 4, out, in)``, ``(B, 2h, 2w, out)``. Forward in the sub-pixel form; the gradient to
      ``x`` is the stride-2 convolution TensorFlow uses for its own transposed convolution, on
      a CPU faster than the sub-pixel form's gradient.
    - ``transposed=False``: ``tf.nn.conv2d(x, kernel, 2, "SAME")`` for ``kernel (4, 4, in, out)``
      and even sides; the gradient to ``x`` (a transposed convolution of the incoming
      gradient, which takes the kernel in this same layout) in the sub-pixel form.

    The kernel's gradient is TensorFlow's own filter gradient of the stride-2 convolution, whose
    image is ``x`` (convolution) or the incoming gradient (transposed convolution).
    """
    import tensorflow as tf

    strides = [1, 2, 2, 1]

    @tf.custom_gradient
    def pair(x, kernel):
        def conv(t):
            return tf.nn.conv2d(t, kernel, strides, "SAME")

        def subpixel(t):
            return _subpixel_form(t, kernel)

        forward, backward = (subpixel, conv) if transposed else (conv, subpixel)
        y = forward(x)

        def grad(dy):
            image, out = (dy, x) if transposed else (x, dy)
            dk = tf.raw_ops.Conv2DBackpropFilter(input=image, filter_sizes=tf.shape(kernel),
                                                 out_backprop=out, strides=strides, padding="SAME")
            return backward(dy), dk

        return y, grad

    # tensors, not variables: the gradient is taken with respect to the values passed in
    return pair(tf.convert_to_tensor(x), tf.convert_to_tensor(kernel))


@keras.saving.register_keras_serializable(package="gencomp")
class SubpixelConv2DTranspose(layers.Conv2DTranspose):
    """``keras.layers.Conv2DTranspose`` (stride 2, kernel 4, "same") whose forward pass is a
    stride-1 3x3 convolution to ``4 x filters`` channels followed by a depth-to-space shuffle.

    The same kernel variable, the same output and gradients (to float rounding, see the tests),
    the same configuration; other strides, kernels or paddings use Keras's own computation. The
    transposed convolution to an image of 1 or 3 channels runs at about 4 GFLOP/s in
    TensorFlow's CPU kernels; this form runs it as an ordinary convolution (the taps are placed
    by :func:`_subpixel_index`). Its gradients are TensorFlow's own for the transposed
    convolution (:func:`_stride2_conv_pair`), which are faster than the sub-pixel form's.
    """

    def _subpixel(self) -> bool:
        return _stride2_kernel4_same(self)

    def call(self, inputs):
        if not self._subpixel():
            return super().call(inputs)
        kernel = ops.convert_to_tensor(self.kernel)
        if self.compute_dtype != kernel.dtype:
            kernel = ops.cast(kernel, self.compute_dtype)
        y = _stride2_conv_pair(inputs, kernel, transposed=True)
        if self.use_bias:
            y = y + ops.cast(self.bias, y.dtype)
        return self.activation(y) if self.activation is not None else y


@keras.saving.register_keras_serializable(package="gencomp")
class SubpixelGradConv2D(layers.Conv2D):
    """``keras.layers.Conv2D`` (stride 2, kernel 4, "same", even input sides) whose gradient
    with respect to its input is computed in the sub-pixel form.

    The same layer, output and gradients (to float rounding, see the tests); other settings
    use Keras's own computation. Meant for a network's first layer, on the image: the input
    gradient is then a transposed convolution to 1 or 3 channels, which TensorFlow's CPU
    kernels run slowly (at 64 x 28 x 28 x 1, 2.9 ms with oneDNN; the sub-pixel form's
    convolution, the one :class:`SubpixelConv2DTranspose` runs forward, 0.9-1.6 ms). The
    discriminator takes it to pass the gradient to the generator.
    """

    def _subpixel(self, inputs) -> bool:
        h, w = inputs.shape[1], inputs.shape[2]
        return (_stride2_kernel4_same(self) and self.groups == 1
                and h is not None and w is not None and h % 2 == 0 and w % 2 == 0)

    def convolution_op(self, inputs, kernel):
        # Keras's Conv2D.call adds the bias and applies the activation around this
        if not self._subpixel(inputs):
            return super().convolution_op(inputs, kernel)
        kernel = ops.convert_to_tensor(kernel)
        if self.compute_dtype != kernel.dtype:
            kernel = ops.cast(kernel, self.compute_dtype)
        return _stride2_conv_pair(inputs, kernel, transposed=False)


def _mask_bits(rate: float) -> int:
    """Random bits per value of a dropout mask: 8 when ``rate * 256`` is a whole number (the
    kept fraction is then exactly ``1 - rate``), else 16."""
    return 8 if float(rate * 256).is_integer() else 16


@keras.saving.register_keras_serializable(package="gencomp")
class MaskDropout(layers.Dropout):
    """``keras.layers.Dropout`` with a mask drawn from 8 or 16 random bits per value.

    The same layer (configuration, seed generator, scaling by the kept fraction), with a
    cheaper mask: TensorFlow's CPU random kernels cost about 4-6 ns per 32-bit number, and the
    mask of Keras's layer draws one float per value. This one draws one 32-bit number per four
    values (8 bits each) when ``rate * 256`` is a whole number (0.25, 0.5, 0.3125, ...), and per
    two values (16 bits each) otherwise, and keeps a value when its bits reach ``round(rate *
    2**bits)``. The kept fraction is then ``1 - round(rate * 2**bits) / 2**bits``: exactly
    ``1 - rate`` with 8 bits, within 1e-5 of it with 16; kept values are scaled by its
    inverse. A ``noise_shape`` uses Keras's own computation.
    """

    def call(self, inputs, training=False):
        if not training or self.rate <= 0 or self.noise_shape is not None:
            return super().call(inputs, training=training)
        import tensorflow as tf

        bits = _mask_bits(self.rate)
        levels = 2 ** bits
        drop = int(round(self.rate * levels))
        if drop >= levels:
            return ops.zeros_like(inputs)
        x = tf.convert_to_tensor(inputs)
        n = tf.size(x)
        per_word = 32 // bits
        seed = tf.cast(self.seed_generator.next(), tf.int32)
        words = tf.random.stateless_uniform([(n + per_word - 1) // per_word], seed, minval=None,
                                            maxval=None, dtype=tf.uint32)
        small = tf.uint8 if bits == 8 else tf.uint16
        values = tf.reshape(tf.bitcast(words, small), [-1])[:n]
        keep = tf.reshape(values >= tf.constant(drop, small), tf.shape(x))
        scale = tf.constant(levels / (levels - drop), x.dtype)
        return x * (tf.cast(keep, x.dtype) * scale)


@keras.saving.register_keras_serializable(package="gencomp")
class FusedAdam(keras.optimizers.Adam):
    """``keras.optimizers.Adam`` whose update of each variable is one fused TensorFlow kernel.

    The same rule as Keras's Adam: ``m <- b1 m + (1 - b1) g``, ``v <- b2 v + (1 - b2) g^2``,
    ``w <- w - lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)``, with the same slots,
    configuration, clipping, weight decay and learning-rate schedules. Keras writes the update
    as about ten element-wise operations per variable, each a pass over the tensor and a step of
    TensorFlow's executor; ``ResourceApplyAdam`` does it in one. ``amsgrad`` and updates under a
    ``tf.distribute`` strategy use Keras's own update.
    """

    def update_step(self, gradient, variable, learning_rate):
        import tensorflow as tf

        if self.amsgrad or tf.distribute.has_strategy():
            return super().update_step(gradient, variable, learning_rate)
        var = variable.value if isinstance(variable, keras.Variable) else variable
        index = self._get_variable_index(variable)
        m, v = self._momentums[index].value, self._velocities[index].value
        dtype = var.dtype
        step = tf.cast(self.iterations + 1, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=var.handle, m=m.handle, v=v.handle,
            beta1_power=tf.pow(tf.cast(self.beta_1, dtype), step),
            beta2_power=tf.pow(tf.cast(self.beta_2, dtype), step),
            lr=tf.cast(learning_rate, dtype), beta1=tf.cast(self.beta_1, dtype),
            beta2=tf.cast(self.beta_2, dtype), epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype), use_locking=False, use_nesterov=False)


def _check_precision(precision: str) -> str:
    if precision not in _POLICIES:
        raise ValueError(f"precision must be one of {', '.join(_POLICIES)} (pick it with "
                         f"gencomp_utils.devices.choose), got {precision!r}.")
    return precision


def build_downsampler(arch: Architecture, name: str, heads: dict[str, int], label_input: bool,
                      precision: str = "float32", dropout: float = 0.0,
                      normalize: bool = False, fast_layers: bool = True) -> keras.Model:
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
        fast_layers: the first convolution as a :class:`SubpixelGradConv2D` and dropout
            through :class:`MaskDropout` (``False``: Keras's ``Conv2D`` and ``Dropout``).

    Returns:
        A functional model ``[x] or [x, y_onehot] -> [head, ...]``.
    """
    h, w, c = arch.image_shape
    x_in = keras.Input((h, w, c), name="image")
    inputs = [x_in]
    x = x_in
    for i, ((hh, ww), f) in enumerate(zip(arch.sizes()[1:], arch.filters)):
        # (B, 2h, 2w, c) -> (B, h, w, f): one halving
        conv = SubpixelGradConv2D if fast_layers and i == 0 else layers.Conv2D
        x = conv(f, arch.kernel_size, strides=2, padding="same", dtype=precision,
                 name=f"conv{i}")(x)
        if normalize and i > 0:
            x = layers.BatchNormalization(dtype=precision, name=f"norm{i}")(x)
        x = layers.LeakyReLU(0.2, dtype=precision, name=f"act{i}")(x)
        if dropout:
            drop = MaskDropout if fast_layers else layers.Dropout
            x = drop(dropout, dtype=precision, name=f"drop{i}")(x)
    x = layers.Flatten(dtype=precision, name="flatten")(x)  # (B, h0 * w0 * filters[-1])
    if label_input:
        y_in = keras.Input((arch.num_classes,), name="label")
        inputs.append(y_in)
        x = layers.Concatenate(dtype=precision, name="with_label")([x, y_in])
    outputs = [layers.Dense(units, dtype="float32", name=head)(x) for head, units in heads.items()]
    return keras.Model(inputs if label_input else x_in, outputs, name=name)


def build_upsampler(arch: Architecture, name: str, out_activation: str | None,
                    precision: str = "float32", fast_layers: bool = True) -> keras.Model:
    """From ``(z, y_onehot)`` to an image: a dense layer to ``start_size``, then stride-2
    transposed convolutions, each doubling the image (the decoder and the generator).

    Args:
        arch: the architecture.
        name: model name.
        out_activation: activation of the last layer (``None``: logits; ``"tanh"``).
        precision: Keras dtype policy of the hidden layers (the last layer is float32).
        fast_layers: the last layer through :class:`SubpixelConv2DTranspose` (``False``:
            ``keras.layers.Conv2DTranspose``).

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
    last = SubpixelConv2DTranspose if fast_layers else layers.Conv2DTranspose
    out = last(arch.image_shape[2], arch.kernel_size, strides=2, padding="same",
               activation=out_activation, dtype="float32", name="to_image")(x)
    return keras.Model([z_in, y_in], out, name=name)


# --------------------------------------------------------------------------------------------
# Shared helpers


def _scale_for_replicas(loss):
    """Divide a loss by the replicas in sync: ``tf.distribute`` sums their gradients."""
    import tensorflow as tf

    n = tf.distribute.get_strategy().num_replicas_in_sync
    return loss / n if n > 1 else loss


def _loss_scaled(optimizer):
    from keras.optimizers import LossScaleOptimizer

    return optimizer if isinstance(optimizer, LossScaleOptimizer) else LossScaleOptimizer(optimizer)


class _Conditional(keras.Model):
    """What both models share: label encoding, checks, and the numpy sampling helpers."""

    value_range = (0.0, 1.0)

    def _init_common(self, image_shape, num_classes, latent_dim, base_filters, precision, seed,
                     fast_layers):
        self.architecture = Architecture(tuple(image_shape), int(num_classes), int(latent_dim),
                                         int(base_filters))
        self.precision = _check_precision(precision)
        self.seed = int(seed)
        self.fast_layers = bool(fast_layers)
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
        out = [self._from_latent(z[i:i + batch_size], labels[i:i + batch_size])
               for i in range(0, len(z), batch_size)]
        return np.concatenate(out) if out else np.zeros((0,) + self.image_shape, np.float32)

    def blend(self, z, label_weights, batch_size: int = 500) -> np.ndarray:
        """Images from latents and *weighted* labels: each row of ``label_weights`` holds K
        non-negative weights summing to 1, e.g. ``[0.3, 0.7]`` for 30% female, 70% male. The
        models were trained on one-hot labels only, so a blend asks for something never seen in
        training; the sliders of notebook 05 show what comes out.

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
        w = np.broadcast_to(w, (len(z), self.num_classes))
        out = [self._from_latent(z[i:i + batch_size], w[i:i + batch_size])
               for i in range(0, len(z), batch_size)]
        return np.concatenate(out)

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
                "precision": self.precision, "seed": self.seed, "fast_layers": self.fast_layers,
                "name": self.name}


# --------------------------------------------------------------------------------------------
# Conditional VAE


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
        fast_layers: build the last decoder layer as a :class:`SubpixelConv2DTranspose` (the
            same function, faster on a CPU) and the encoder's first as a
            :class:`SubpixelGradConv2D` (the same function, faster when a gradient to the image
            is taken; training does not take it); ``False``: Keras's own layers.

    Metrics (per image, in nats): ``loss``, ``reconstruction``, ``kl`` and ``elbo``
    (``-(reconstruction + kl)``, whatever ``beta`` is).
    """

    value_range = (0.0, 1.0)

    def __init__(self, image_shape=(28, 28, 1), num_classes=10, latent_dim=32, base_filters=32,
                 likelihood="bernoulli", gaussian_sigma=None, num_samples=1, beta=1.0,
                 precision="float32", seed=0, fast_layers=True, name="conditional_vae", **kwargs):
        super().__init__(name=name, **kwargs)
        self._init_common(image_shape, num_classes, latent_dim, base_filters, precision, seed,
                          fast_layers)
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
                                         label_input=True, precision=self.precision,
                                         fast_layers=self.fast_layers)
        self.decoder = build_upsampler(arch, "decoder", None, precision=self.precision,
                                       fast_layers=self.fast_layers)
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

    def compile(self, optimizer=None, **kwargs):
        """:class:`FusedAdam` (1e-3) unless an optimizer is given; loss-scaled under
        ``mixed_float16``."""
        optimizer = optimizer or FusedAdam(1e-3)
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

    def losses_per_image(self, x, labels, training=False):
        """Reconstruction and KL of each image (nats), both ``(B,)``.

        The reconstruction term averages ``-log p(x|z_l, y)`` over the ``L`` reparameterised
        samples ``z_l = mean + sigma * eps_l`` (Eqs. (2)-(3)); the KL term is the closed form of
        ``KL(q(z|x, y) || N(0, I))``.
        """
        x = ops.convert_to_tensor(x, dtype="float32")
        mean, log_var = self.encode(x, labels, training=training)
        b, d, big_l = ops.shape(mean)[0], self.latent_dim, self.num_samples
        eps = keras.random.normal((big_l, b, d), seed=self.seed_generator)
        z = ops.expand_dims(mean, 0) + ops.exp(0.5 * log_var)[None] * eps  # (L, B, D)
        z = ops.reshape(z, (big_l * b, d))
        y = self._onehot(labels)
        y_rep = ops.tile(y, (big_l, 1)) if big_l > 1 else y
        x_rep = ops.tile(x, (big_l, 1, 1, 1)) if big_l > 1 else x
        out = self.decoder([z, y_rep], training=training)  # (L * B, H, W, C)
        recon = ops.mean(ops.reshape(self.neg_log_likelihood(x_rep, out), (big_l, b)), axis=0)
        kl = 0.5 * ops.sum(ops.exp(log_var) + ops.square(mean) - 1.0 - log_var, axis=1)
        return recon, kl

    def call(self, inputs, training=False):
        """Reconstruct ``(x, labels)`` through the posterior mean: images in [0, 1]."""
        x, labels = inputs
        mean, _ = self.encode(x, labels, training=training)
        return self._mean_image(self.decode_logits(mean, labels, training=training))

    def _mean_image(self, out):
        return ops.sigmoid(out)

    def _update(self, recon, kl, loss):
        values = {"loss": loss, "reconstruction": ops.mean(recon), "kl": ops.mean(kl),
                  "elbo": -ops.mean(recon + kl)}
        for k, v in values.items():
            self.trackers[k].update_state(v)
        return {k: t.result() for k, t in self.trackers.items()}

    def train_step(self, data):
        x, labels = data[0], data[1]
        import tensorflow as tf

        with tf.GradientTape() as tape:
            recon, kl = self.losses_per_image(x, labels, training=True)
            loss = ops.mean(recon + self.beta * kl)
            scaled = self.optimizer.scale_loss(_scale_for_replicas(loss))
        grads = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        return self._update(recon, kl, loss)

    def test_step(self, data):
        x, labels = data[0], data[1]
        recon, kl = self.losses_per_image(x, labels, training=False)
        return self._update(recon, kl, ops.mean(recon + self.beta * kl))

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
        x = self.check_images(x)
        labels = self.check_labels(labels, n=len(x))
        mean, log_var = self.encode(ops.convert_to_tensor(x), ops.convert_to_tensor(labels))
        z = ops.convert_to_numpy(mean)
        if sample:
            rng = np.random.default_rng(seed)
            z = z + np.exp(0.5 * ops.convert_to_numpy(log_var)) * rng.standard_normal(z.shape)
        return self.sample(z=z.astype(np.float32), labels=labels)

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


# --------------------------------------------------------------------------------------------
# Auxiliary-classifier GAN


@keras.saving.register_keras_serializable(package="gencomp")
class ACGAN(_Conditional):
    """An auxiliary-classifier GAN: G(z, y) and a discriminator with two heads.

    The discriminator's ``real_fake`` head is the D of Eq. (6) (a logit; the sigmoid is in the
    loss); its ``class`` head names the class of real and generated images alike. The
    discriminator minimises ``BCE(real, 1) + BCE(fake, 0) + class_weight * (CE(real) + CE(fake))``
    (ascending Eq. (8); ``CE(fake)`` only with ``fake_class_loss``, as in the original AC-GAN;
    without it the class head is trained on real images alone, a stricter judge of the
    generator; with ``projection`` the real/fake logit also depends on the class); the generator minimises ``-log D(G(z, y))`` (non-saturating, the
    default) or ``log(1 - D(G(z, y)))`` (Eq. (7), ``gan_loss="minimax"``), plus
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
        fast_layers: build the generator's last layer as a :class:`SubpixelConv2DTranspose`,
            the discriminator's first as a :class:`SubpixelGradConv2D` and its dropout as
            :class:`MaskDropout` (the same functions, faster on a CPU); ``False``: Keras's own
            layers.

    Trains on images in [-1, 1] (the generator ends in tanh); every sampling helper returns
    images in [0, 1]. Metrics: ``d_loss``, ``g_loss``, ``d_class`` (class loss on real images),
    ``real_score`` and ``fake_score`` (mean D(x) and D(G(z))), ``class_accuracy`` (of the
    discriminator on real images).
    """

    value_range = (-1.0, 1.0)

    def __init__(self, image_shape=(28, 28, 1), num_classes=10, latent_dim=32, base_filters=32,
                 gan_loss="non_saturating", class_weight=1.0, fake_class_loss=False,
                 projection=True, label_smoothing=0.0, dropout=0.25, precision="float32",
                 seed=0, fast_layers=True, name="acgan", **kwargs):
        super().__init__(name=name, **kwargs)
        self._init_common(image_shape, num_classes, latent_dim, base_filters, precision, seed,
                          fast_layers)
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
        arch = self.architecture
        self.generator = build_upsampler(arch, "generator", "tanh", precision=self.precision,
                                         fast_layers=self.fast_layers)
        heads = {"real_fake": 1, "class": arch.num_classes}
        if self.projection:
            heads["projection"] = arch.num_classes
        self.discriminator = build_downsampler(arch, "discriminator", heads, label_input=False,
                                               precision=self.precision, dropout=self.dropout,
                                               fast_layers=self.fast_layers)
        self.trackers = {k: keras.metrics.Mean(name=k) for k in (
            "d_loss", "g_loss", "d_class", "real_score", "fake_score", "class_accuracy")}
        self.g_optimizer = self.d_optimizer = None
        self.build_all()

    def get_config(self):
        config = super().get_config()
        config.update(gan_loss=self.gan_loss, class_weight=self.class_weight,
                      fake_class_loss=self.fake_class_loss, projection=self.projection,
                      label_smoothing=self.label_smoothing, dropout=self.dropout)
        return config

    def compile(self, g_optimizer=None, d_optimizer=None, **kwargs):
        """Both optimizers go here (default: :class:`FusedAdam` (2e-4, beta_1=0.5) each).

        Args:
            g_optimizer: the generator's optimizer.
            d_optimizer: the discriminator's optimizer.
            **kwargs: passed to ``keras.Model.compile`` (e.g. ``jit_compile``).
        """
        kwargs.pop("optimizer", None)
        super().compile(optimizer=None, **kwargs)
        g = keras.optimizers.get(g_optimizer or FusedAdam(2e-4, beta_1=0.5))
        d = keras.optimizers.get(d_optimizer or FusedAdam(2e-4, beta_1=0.5))
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

    def train_step(self, data):
        import tensorflow as tf

        x, labels = data[0], data[1]
        b = ops.shape(x)[0]
        y = self._onehot(labels)
        # Discriminator: real -> 1, fake -> 0, and the class of both.
        z = keras.random.normal((b, self.latent_dim), seed=self.seed_generator)
        with tf.GradientTape() as tape:
            fake = self.generator([z, y], training=True)
            real_logit, real_cls = self.judge(x, y, training=True)
            fake_logit, fake_cls = self.judge(fake, y, training=True)
            # BCE(real, 1 - smoothing) + BCE(fake, 0); softplus(-l) = -log sigmoid(l)
            s = self.label_smoothing
            d_adv = (ops.mean((1 - s) * ops.softplus(-real_logit) + s * ops.softplus(real_logit))
                     + ops.mean(ops.softplus(fake_logit)))
            d_class = self._class_loss(real_cls, labels)
            d_cls_total = d_class
            if self.fake_class_loss:
                d_cls_total = d_cls_total + self._class_loss(fake_cls, labels)
            d_loss = d_adv + self.class_weight * d_cls_total
            scaled = self.d_optimizer.scale_loss(_scale_for_replicas(d_loss))
        d_vars = self.discriminator.trainable_variables
        self.d_optimizer.apply(tape.gradient(scaled, d_vars), d_vars)
        # Generator: fool the discriminator, with the class it was asked for.
        z = keras.random.normal((b, self.latent_dim), seed=self.seed_generator)
        with tf.GradientTape() as tape:
            fake = self.generator([z, y], training=True)
            logit, cls = self.judge(fake, y, training=True)
            if self.gan_loss == "non_saturating":
                g_adv = ops.mean(ops.softplus(-logit))      # -log D(G(z))
            else:
                g_adv = -ops.mean(ops.softplus(logit))      # log(1 - D(G(z))), Eq. (7)
            g_loss = g_adv + self.class_weight * self._class_loss(cls, labels)
            scaled = self.g_optimizer.scale_loss(_scale_for_replicas(g_loss))
        g_vars = self.generator.trainable_variables
        self.g_optimizer.apply(tape.gradient(scaled, g_vars), g_vars)
        return self._update(d_loss, g_loss, d_class, real_logit, fake_logit, real_cls, labels)

    def _update(self, d_loss, g_loss, d_class, real_logit, fake_logit, real_cls, labels):
        if len(labels.shape) == 1:
            hit = ops.equal(ops.argmax(real_cls, axis=-1), ops.cast(labels, "int32"))
        else:
            hit = ops.equal(ops.cast(real_cls > 0, "float32"), ops.cast(labels, "float32"))
        values = {"d_loss": d_loss, "g_loss": g_loss, "d_class": d_class,
                  "real_score": ops.mean(ops.sigmoid(real_logit)),
                  "fake_score": ops.mean(ops.sigmoid(fake_logit)),
                  "class_accuracy": ops.mean(ops.cast(hit, "float32"))}
        for k, v in values.items():
            self.trackers[k].update_state(v)
        return {k: t.result() for k, t in self.trackers.items()}

    def _from_latent(self, z, labels):
        out = self.generator([ops.convert_to_tensor(z), self._onehot(ops.convert_to_tensor(labels))],
                             training=False)
        return np.asarray((ops.convert_to_numpy(out) + 1.0) / 2.0, np.float32)
