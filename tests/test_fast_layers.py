"""The AC-GAN's dropout in its CPU form computes what Keras's computes."""
from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from gencomp_utils import devices, fast_layers, models  # noqa: E402



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


@pytest.mark.parametrize("fast", [True, False])
def test_the_gan_builds_its_cpu_dropout_only_when_asked(fast):
    gan = models.ACGAN((16, 16, 1), num_classes=10, latent_dim=4, base_filters=4,
                       fast_layers=fast)
    kinds = {type(lyr) for net in (gan.generator, gan.discriminator) for lyr in net.layers}
    assert (models.MaskDropout in kinds) is fast
    assert (keras.layers.Dropout in kinds) is not fast
    assert gan.get_config()["fast_layers"] is fast
    assert type(models.ACGAN.from_config(gan.get_config()).discriminator.get_layer(
        "drop0")) is type(gan.discriminator.get_layer("drop0"))
    gan.compile()
    assert {type(o) for o in (gan.g_optimizer, gan.d_optimizer)} == {keras.optimizers.Adam}


def test_the_cpu_form_only_on_a_cpu():
    assert devices.choose(devices=["CPU"], flags=set()).fast_layers
    for machine in (["CPU", "GPU"], ["CPU", "GPU", "GPU"], ["CPU", "TPU"]):
        assert not devices.choose(devices=machine).fast_layers, machine
