"""The conditional VAE and the AC-GAN on tiny shapes: sizes, losses, saving, bad input."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from gencomp_utils import load_numpy, models  # noqa: E402

TINY = dict(num_classes=10, latent_dim=4, base_filters=4)


@pytest.fixture(scope="module")
def digits16():
    """256 real MNIST digits (or the generated stand-ins) at 16x16, in [0, 1]."""
    return load_numpy("mnist", "test[:256]", image_size=16)


@pytest.mark.parametrize("shape, levels, start", [
    ((28, 28, 1), 2, (7, 7)), ((32, 32, 3), 3, (4, 4)), ((64, 64, 3), 4, (4, 4)),
    ((16, 16, 1), 2, (4, 4)), ((8, 8, 3), 1, (4, 4)), ((72, 72, 3), 3, (9, 9))])
def test_architecture_scales_with_image_size(shape, levels, start):
    arch = models.Architecture(shape, base_filters=8)
    assert arch.levels == levels and arch.start_size == start
    assert arch.filters == [min(8 * 2 ** i, arch.max_filters) for i in range(levels)]
    assert arch.describe().startswith(f"{shape[0]}x{shape[1]}x{shape[2]} -> ")


@pytest.mark.parametrize("shape", [(27, 27, 1), (100, 100, 3), (4, 4, 1), (34, 34, 3),
                                   (28, 28, 2)])
def test_unsupported_image_size_is_refused(shape):
    with pytest.raises(ValueError, match="not supported|channels"):
        models.Architecture(shape)


@pytest.mark.parametrize("shape", [(16, 16, 1), (28, 28, 1), (32, 32, 3), (64, 64, 3)])
def test_output_shapes_for_each_image_size(shape):
    vae = models.ConditionalVAE(shape, **TINY)
    gan = models.ACGAN(shape, **TINY)
    x = np.random.default_rng(0).random((2,) + shape).astype("float32")
    y = np.array([3, 7])
    mean, log_var = vae.encoder([x, np.eye(10, dtype="float32")[y]])
    assert mean.shape == log_var.shape == (2, 4)
    assert vae.decoder([np.asarray(mean), np.eye(10, dtype="float32")[y]]).shape == (2,) + shape
    assert vae((x, y)).shape == (2,) + shape
    assert gan.generator([np.zeros((2, 4), "float32"), np.eye(10, dtype="float32")[y]]).shape \
        == (2,) + shape
    real_fake, cls, projection = gan.discriminator(x)
    assert real_fake.shape == (2, 1) and cls.shape == projection.shape == (2, 10)
    logit, _ = gan.judge(x * 2 - 1, np.eye(10, dtype="float32")[y])
    assert logit.shape == (2, 1)
    for m in (vae, gan):
        s = m.sample(labels=y, seed=0)
        assert s.shape == (2,) + shape and s.dtype == np.float32
        assert 0.0 <= s.min() and s.max() <= 1.0


def _fit(model, x, y, epochs=4, batch=32):
    lo, hi = model.value_range
    h = model.fit(x * (hi - lo) + lo, y, batch_size=batch, epochs=epochs, verbose=0,
                  shuffle=False)
    return h.history


def test_vae_losses_finite_and_falling_on_real_data(digits16):
    x, y = digits16
    vae = models.ConditionalVAE((16, 16, 1), **TINY)
    vae.compile(jit_compile=False)
    h = _fit(vae, x, y)
    for k in ("loss", "reconstruction", "kl", "elbo"):
        assert np.all(np.isfinite(h[k])), k
    assert h["loss"][-1] < h["loss"][0]
    assert np.allclose(h["elbo"], -(np.array(h["reconstruction"]) + np.array(h["kl"])),
                       rtol=1e-4)


def test_acgan_losses_finite_and_class_loss_falls_on_real_data(digits16):
    x, y = digits16
    gan = models.ACGAN((16, 16, 1), **TINY)
    gan.compile(jit_compile=False)
    h = _fit(gan, x, y, epochs=5)
    for k in ("d_loss", "g_loss", "d_class", "real_score", "fake_score"):
        assert np.all(np.isfinite(h[k])), k
    assert h["d_class"][-1] < h["d_class"][0]


def test_vae_options_l_samples_beta_gaussian_and_bf16(digits16):
    x, y = digits16
    for kwargs in (dict(num_samples=3, beta=0.5), dict(likelihood="gaussian"),
                   dict(precision="mixed_bfloat16")):
        vae = models.ConditionalVAE((16, 16, 1), **TINY, **kwargs)
        vae.compile(jit_compile=False)
        h = _fit(vae, x[:32], y[:32], epochs=1)
        assert np.all(np.isfinite(h["loss"])), kwargs
        assert vae.sample(labels=[1]).dtype == np.float32
    # L samples average the reconstruction term: one image, L draws, the same expectation and a
    # variance L times smaller (a sum over the draws, or one draw only, fails one of the two).
    one = models.ConditionalVAE((16, 16, 1), **TINY, num_samples=1)
    four = models.ConditionalVAE((16, 16, 1), **TINY, num_samples=4)
    four.set_weights(one.get_weights())
    batch, labels = np.repeat(x[:1], 400, axis=0), np.repeat(y[:1], 400)
    r1, r4 = (np.asarray(m.losses_per_image(batch, labels)[0]) for m in (one, four))
    se = np.sqrt(r1.var() / len(r1) + r4.var() / len(r4))
    assert abs(r1.mean() - r4.mean()) < 4 * se, (r1.mean(), r4.mean(), se)
    assert 2.5 < r1.var() / r4.var() < 6.5, r1.var() / r4.var()


def test_gaussian_sigma_is_learned_only_when_not_fixed():
    learned = models.ConditionalVAE((16, 16, 1), **TINY, likelihood="gaussian")
    fixed = models.ConditionalVAE((16, 16, 1), **TINY, likelihood="gaussian", gaussian_sigma=0.2)
    assert any("log_sigma" in v.path for v in learned.trainable_variables)
    assert not any("log_sigma" in v.path for v in fixed.trainable_variables)
    assert np.isclose(float(fixed.log_sigma.numpy()), np.log(0.2))


def test_acgan_minimax_loss_and_bf16_run(digits16):
    x, y = digits16
    original = dict(projection=False, fake_class_loss=True)  # the AC-GAN of Odena et al.
    for kwargs in (dict(gan_loss="minimax", **original), dict(precision="mixed_bfloat16")):
        gan = models.ACGAN((16, 16, 1), **TINY, **kwargs)
        gan.compile(jit_compile=False)
        h = _fit(gan, x[:32], y[:32], epochs=1)
        assert np.all(np.isfinite(h["g_loss"])), kwargs
        assert gan.sample(2, labels=5).dtype == np.float32


def test_mixed_float16_wraps_every_optimizer_in_loss_scaling(digits16):
    x, y = digits16
    vae = models.ConditionalVAE((16, 16, 1), **TINY, precision="mixed_float16")
    gan = models.ACGAN((16, 16, 1), **TINY, precision="mixed_float16")
    for m in (vae, gan):
        m.compile(jit_compile=False)
        h = _fit(m, x[:16], y[:16], epochs=1, batch=16)
        assert all(np.all(np.isfinite(v)) for v in h.values())
    assert isinstance(vae.optimizer, keras.optimizers.LossScaleOptimizer)
    assert all(isinstance(o, keras.optimizers.LossScaleOptimizer) for o in gan.optimizers.values())
    assert vae.decoder.layers[-1].dtype_policy.name == "float32"  # outputs stay float32


def test_acgan_updates_each_network_with_its_own_optimizer(digits16):
    x, y = digits16
    gan = models.ACGAN((16, 16, 1), **TINY)
    gan.compile(g_optimizer=keras.optimizers.Adam(1e-3), d_optimizer=keras.optimizers.SGD(1e-2))
    _fit(gan, x[:64], y[:64], epochs=1)
    assert int(gan.g_optimizer.iterations.numpy()) == 2
    assert int(gan.d_optimizer.iterations.numpy()) == 2
    assert isinstance(gan.d_optimizer, keras.optimizers.SGD)


def test_multi_hot_labels_for_attributes():
    x = np.random.default_rng(0).random((8, 16, 16, 3)).astype("float32")
    y = np.random.default_rng(1).integers(0, 2, (8, 3)).astype("float32")
    for cls in (models.ConditionalVAE, models.ACGAN):
        m = cls((16, 16, 3), num_classes=3, latent_dim=4, base_filters=4)
        m.compile(jit_compile=False)
        h = _fit(m, x, y, epochs=1, batch=8)
        assert all(np.all(np.isfinite(v)) for v in h.values())
        assert m.sample(labels=y[:2]).shape == (2, 16, 16, 3)


@pytest.mark.parametrize("cls", [models.ConditionalVAE, models.ACGAN])
def test_save_and_load_round_trip_gives_identical_outputs(cls, digits16, tmp_path):
    x, y = digits16
    m = cls((16, 16, 1), **TINY)
    m.compile(jit_compile=False)
    _fit(m, x[:64], y[:64], epochs=1)
    path = tmp_path / "model.keras"
    m.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is cls and loaded.get_config() == m.get_config()
    for name, opt in loaded.optimizers.items() if cls is models.ACGAN else [("o", loaded.optimizer)]:
        assert opt.built and int(opt.iterations.numpy()) == 2, name  # optimizer state restored
    z = m.latent(6, seed=1)
    np.testing.assert_array_equal(loaded.sample(z=z, labels=np.arange(6)),
                                  m.sample(z=z, labels=np.arange(6)))
    if cls is models.ConditionalVAE:
        np.testing.assert_array_equal(loaded.reconstruct(x[:4], y[:4]), m.reconstruct(x[:4], y[:4]))
    else:
        assert loaded.g_optimizer is not None and loaded.d_optimizer is not None


FIXTURES = Path(__file__).parent / "fixtures"  # made by fixtures/make_saved_models.py


@pytest.mark.parametrize("name", ["vae", "acgan"])
def test_models_saved_by_an_earlier_version_fail_with_a_message_to_retrain(name):
    """The fixtures were saved with the CPU forms of some convolutions, which this version no
    longer builds: their weights are stored under other names."""
    # Keras wraps the model's ValueError in a TypeError that quotes it
    with pytest.raises((TypeError, ValueError),
                       match="earlier version of gencomp_utils.*train it again"):
        keras.saving.load_model(FIXTURES / f"saved_{name}.keras")


@pytest.mark.parametrize("name", ["vae", "acgan"])
def test_models_saved_now_load_and_give_the_same_images(tmp_path, name):
    """A model saved by this version, with the options the fixtures were saved with
    (``make_saved_models.py``), loads and draws the same images; an earlier VAE saved without
    the CPU forms (no ``config_version``, ``fast_layers`` false) loads too."""
    expected = np.load(FIXTURES / "saved_models_expected.npz")
    build = models.ConditionalVAE if name == "vae" else models.ACGAN
    model = build((16, 16, 1), **TINY, fast_layers=True) if name == "acgan" else build(
        (16, 16, 1), **TINY)
    model.compile()
    path = tmp_path / f"{name}.keras"
    model.save(path)
    back = keras.saving.load_model(path)
    z, labels = expected["z"], expected["labels"]
    np.testing.assert_allclose(back.sample(z=z, labels=labels), model.sample(z=z, labels=labels),
                               atol=1e-6)
    config = model.get_config() | {"fast_layers": False}
    del config["config_version"]
    assert type(build.from_config(config)) is build


def test_sampling_helpers_and_their_shapes():
    vae = models.ConditionalVAE((16, 16, 1), **TINY)
    z0, z1 = vae.latent(1, seed=0)[0], vae.latent(1, seed=1)[0]
    path = vae.interpolate(z0, z1, labels=[2, 5], steps=5)
    assert path.shape == (2, 5, 16, 16, 1)
    np.testing.assert_allclose(path[0, 0], vae.sample(z=z0[None], labels=[2])[0], atol=1e-6)
    np.testing.assert_allclose(path[1, -1], vae.sample(z=z1[None], labels=[5])[0], atol=1e-6)
    assert vae.interpolate(z0, z1, labels=3, steps=4, spherical=True).shape == (1, 4, 16, 16, 1)
    assert vae.sample(12).shape == (12, 16, 16, 1)  # labels cycle through the classes
    np.testing.assert_array_equal(vae.sample(labels=[1, 2], seed=3), vae.sample(labels=[1, 2],
                                                                                seed=3))
    x = np.random.default_rng(0).random((3, 16, 16, 1)).astype("float32")
    assert vae.reconstruct(x, [0, 1, 2]).shape == (3, 16, 16, 1)
    assert np.isfinite(vae.elbo(x, [0, 1, 2]))


def test_bad_input_is_refused_fast():
    vae = models.ConditionalVAE((16, 16, 1), **TINY)
    with pytest.raises(ValueError, match="out of range"):
        vae.sample(labels=[10])
    with pytest.raises(ValueError, match="out of range"):
        vae.sample(labels=[-1])
    with pytest.raises(ValueError, match="image shape"):
        vae.reconstruct(np.zeros((2, 28, 28, 1)), [0, 1])
    with pytest.raises(ValueError, match="latent_dim"):
        vae.sample(z=np.zeros((2, 5)), labels=[0, 1])
    with pytest.raises(ValueError, match="likelihood"):
        models.ConditionalVAE((16, 16, 1), likelihood="poisson")
    with pytest.raises(ValueError, match="num_samples"):
        models.ConditionalVAE((16, 16, 1), num_samples=0)
    with pytest.raises(ValueError, match="gan_loss"):
        models.ACGAN((16, 16, 1), gan_loss="wasserstein")
    with pytest.raises(ValueError, match="precision"):
        models.ACGAN((16, 16, 1), precision="float16")


def _largest_singular_values(gan) -> list[float]:
    """The largest singular value of each kernel of the discriminator (convolutions and heads)."""
    out = []
    for layer in gan.discriminator.layers:
        inner = getattr(layer, "layer", layer)  # inside a SpectralNormalization wrapper
        if hasattr(inner, "kernel"):
            w = np.asarray(inner.kernel).reshape(-1, inner.kernel.shape[-1])
            out.append(float(np.linalg.svd(w, compute_uv=False)[0]))
    return out


def test_spectral_norm_keeps_each_layer_of_the_discriminator_at_norm_one(digits16):
    x, y = digits16
    largest = {}
    for sn in (True, False):
        gan = models.ACGAN((16, 16, 1), **TINY, spectral_norm=sn)
        gan.compile(jit_compile=False)
        _fit(gan, x[:128], y[:128], epochs=4)
        largest[sn] = _largest_singular_values(gan)
        assert len(largest[sn]) == 5  # two convolutions, three heads
    # one power iteration per step estimates the norm; the last Adam step moves it a little
    assert all(0.8 < s < 1.2 for s in largest[True]), largest
    assert not all(0.8 < s < 1.2 for s in largest[False]), largest  # without it: not so


def test_discriminator_sees_real_and_generated_images_as_one_batch(digits16, monkeypatch):
    """Spectral normalisation rewrites the weights at every training-mode call: in a training
    step, one call in the discriminator's step, with the real and the generated images
    together (both judged by the same weights), and one in the generator's."""
    x, y = digits16
    gan = models.ACGAN((16, 16, 1), **TINY, spectral_norm=True)
    gan.compile(jit_compile=False)
    calls, judge = [], gan.judge

    def spy(images, onehot, training=False):
        calls.append((int(images.shape[0]), training))
        return judge(images, onehot, training=training)

    monkeypatch.setattr(gan, "judge", spy)
    gan.train_step((keras.ops.convert_to_tensor(x[:8] * 2 - 1), keras.ops.convert_to_tensor(y[:8])))
    assert calls == [(16, True), (8, True)]


