"""The explorers update their plots when a control moves: set a slider as a user would and check
that the plotted data are the formula's values at the new setting."""
import math

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("ipywidgets")

from gencomp_utils import theory as th  # noqa: E402
from gencomp_utils import widgets  # noqa: E402


def _normal_pdf(z, mu, sigma):
    return np.exp(-0.5 * ((z - mu) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))


@pytest.fixture()
def elbo_ex():
    return widgets.elbo_explorer(seed=0)


def test_elbo_explorer_starts_consistent(elbo_ex):
    d = elbo_ex.data
    model, x = widgets.default_elbo_problem(0)
    assert d["log_px"] == pytest.approx(model.log_marginal(x), abs=1e-12)
    assert d["gap"] == pytest.approx(d["log_px"] - d["elbo"], abs=1e-12)
    assert d["gap"] == pytest.approx(d["kl"], abs=1e-9)
    assert elbo_ex.image.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(elbo_ex.sliders) == {"mu", "sigma", "L"}


def test_elbo_explorer_follows_the_mean_slider(elbo_ex):
    model, x = widgets.default_elbo_problem(0)
    before = elbo_ex.lines["q"].get_ydata().copy()
    renders, png = elbo_ex.renders, elbo_ex.image.value
    elbo_ex.sliders["mu"].value = 0.7
    sigma = elbo_ex.sliders["sigma"].value
    z = elbo_ex.lines["q"].get_xdata()
    np.testing.assert_allclose(elbo_ex.lines["q"].get_ydata(), _normal_pdf(z, 0.7, sigma), rtol=1e-10)
    assert not np.allclose(before, elbo_ex.lines["q"].get_ydata())
    q = th.Gaussian.diagonal([0.7], [sigma])
    exact = th.elbo_exact(model, x, q)
    assert elbo_ex.data["elbo"] == pytest.approx(exact, abs=1e-12)
    assert elbo_ex.lines["elbo"].get_ydata()[0] == pytest.approx(exact, abs=1e-12)
    assert elbo_ex.data["gap"] == pytest.approx(th.kl_gaussians(q, model.posterior(x)), abs=1e-9)
    assert f"{exact:.3f}" in elbo_ex.readout.value
    assert elbo_ex.renders == renders + 1 and elbo_ex.image.value != png


def test_elbo_explorer_follows_sigma_and_the_curve(elbo_ex):
    model, x = widgets.default_elbo_problem(0)
    elbo_ex.sliders["sigma"].value = 0.4
    mu_grid = elbo_ex.lines["elbo_curve"].get_xdata()
    expected = [th.elbo_exact(model, x, th.Gaussian.diagonal([u], [0.4])) for u in mu_grid]
    np.testing.assert_allclose(elbo_ex.lines["elbo_curve"].get_ydata(), expected, rtol=1e-12)
    z = elbo_ex.lines["q"].get_xdata()
    np.testing.assert_allclose(elbo_ex.lines["q"].get_ydata(),
                               _normal_pdf(z, elbo_ex.sliders["mu"].value, 0.4), rtol=1e-10)


def test_elbo_explorer_gap_closes_at_the_posterior(elbo_ex):
    post_mean, post_std = elbo_ex.data["posterior_mean"], elbo_ex.data["posterior_std"]
    elbo_ex.sliders["mu"].value = post_mean
    elbo_ex.sliders["sigma"].value = post_std
    assert elbo_ex.data["gap"] == pytest.approx(0.0, abs=1e-9)
    assert elbo_ex.data["elbo_mc"] == pytest.approx(elbo_ex.data["log_px"], abs=1e-9)


def test_elbo_explorer_follows_the_sample_count(elbo_ex):
    model, x = widgets.default_elbo_problem(0)
    elbo_ex.sliders["L"].value = 37
    q = th.Gaussian.diagonal([elbo_ex.sliders["mu"].value], [elbo_ex.sliders["sigma"].value])
    expected = th.elbo_mc(model, x, q, 37, np.random.default_rng(0))
    assert elbo_ex.data["elbo_mc"] == pytest.approx(expected, abs=1e-12)
    assert elbo_ex.lines["elbo_mc"].get_ydata()[0] == pytest.approx(expected, abs=1e-12)
    assert len(elbo_ex.lines["samples"].get_xdata()) == 37
    assert "L = 37" in elbo_ex.readout.value


