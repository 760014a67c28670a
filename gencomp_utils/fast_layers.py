"""Layers and an optimizer that compute what Keras's own compute, in a form that is faster on a CPU.

Four parts, each tested against the Keras layer it replaces (to floating-point rounding):

- :class:`SubpixelConv2DTranspose`: the last transposed convolution (to an image of 1 or 3
  channels), run forward as a 3x3 convolution to 4 times the channels and a pixel shuffle.
- :class:`SubpixelGradConv2D`: the first convolution, whose gradient to the image (the same kind
  of transposed convolution) is computed in the same sub-pixel form.
- :class:`MaskDropout`: dropout whose mask is drawn from 8 or 16 random bits per value.
- :class:`FusedAdam`: Adam whose update of each variable is one fused TensorFlow kernel.

The models receive them, or Keras's own, as one :class:`LayerSet` (``fast_layers=True``: :data:`CPU`,
which :func:`gencomp_utils.devices.choose` picks on a CPU; on accelerators, :data:`KERAS`). They
are machinery, not part of what the course teaches. ``benchmarks/README.md`` gives what they
gain.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import keras
import numpy as np
from keras import layers, ops


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
    the same configuration; other strides, kernels or paddings use Keras's own computation.
    TensorFlow's CPU kernels run the transposed convolution to an image of 1 or 3 channels
    slowly; this form runs it as an ordinary convolution (the taps are placed by
    :func:`_subpixel_index`). Its gradients are TensorFlow's own for the transposed convolution
    (:func:`_stride2_conv_pair`), which are faster than the sub-pixel form's.
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
    kernels run more slowly than the sub-pixel form's convolution (the one
    :class:`SubpixelConv2DTranspose` runs forward). The discriminator takes it to pass the
    gradient to the generator.
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
    cheaper mask: the mask of Keras's layer draws one random float per value, and TensorFlow's CPU
    random kernels pay per 32-bit number drawn. This one draws one 32-bit number per four
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


@dataclass(frozen=True)
class LayerSet:
    """The classes the networks are built with where Keras's own and this module's differ.

    Attributes:
        first_conv: the first convolution, on the image.
        last_conv_transpose: the last transposed convolution, to the image.
        dropout: the dropout layer.
        adam: the models' default optimizer.
    """

    first_conv: type
    last_conv_transpose: type
    dropout: type
    adam: type


KERAS = LayerSet(layers.Conv2D, layers.Conv2DTranspose, layers.Dropout,
                 keras.optimizers.Adam)
CPU = LayerSet(SubpixelGradConv2D, SubpixelConv2DTranspose, MaskDropout, FusedAdam)