def test_spectral_norm_writes_float32_weights_under_mixed_precision(digits16):
    """Under mixed_float16 the layers compute in float16, but W / sigma is written into the
    float32 kernel in float32: a float16 computation would leave every entry a float16."""
    x, _ = digits16
    gan = models.ACGAN((16, 16, 1), **TINY, spectral_norm=True, precision="mixed_float16")
    for _ in range(30):  # a power-iteration step per call: from a random start to sigma
        gan.discriminator(x[:4] * 2 - 1, training=True)
    kernel = np.asarray(gan.discriminator.get_layer("conv0_sn").layer.kernel)
    assert kernel.dtype == np.float32
    assert np.mean(kernel.astype(np.float16).astype(np.float32) == kernel) < 0.5
    w = kernel.reshape(-1, kernel.shape[-1])
    assert np.linalg.svd(w, compute_uv=False)[0] == pytest.approx(1.0, abs=0.02)


def test_one_class_is_an_unconditional_gan(digits16):
    x, _ = digits16
    gan = models.ACGAN((16, 16, 1), num_classes=1, latent_dim=4, base_filters=4,
                       projection=False)
    gan.compile(jit_compile=False)
    h = _fit(gan, x[:64], np.zeros(64, np.int32), epochs=2)
    assert np.all(np.isfinite(h["g_loss"])) and np.allclose(h["d_class"], 0.0)
    assert gan.sample(labels=np.zeros(3, np.int32)).shape == (3, 16, 16, 1)
