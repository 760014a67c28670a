"""The notebook's sliders, driven from code: moving a slider shows what the model draws there."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ipywidgets")
keras = pytest.importorskip("keras")

from gencomp_utils import explore, models  # noqa: E402


@pytest.fixture(scope="module")
def pair():
    kw = dict(num_classes=10, latent_dim=4, base_filters=4)
    return {"VAE": models.ConditionalVAE((16, 16, 1), **kw), "GAN": models.ACGAN((16, 16, 1), **kw)}


def test_latent_sliders_show_what_each_model_draws(pair):
    ex = explore.latent_sliders(pair, dims=(0, 2))
    assert set(ex.sliders) == {"label", "z0", "z2"}
    assert set(ex.images) == {"VAE", "GAN"} and ex.image.shape == (16, 16, 1)
    before = {k: v.copy() for k, v in ex.images.items()}
    png_before = ex.views["VAE"].value

    ex.sliders["z0"].value = 2.5
    ex.sliders["label"].value = 7
    z = np.zeros(4, np.float32)
    z[0] = 2.5
    assert np.array_equal(ex.latent(), z)
    for name, model in pair.items():
        expected = model.sample(z=z[None], labels=[7])[0]
        np.testing.assert_allclose(ex.images[name], expected, atol=1e-6)
        assert not np.allclose(ex.images[name], before[name])
    assert ex.views["VAE"].value != png_before
    assert ex.widget.children  # displayable


def test_latent_map_rows_and_columns_move_the_chosen_coordinates(pair):
    vae = pair["VAE"]
    grid = explore.latent_map(vae, 3, dims=(1, 2), n=3, span=2.0)
    assert grid.shape == (3, 3, 16, 16, 1)
    z = np.zeros((1, 4), np.float32)
    z[0, 1], z[0, 2] = -2.0, 2.0  # first row, last column
    np.testing.assert_allclose(grid[0, -1], vae.sample(z=z, labels=[3])[0], atol=1e-6)
    with pytest.raises(ValueError, match="two different"):
        explore.latent_map(vae, 3, dims=(1, 1))


def test_map_explorer_redraws_on_a_new_class(pair):
    ex = explore.map_explorer(pair, n=3)
    assert set(ex.sliders) == {"label", "row_dim", "col_dim"}
    old = ex.images["GAN"].copy()
    ex.sliders["label"].value = 4
    np.testing.assert_allclose(ex.images["GAN"], explore.latent_map(pair["GAN"], 4, n=3),
                               atol=1e-6)
    assert not np.allclose(old, ex.images["GAN"])
    ex.sliders["col_dim"].value = 0  # same coordinate on both axes: a single row
    assert ex.images["VAE"].shape == (1, 3, 16, 16, 1)


def test_bad_slider_requests_are_refused(pair):
    with pytest.raises(ValueError, match="out of range"):
        explore.latent_sliders(pair, dims=(0, 9))
    assert explore.to_png(np.zeros((4, 4, 1)), scale=2)[:4] == b"\x89PNG"


def test_face_explorer_sliders_move_the_image_as_the_model_says():
    from gencomp_utils import explore, models

    vae = models.ConditionalVAE((16, 16, 3), 2, 4, 4, likelihood="gaussian", seed=0)
    x = np.random.default_rng(0).random((12, 16, 16, 3)).astype("float32")
    y = np.arange(12) % 2
    smile = np.arange(12) % 3 == 0
    d = explore.attribute_direction(vae, x, y, smile)
    mean, _ = vae.encode_numpy(x, y)
    np.testing.assert_allclose(d, mean[smile].mean(0) - mean[~smile].mean(0), atol=1e-6)
    za, zb = vae.latent(1, seed=1)[0], vae.latent(1, seed=2)[0]
    ex = explore.FaceExplorer(vae, za, zb, {"Smiling": d}, class_names=["female", "male"])
    np.testing.assert_allclose(ex.image, vae.sample(z=za[None], labels=[0])[0], atol=1e-5)
    before = ex.image.copy()
    ex.sliders["label"].value = 1.0  # fully "male": the one-hot label of class 1
    np.testing.assert_allclose(ex.image, vae.sample(z=za[None], labels=[1])[0], atol=1e-5)
    assert not np.allclose(ex.image, before)
    ex.sliders["between"].value = 1.0
    np.testing.assert_allclose(ex.image, vae.sample(z=zb[None], labels=[1])[0], atol=1e-5)
    ex.sliders["Smiling"].value = 2.0
    np.testing.assert_allclose(ex.image, vae.sample(z=(zb + 2 * d)[None], labels=[1])[0],
                               atol=1e-5)
    ex.sliders["label"].value = 0.5  # a blend the model never saw: between the two labels
    np.testing.assert_allclose(ex.image, vae.blend((zb + 2 * d)[None], [0.5, 0.5])[0], atol=1e-5)
    with pytest.raises(ValueError, match="sum to 1"):
        vae.blend(za[None], [0.5, 0.6])
    with pytest.raises(ValueError, match="both with and without"):
        explore.attribute_direction(vae, x, y, np.ones(12, bool))


def test_scores_along_a_direction_and_random_controls():
    from gencomp_utils import explore, models

    vae = models.ConditionalVAE((16, 16, 3), 2, 4, 4, likelihood="gaussian", seed=0)
    codes, labels = vae.latent(6, seed=3), np.array([0, 1, 0, 1, 0, 1])
    d = np.array([1.0, 0, 0, 0], np.float32)
    got = explore.scores_along(vae, codes, labels, d, [0.0, 2.0], lambda im: im.mean((1, 2, 3)))
    want = [float(vae.sample(z=codes + a * d, labels=labels).mean()) for a in (0.0, 2.0)]
    np.testing.assert_allclose(got, want, rtol=1e-5)
    r = explore.random_directions(np.array([3.0, 4.0, 0, 0]), 5, seed=1)
    assert r.shape == (5, 4)
    np.testing.assert_allclose(np.linalg.norm(r, axis=1), 5.0, rtol=1e-5)


def _every_explorer(pair):
    from gencomp_utils import widgets

    two = models.ConditionalVAE((16, 16, 3), num_classes=2, latent_dim=4, base_filters=4)
    z = np.zeros((2, 4), np.float32)
    z[1] = 1.0
    return [widgets.elbo_explorer(), widgets.discriminator_explorer(),
            widgets.gan_toy_explorer(steps=20), explore.latent_sliders(pair),
            explore.map_explorer(pair, n=3),
            explore.FaceExplorer(two, z[0], z[1], {"smile": z[1]}, title="VAE")]


def _controls(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _controls(child)


def test_every_slider_redraws_on_release_only(pair):
    """Redrawing while a slider is dragged would queue a model call at every step of the drag; on
    a projector or a slow Colab runtime the picture then lags behind the hand."""
    import ipywidgets

    kinds = (ipywidgets.FloatSlider, ipywidgets.IntSlider, ipywidgets.FloatLogSlider)
    sliders = [(type(ex).__name__, w) for ex in _every_explorer(pair)
               for w in _controls(ex.widget) if isinstance(w, kinds)]
    assert len(sliders) >= 10
    assert [(k, s.description) for k, s in sliders if s.continuous_update] == []


def test_an_explorer_displays_as_its_widget_with_a_picture_of_its_state(pair):
    """One output carries the live widget and a PNG of what it shows: a front end without a
    widget manager shows the picture. The picture follows the sliders."""
    import base64
    import io

    import ipywidgets
    import matplotlib.image

    for ex in _every_explorer(pair):
        bundle = ex._repr_mimebundle_()
        view = bundle["application/vnd.jupyter.widget-view+json"]
        assert view["model_id"] == ex.widget.model_id and view["version_major"] == 2
        png = base64.b64decode(bundle["image/png"])
        assert matplotlib.image.imread(io.BytesIO(png), format="png").shape[0] > 20
        control = next(iter(ex.sliders.values()))
        if hasattr(control, "options"):  # a drop-down: another option
            control.value = next(v for _, v in _options(control) if v != control.value)
        else:  # a log slider's min and max are exponents
            top, bottom = ((control.base ** control.max, control.base ** control.min)
                           if isinstance(control, ipywidgets.FloatLogSlider)
                           else (control.max, control.min))
            control.value = top if control.value != top else bottom
        assert ex.snapshot() != png, (type(ex).__name__, control.description)


def _options(dropdown):
    return [o if isinstance(o, tuple) else (o, o) for o in dropdown.options]
