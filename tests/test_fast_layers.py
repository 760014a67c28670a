"""The faster layers and optimizer of the models compute what Keras's own compute."""
from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from gencomp_utils import fast_layers, models  # noqa: E402


def _same_weights(ref, fast, shape, seed=0):
    """Build Keras's layer and the faster one for ``shape`` and give them the same random
    weights."""
    ref.build(shape)
    fast.build(shape)
    rng = np.random.default_rng(seed)
    for a, b in zip(ref.weights, fast.weights):
        a.assign(rng.normal(size=a.shape).astype("float32"))
        b.assign(a)
    return ref, fast


def _pair(filters, kernel, strides, activation, shape, seed=0):
    """Keras's Conv2DTranspose and the sub-pixel one, with the same random weights."""
    kw = dict(strides=strides, padding="same", activation=activation)
    return _same_weights(keras.layers.Conv2DTranspose(filters, kernel, **kw),
                         models.SubpixelConv2DTranspose(filters, kernel, **kw), shape, seed)


def _conv_pair(filters, kernel, strides, activation, shape, seed=0):
    """Keras's Conv2D and the one with the sub-pixel input gradient, with the same weights."""
    kw = dict(strides=strides, padding="same", activation=activation)
    return _same_weights(keras.layers.Conv2D(filters, kernel, **kw),
                         models.SubpixelGradConv2D(filters, kernel, **kw), shape, seed)


def _outputs_and_gradients(layer, x):
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        loss = tf.reduce_sum(y * tf.cos(y))  # not linear in y: every gradient is tested
    grads = tape.gradient(loss, [x] + layer.trainable_variables)
    return [y.numpy()] + [g.numpy() for g in grads]


@pytest.mark.parametrize("filters, side, channels, activation", [
    (1, 14, 32, None), (3, 16, 8, "tanh"), (5, 7, 6, None), (2, 5, 3, "sigmoid")])
def test_subpixel_transposed_convolution_equals_keras(filters, side, channels, activation):
    x = np.random.default_rng(1).normal(size=(4, side, side, channels)).astype("float32")
    ref, sub = _pair(filters, 4, 2, activation, x.shape)
    assert sub._subpixel()
    want, got = _outputs_and_gradients(ref, x), _outputs_and_gradients(sub, x)
    assert got[0].shape == (4, 2 * side, 2 * side, filters)
    for name, w, g in zip(["output", "input gradient", "kernel gradient", "bias gradient"],
                          want, got):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4 * np.abs(w).max(), err_msg=name)


@pytest.mark.parametrize("make, filters, shape", [
    (_pair, 2, (3, 6, 6, 4)), (_conv_pair, 4, (3, 8, 8, 3))])
def test_fast_gradients_equal_keras_in_a_compiled_step_and_at_second_order(make, filters, shape):
    """In a ``tf.function`` (as in training) too; and the custom gradient is itself
    differentiable: the gradient of the input gradient's norm matches Keras's."""
    x = tf.convert_to_tensor(np.random.default_rng(3).normal(size=shape).astype("float32"))
    ref, fast = make(filters, 4, 2, "tanh", x.shape)

    @tf.function
    def run(layer):
        with tf.GradientTape() as outer:
            with tf.GradientTape() as inner:
                inner.watch(x)
                y = layer(x)
                loss = tf.reduce_sum(y * tf.cos(y))
            dx = inner.gradient(loss, x)
            penalty = tf.reduce_sum(dx * dx)
        return [dx] + outer.gradient(penalty, layer.trainable_variables)

    for name, w, g in zip(["input gradient", "kernel second order", "bias second order"],
                          run(ref), run(fast)):
        w, g = w.numpy(), g.numpy()
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4 * np.abs(w).max(), err_msg=name)