def test_elbo_explorer_rejects_a_2d_latent():
    model = th.LinearGaussianModel.random(3, 2, rng=0)
    with pytest.raises(ValueError):
        widgets.elbo_explorer(model, np.zeros(3))


def test_discriminator_explorer_follows_its_sliders():
    ex = widgets.discriminator_explorer()
    p_data = widgets.default_p_data()
    ex.sliders["mean"].value = 1.5
    ex.sliders["std"].value = 0.8
    x = ex.lines["d_star"].get_xdata()
    pd, pg = p_data.pdf(x), th.Mixture1D([1.5], [0.8]).pdf(x)
    np.testing.assert_allclose(ex.lines["p_g"].get_ydata(), pg, rtol=1e-12)
    np.testing.assert_allclose(ex.lines["d_star"].get_ydata(), pd / (pd + pg), rtol=1e-10)
    value = th.value_function_grid(th.optimal_logit(pd, pg), pd, pg, x, logit=True)
    assert ex.data["value"] == pytest.approx(value, abs=1e-12)
    assert ex.lines["value"].get_ydata()[0] == pytest.approx(value, abs=1e-12)
    assert ex.data["value"] == pytest.approx(-math.log(4) + 2 * ex.data["jsd"], abs=1e-8)
    assert f"{value:.4f}" in ex.readout.value
    # the curve of V(D*, G) over the mean at this std passes through the current point
    means = ex.lines["value_curve"].get_xdata()
    i = int(np.argmin(np.abs(means - 1.5)))
    assert ex.lines["value_curve"].get_ydata()[i] == pytest.approx(value, abs=1e-9)


def test_discriminator_explorer_reaches_minus_log4_only_at_p_data():
    p = th.Mixture1D([0.0], [1.0])
    ex = widgets.discriminator_explorer(p_data=p, mean=2.0, std=1.0)
    assert ex.data["value"] > -math.log(4) + 0.1
    ex.sliders["mean"].value = 0.0
    assert ex.data["value"] == pytest.approx(-math.log(4), abs=1e-8)
    np.testing.assert_allclose(ex.lines["d_star"].get_ydata(), 0.5, atol=1e-12)


def test_gan_toy_explorer_retrains_when_moved():
    ex = widgets.gan_toy_explorer(steps=0, seed=1)
    assert set(ex.controls) == {"lr_d", "lr_g", "steps", "loss", "prior"}
    ex.controls["prior"].value = "uniform"
    ex.sliders["steps"].value = 50
    ex.sliders["lr_g"].value = 10 ** -2.5
    h = th.train_toy_gan(50, lr_d=2e-3, lr_g=10 ** -2.5, prior="uniform", seed=1)
    np.testing.assert_array_equal(ex.lines["generated"].get_xdata(), h["samples"][:, 0])
    np.testing.assert_array_equal(ex.lines["generated"].get_ydata(), h["samples"][:, 1])
    np.testing.assert_array_equal(ex.lines["modes"].get_xdata(), h["step"])
    np.testing.assert_array_equal(ex.lines["modes"].get_ydata(), h["modes"])
    np.testing.assert_array_equal(ex.lines["quality"].get_ydata(), h["quality"])
    assert ex.data["settings"]["lr_g"] == pytest.approx(10 ** -2.5)
    assert f"{h['modes'][-1]} of 8" in ex.readout.value


def test_gan_toy_explorer_shows_a_given_history_without_retraining():
    h = th.train_toy_gan(20, seed=2, loss="saturating", d_warmup=5)
    ex = widgets.gan_toy_explorer(history=h)
    assert ex.data["history"] is h
    assert ex.controls["loss"].value == "saturating" and ex.sliders["steps"].value == 20
    ex.controls["loss"].value = "non-saturating"
    h2 = th.train_toy_gan(20, seed=2, loss="non-saturating", d_warmup=5)
    np.testing.assert_array_equal(ex.lines["generated"].get_xdata(), h2["samples"][:, 0])
