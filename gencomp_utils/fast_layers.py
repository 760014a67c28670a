"""A dropout layer that computes what Keras's computes, in a form that is faster on a CPU.

:class:`MaskDropout` draws its mask from 8 or 16 random bits per value (tested against Keras's
``Dropout``). The AC-GAN's discriminator uses it when built with ``fast_layers=True``, which
:func:`gencomp_utils.devices.choose` picks on a CPU (``DeviceChoice.fast_layers``); on
accelerators the models use Keras's own layer. It is machinery, not part of what the course
teaches: ``benchmarks/README.md`` gives what it gains and the parts measured and deleted.
"""
from __future__ import annotations

import keras
from keras import layers, ops


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