def test_subpixel_kernel_places_every_tap_once():
    # A kernel of distinct values: the 3x3 kernel holds each of its 16 taps exactly once per
    # output channel and input channel, and zeros elsewhere (36 places, 16 taps).
    _, sub = _pair(2, 4, 2, None, (1, 3, 3, 3))
    sub.kernel.assign(np.arange(1, 4 * 4 * 2 * 3 + 1, dtype="float32").reshape(4, 4, 2, 3))
    k = np.asarray(fast_layers._subpixel_kernel(sub.kernel))
    assert k.shape == (3, 3, 3, 8)
    values = k[k != 0]
    assert len(values) == 16 * 2 * 3 and sorted(values) == list(range(1, 97))


@pytest.mark.parametrize("kernel, strides", [(3, 2), (4, 1), (5, 2)])
def test_other_transposed_convolutions_use_keras_computation(kernel, strides):
    x = np.random.default_rng(2).normal(size=(2, 6, 6, 3)).astype("float32")
    ref, sub = _pair(2, kernel, strides, None, x.shape)
    assert not sub._subpixel()
    np.testing.assert_allclose(sub(x), ref(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("filters, side, channels, activation", [
    (32, 28, 1, None), (16, 32, 3, "tanh"), (5, 10, 2, None)])
def test_subpixel_input_gradient_convolution_equals_keras(filters, side, channels, activation):
    x = np.random.default_rng(4).normal(size=(4, side, side + 2, channels)).astype("float32")
    ref, sub = _conv_pair(filters, 4, 2, activation, x.shape)
    assert sub._subpixel(x)
    want, got = _outputs_and_gradients(ref, x), _outputs_and_gradients(sub, x)
    assert got[0].shape == (4, side // 2, side // 2 + 1, filters)
    for name, w, g in zip(["output", "input gradient", "kernel gradient", "bias gradient"],
                          want, got):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4 * np.abs(w).max(), err_msg=name)


@pytest.mark.parametrize("kernel, strides, side", [(3, 2, 8), (4, 1, 8), (4, 2, 9)])
def test_other_convolutions_use_keras_computation(kernel, strides, side):
    x = np.random.default_rng(6).normal(size=(2, side, side, 3)).astype("float32")
    ref, sub = _conv_pair(4, kernel, strides, None, x.shape)
    assert not sub._subpixel(x)
    for name, w, g in zip(["output", "input gradient", "kernel gradient", "bias gradient"],
                          _outputs_and_gradients(ref, x), _outputs_and_gradients(sub, x)):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5, err_msg=name)


def test_mask_dropout_keeps_the_right_fraction_and_scales_by_it():
    x = tf.ones((64, 14, 14, 32))
    layer = models.MaskDropout(0.25, seed=3)
    y = layer(x, training=True).numpy()
    kept = y != 0
    # 401,408 draws: the kept fraction's standard deviation is 0.0007
    assert abs(kept.mean() - 0.75) < 0.004
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)
    np.testing.assert_array_equal(layer(x, training=False), x)
    # a new mask each call, and the same masks from the same seed
    assert (layer(x, training=True).numpy() != y).any()
    again = models.MaskDropout(0.25, seed=3)
    np.testing.assert_array_equal(again(x, training=True), y)


def test_mask_dropout_bits_per_value():
    # 8 bits when they give the rate exactly, else 16
    assert [fast_layers._mask_bits(r) for r in (0.25, 0.5, 0.3125, 1.0)] == [8, 8, 8, 8]
    assert [fast_layers._mask_bits(r) for r in (0.1, 0.3, 0.9, 1 / 3)] == [16, 16, 16, 16]


@pytest.mark.parametrize("rate", [0.25, 0.1])
def test_mask_dropout_values_sharing_a_random_word_are_independent(rate):
    # 4 (8 bits) or 2 (16 bits) neighbouring values take their bits from one 32-bit number:
    # each position in the word keeps 1 - rate of its values, and the positions' masks are
    # uncorrelated
    x = tf.ones((400_000,))
    kept = models.MaskDropout(rate, seed=8)(x, training=True).numpy() != 0
    per_word = 32 // fast_layers._mask_bits(rate)
    columns = kept.reshape(-1, per_word).T.astype(float)
    np.testing.assert_allclose(columns.mean(axis=1), 1 - rate, atol=0.006)
    corr = np.corrcoef(columns)[np.triu_indices(per_word, 1)]
    assert np.abs(corr).max() < 0.015


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_mask_dropout_preserves_the_mean_at_any_rate(rate):
    x = tf.ones((200_000,))
    y = models.MaskDropout(rate, seed=4)(x, training=True).numpy()
    assert abs((y != 0).mean() - (1 - rate)) < 0.005
    assert abs(y.mean() - 1.0) < 0.02 / (1 - rate) ** 0.5
    assert np.asarray(models.MaskDropout(1.0)(x, training=True)).max() == 0


def test_mask_dropout_gradient_is_the_mask():
    x = tf.random.normal((8, 5, 5, 3))
    layer = models.MaskDropout(0.3, seed=5)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        total = tf.reduce_sum(y)
    g = tape.gradient(total, x).numpy()
    np.testing.assert_allclose(g, np.where(y.numpy() != 0, y.numpy() / x.numpy(), 0), rtol=1e-5)


@pytest.mark.parametrize("kwargs", [dict(learning_rate=1e-2), dict(learning_rate=3e-3, beta_1=0.5),
                                    dict(learning_rate=1e-2, clipnorm=0.1)])
def test_fused_adam_follows_keras_adam(kwargs):
    rng = np.random.default_rng(6)
    start = [rng.normal(size=s).astype("float32") for s in [(4, 3), (3,), (2, 2, 3, 5)]]
    targets = [rng.normal(size=v.shape).astype("float32") for v in start]
    runs = []
    for cls in (keras.optimizers.Adam, models.FusedAdam):
        variables = [keras.Variable(v) for v in start]
        opt = cls(**kwargs)
        for _ in range(20):
            with tf.GradientTape() as tape:
                loss = sum(tf.reduce_sum((v.value - t) ** 4) for v, t in zip(variables, targets))
            opt.apply(tape.gradient(loss, [v.value for v in variables]), variables)
        runs.append([v.numpy() for v in variables])
    for want, got, first in zip(runs[0], runs[1], start):
        assert np.abs(want - first).max() > 1e-3          # the variables moved
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)  # rounding order differs


def test_fused_adam_saves_and_loads_as_itself():
    opt = models.FusedAdam(2e-4, beta_1=0.5)
    back = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert type(back) is models.FusedAdam and back.beta_1 == 0.5


@pytest.mark.parametrize("fast", [True, False])
def test_models_build_their_fast_layers_only_when_asked(fast):
    gan = models.ACGAN((16, 16, 1), num_classes=10, latent_dim=4, base_filters=4,
                       fast_layers=fast)
    vae = models.ConditionalVAE((16, 16, 1), num_classes=10, latent_dim=4, base_filters=4,
                                fast_layers=fast)
    kinds = {type(lyr) for net in (gan.generator, gan.discriminator, vae.decoder)
             for lyr in net.layers}
    assert (models.SubpixelConv2DTranspose in kinds) is fast
    firsts = {type(net.get_layer("conv0")) for net in (gan.discriminator, vae.encoder)}
    assert firsts == ({models.SubpixelGradConv2D} if fast else {keras.layers.Conv2D})
    assert (models.MaskDropout in kinds) is fast
    assert (keras.layers.Dropout in kinds) is not fast
    assert gan.get_config()["fast_layers"] is fast
    gan.compile()
    vae.compile()
    adam = models.FusedAdam if fast else keras.optimizers.Adam
    assert {type(o) for o in (gan.g_optimizer, gan.d_optimizer, vae.optimizer)} == {adam}
