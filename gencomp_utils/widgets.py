"""Slider explorers for the theory notebooks (ipywidgets + matplotlib).

Each function returns an :class:`Explorer`: ``display(explorer)`` shows it in a notebook (see
:class:`Shown`), and code (or a test) can drive it without a browser::

    ex = elbo_explorer()
    ex.sliders["mu"].value = 0.5     # the plot and the numbers update at once
    ex.lines["q"].get_ydata()        # the density of the new q
    ex.data["gap"]                   # log p(x) - ELBO

The figure is a plain :class:`matplotlib.figure.Figure` (no pyplot, so nothing is displayed twice
and any backend works); after each change it is drawn to PNG into ``explorer.image``.

Taught in ``01_vae_lower_bound`` (:func:`elbo_explorer`) and ``02_gan_value_function``
(:func:`discriminator_explorer`, :func:`gan_toy_explorer`).
"""
from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import theory

__all__ = ["Explorer", "Shown", "discriminator_explorer", "elbo_explorer", "gan_toy_explorer"]


class Shown:
    """Something with a ``widget`` and a ``snapshot()`` (PNG bytes of what it shows now).

    ``display(obj)`` puts both in one output: front ends with a widget manager (JupyterLab,
    Colab) show the live widget; the others (an HTML export, GitHub's notebook view) show the
    picture of the starting state, so the lesson still reads there.
    """

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"application/vnd.jupyter.widget-view+json": {
                    "version_major": 2, "version_minor": 0, "model_id": self.widget.model_id},
                "image/png": base64.b64encode(self.snapshot()).decode("ascii"),
                "text/plain": f"{type(self).__name__} (sliders: {', '.join(self.sliders)})"}


@dataclass
class Explorer(Shown):
    """An interactive figure: controls, the figure they redraw, and the numbers shown.

    Attributes:
        widget: the box to ``display`` (controls, numbers, picture).
        sliders: the sliders by name (setting ``.value`` updates everything).
        controls: every control by name (the sliders and any drop-down).
        figure: the matplotlib figure.
        lines: the figure's artists by name (``Line2D``: ``get_xdata`` / ``get_ydata``).
        data: the current numbers and arrays (what the lines and the read-out show).
        readout: the HTML widget with the numbers.
        image: the ``ipywidgets.Image`` holding the latest drawing of the figure.
        update: recompute and redraw from the controls' current values.
        renders: how many times the figure has been drawn.
    """

    widget: object
    sliders: dict
    controls: dict
    figure: object
    lines: dict
    data: dict
    readout: object
    image: object
    update: Callable[[], None]
    renders: int = field(default=0)

    def snapshot(self) -> bytes:
        """The latest drawing of the figure, as PNG bytes."""
        return self.image.value


def _figure(ncols: int, figsize):
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.subplots(1, ncols)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=72)
    return buf.getvalue()


def _table(rows) -> str:
    cells = "".join(f"<tr><td style='padding-right:1em'>{k}</td><td><code>{v}</code></td></tr>"
                    for k, v in rows)
    return f"<table>{cells}</table>"


def _assemble(sliders: dict, extra: dict, fig, lines, data, compute, readout_rows,
              title: str) -> Explorer:
    """Wire controls to ``compute`` (which fills ``data`` and the lines) and to the picture."""
    import ipywidgets as W

    controls = {**sliders, **extra}
    readout = W.HTML()
    image = W.Image(format="png")
    box = W.VBox([W.HTML(f"<b>{title}</b>"), W.HBox([W.VBox(list(controls.values())), readout]),
                  image])
    ex = Explorer(widget=box, sliders=sliders, controls=controls, figure=fig, lines=lines,
                  data=data, readout=readout, image=image, update=lambda: None)

    def update(*_):
        compute({k: c.value for k, c in controls.items()})
        readout.value = _table(readout_rows(data))
        image.value = _png(fig)
        ex.renders += 1

    for c in controls.values():
        c.observe(update, names="value")
    ex.update = update
    update()
    return ex


# --- 01: the ELBO, log p(x) and the gap ----------------------------------------------------------

def default_elbo_problem(seed: int = 0):
    """The 1-latent linear-Gaussian model and data point used by :func:`elbo_explorer`.

    Returns:
        ``(model, x)``: a :class:`theory.LinearGaussianModel` with ``D = 3, M = 1`` and one
        data point drawn from it.
    """
    rng = np.random.default_rng(seed)
    model = theory.LinearGaussianModel.random(3, 1, noise_std=1.0, rng=rng)
    x = model.sample(1, rng)[0][0]
    return model, x


def elbo_explorer(model: theory.LinearGaussianModel | None = None, x=None, mu: float | None = None,
                  sigma: float = 1.0, L: int = 16, seed: int = 0) -> Explorer:
    """Move the mean and standard deviation of ``q(z|x)`` and the number of samples ``L``.

    Left: the exact posterior ``p(z|x)``, ``q(z|x)`` and the ``L`` draws. Right: the ELBO as a
    function of ``q``'s mean (at the current standard deviation), ``log p(x)`` above it, the
    exact ELBO at the current ``q`` and its ``L``-sample estimate (eq. 2-3).

    Args:
        model: a linear-Gaussian model with one latent dimension (default:
            :func:`default_elbo_problem`).
        x: the data point (default: drawn with the model).
        mu: starting mean of ``q`` (default: 1.5 away from the posterior mean).
        sigma: starting standard deviation of ``q``.
        L: starting number of Monte Carlo samples.
        seed: seed of the default model and of the Monte Carlo draws (the same for every
            setting, so moving a slider moves the same draws).

    Returns:
        An :class:`Explorer` with sliders ``mu``, ``sigma``, ``L``; lines ``posterior``, ``q``,
        ``samples``, ``elbo_curve``, ``log_px``, ``elbo`` (current point), ``elbo_mc``; and
        ``data`` keys ``mu, sigma, L, log_px, elbo, gap, kl, elbo_mc, elbo_mc_se, z, q_pdf``.
    """
    import ipywidgets as W

    if model is None:
        model, x0 = default_elbo_problem(seed)
        x = x0 if x is None else x
    if model.latent_dim != 1:
        raise ValueError("elbo_explorer needs a model with one latent dimension")
    if x is None:
        x = model.sample(1, np.random.default_rng(seed))[0][0]
    x = np.asarray(x, dtype=float)
    post = model.posterior(x)
    m, s = float(post.mean[0]), float(np.sqrt(post.cov[0, 0]))
    log_px = model.log_marginal(x)
    mu = m + 1.5 if mu is None else mu
    lo, hi = math.floor(min(m - 3, -3)), math.ceil(max(m + 3, 3))
    z = np.linspace(lo, hi, 401)
    mu_grid = np.linspace(lo, hi, 161)

    sliders = {
        "mu": W.FloatSlider(value=mu, min=lo, max=hi, step=0.05, description="mean of q",
                            continuous_update=False),
        "sigma": W.FloatSlider(value=sigma, min=0.05, max=2.0, step=0.01, description="std of q",
                               continuous_update=False),
        "L": W.IntSlider(value=L, min=1, max=256, description="L samples",
                         continuous_update=False),
    }
    fig, (ax1, ax2) = _figure(2, (9.5, 3.4))
    lines = {
        "posterior": ax1.plot(z, np.exp(post.log_prob(z[:, None])), "k-", lw=2,
                              label="posterior $p(z|x)$")[0],
        "q": ax1.plot(z, np.zeros_like(z), "C1-", lw=2, label="$q(z|x)$")[0],
        "samples": ax1.plot([], [], "C1|", ms=12, label="draws $z^{(l)}$")[0],
    }
    ax1.set(xlabel="z", ylabel="density", xlim=(lo, hi),
            ylim=(0, 1.15 * max(1 / (s * math.sqrt(2 * math.pi)),
                                1 / (0.3 * math.sqrt(2 * math.pi)))))
    ax1.legend(loc="upper left", fontsize=8)
    lines["elbo_curve"] = ax2.plot(mu_grid, np.zeros_like(mu_grid), "C0-",
                                   label="ELBO at this std")[0]
    lines["log_px"] = ax2.axhline(log_px, color="k", ls="--", label="log p(x)")
    lines["elbo"] = ax2.plot([], [], "C0o", label="ELBO of q")[0]
    lines["elbo_mc"] = ax2.plot([], [], "C3x", ms=9, mew=2, label="L-sample estimate")[0]
    ax2.set(xlabel="mean of q", ylabel="nats", xlim=(lo, hi), ylim=(log_px - 12, log_px + 2))
    ax2.legend(loc="lower center", fontsize=8)
    data = {"log_px": log_px, "z": z, "posterior_mean": m, "posterior_std": s}

    def compute(v):
        q = theory.Gaussian.diagonal(v["mu"], v["sigma"])
        e = theory.elbo_exact(model, x, q)
        terms = theory.elbo_terms(model, x, q, v["L"], np.random.default_rng(seed))
        est = terms["elbo"]
        se = float(est.std(ddof=1) / math.sqrt(len(est))) if len(est) > 1 else float("nan")
        q_pdf = np.exp(q.log_prob(z[:, None]))
        curve = np.array([theory.elbo_exact(model, x, theory.Gaussian.diagonal(u, v["sigma"]))
                          for u in mu_grid])
        data.update(mu=v["mu"], sigma=v["sigma"], L=v["L"], elbo=e, gap=log_px - e,
                    kl=theory.kl_gaussians(q, post), elbo_mc=float(est.mean()), elbo_mc_se=se,
                    q_pdf=q_pdf, elbo_curve=curve, draws=terms["z"][:, 0])
        lines["q"].set_ydata(q_pdf)
        lines["samples"].set_data(terms["z"][:, 0], np.zeros(v["L"]))
        lines["elbo_curve"].set_ydata(curve)
        lines["elbo"].set_data([v["mu"]], [e])
        lines["elbo_mc"].set_data([v["mu"]], [data["elbo_mc"]])

    def rows(d):
        return [("log p(x)", f"{d['log_px']:.3f}"), ("ELBO (exact)", f"{d['elbo']:.3f}"),
                ("gap log p(x) - ELBO", f"{d['gap']:.3f}"),
                ("KL(q || p(z|x))", f"{d['kl']:.3f}"),
                (f"ELBO estimate, L = {d['L']}",
                 f"{d['elbo_mc']:.3f} ± {d['elbo_mc_se']:.3f}")]

    return _assemble(sliders, {}, fig, lines, data, compute, rows,
                     "The lower bound: move q towards the posterior and the gap closes")


# --- 02: the optimal discriminator and V(D*, G) --------------------------------------------------

def default_p_data() -> theory.Mixture1D:
    """The 1-D data density of notebook 02: two equal modes at -2 and 2 (std 0.6)."""
    return theory.Mixture1D([-2.0, 2.0], [0.6, 0.6])


def discriminator_explorer(p_data: theory.Mixture1D | None = None, mean: float = 0.0,
                           std: float = 1.0) -> Explorer:
    """Move a Gaussian ``p_g`` against ``p_data``; see ``D*`` and ``V(D*, G)`` follow.

    Left: ``p_data``, ``p_g`` and ``D*(x) = p_data / (p_data + p_g)``. Right: ``V(D*, G)`` as a
    function of ``p_g``'s mean (at the current standard deviation), with ``-log 4``, the value
    when ``p_g = p_data``.

    Args:
        p_data: the data density (default :func:`default_p_data`).
        mean, std: the starting ``p_g = N(mean, std^2)``.

    Returns:
        An :class:`Explorer` with sliders ``mean`` and ``std``; lines ``p_data``, ``p_g``,
        ``d_star``, ``value_curve``, ``value``; ``data`` keys ``x, p_g, d_star, value, jsd,
        value_from_jsd``.
    """
    import ipywidgets as W

    p_data = p_data or default_p_data()
    x = np.linspace(-8, 8, 1601)
    means = np.linspace(-4, 4, 81)
    pd = p_data.pdf(x)
    sliders = {
        "mean": W.FloatSlider(value=mean, min=-4, max=4, step=0.05, description="mean of p_g",
                              continuous_update=False),
        "std": W.FloatSlider(value=std, min=0.2, max=3.0, step=0.05, description="std of p_g",
                             continuous_update=False),
    }
    fig, (ax1, ax2) = _figure(2, (9.5, 3.4))
    lines = {"p_data": ax1.plot(x, pd, "k-", lw=2, label="$p_{data}$")[0],
             "p_g": ax1.plot(x, np.zeros_like(x), "C1-", lw=2, label="$p_g$")[0]}
    ax1.set(xlabel="x", ylabel="density", xlim=(-6, 6), ylim=(0, 1.2))
    axd = ax1.twinx()
    lines["d_star"] = axd.plot(x, np.zeros_like(x), "C2-", label="$D^*(x)$")[0]
    axd.axhline(0.5, color="C2", ls=":", lw=1)
    axd.set(ylim=(-0.02, 1.02), ylabel="$D^*(x)$")
    h1, l1 = ax1.get_legend_handles_labels()
    h2, l2 = axd.get_legend_handles_labels()
    ax1.legend(h1 + h2, l1 + l2, loc="upper left", fontsize=8)
    lines["value_curve"] = ax2.plot(means, np.zeros_like(means), "C0-",
                                    label="$V(D^*, G)$ at this std")[0]
    lines["value"] = ax2.plot([], [], "C0o")[0]
    ax2.axhline(-theory.LOG4, color="k", ls="--", label="$-\\log 4$ (p_g = p_data)")
    ax2.axhline(0.0, color="grey", ls=":", label="0 (disjoint supports)")
    ax2.set(xlabel="mean of $p_g$", ylabel="nats", ylim=(-1.5, 0.1))
    ax2.legend(loc="lower right", fontsize=8)
    data = {"x": x, "p_data": pd}

    def value_at(mean_, std_):
        pg = theory.Mixture1D([mean_], [std_]).pdf(x)
        return theory.value_function_grid(theory.optimal_logit(pd, pg), pd, pg, x, logit=True)

    def compute(v):
        pg = theory.Mixture1D([v["mean"]], [v["std"]]).pdf(x)
        d_star = theory.optimal_discriminator(pd, pg)
        value = value_at(v["mean"], v["std"])
        jsd = theory.jsd_grid(pd, pg, x)
        curve = np.array([value_at(u, v["std"]) for u in means])
        data.update(mean=v["mean"], std=v["std"], p_g=pg, d_star=d_star, value=value, jsd=jsd,
                    value_from_jsd=-theory.LOG4 + 2 * jsd, value_curve=curve)
        lines["p_g"].set_ydata(pg)
        lines["d_star"].set_ydata(d_star)
        lines["value_curve"].set_ydata(curve)
        lines["value"].set_data([v["mean"]], [value])

    def rows(d):
        return [("V(D*, G)", f"{d['value']:.4f}"), ("JSD(p_data || p_g)", f"{d['jsd']:.4f}"),
                ("-log 4 + 2 JSD", f"{d['value_from_jsd']:.4f}")]

    return _assemble(sliders, {}, fig, lines, data, compute, rows,
                     "The optimal discriminator: move p_g and watch D* and V(D*, G)")


# --- 02: the 2-D toy GAN -------------------------------------------------------------------------

_GAN_CONTROLS = ("steps", "lr_d", "lr_g", "loss", "prior")


def _settings_key(st: dict):
    """Settings as a hashable key (learning rates compared to 6 digits of their logarithm)."""
    return tuple(sorted((k, round(math.log10(v), 6) if k in ("lr_d", "lr_g") else v)
                        for k, v in st.items()))


def gan_toy_explorer(steps: int = 300, lr_d: float = 2e-3, lr_g: float = 2e-3,
                     loss: str = "non-saturating", prior: str = "normal", seed: int = 0,
                     d_warmup: int = 0, max_steps: int = 3000,
                     history: dict | None = None) -> Explorer:
    """Retrain the 2-D toy GAN (:func:`theory.train_toy_gan`) whenever a control changes.

    Left: the data (8 modes) and the generator's samples after the last step. Right: modes
    covered and the share of samples on a mode, over the steps.

    Args:
        steps, lr_d, lr_g, loss, prior, seed, d_warmup: the starting settings, passed to
            :func:`theory.train_toy_gan`.
        max_steps: the steps slider's upper end (each step costs about a millisecond or two).
        history: a result of :func:`theory.train_toy_gan` to show first instead of training
            (its settings override the ones above), e.g. a run the notebook already made.

    Returns:
        An :class:`Explorer` with sliders ``lr_d``, ``lr_g``, ``steps`` and drop-downs ``loss``,
        ``prior`` (in ``controls``); lines ``generated``, ``modes``, ``quality``; ``data`` holds
        the training history (``data["history"]``) and the settings used.
    """
    import ipywidgets as W

    base = {"seed": seed, "d_warmup": d_warmup}
    if history is not None:
        st = history["settings"]
        steps, lr_d, lr_g, loss, prior = (st[k] for k in _GAN_CONTROLS)
        base = {k: v for k, v in st.items() if k not in _GAN_CONTROLS}
    sliders = {
        "lr_d": W.FloatLogSlider(value=lr_d, base=10, min=-4, max=-1.5, step=0.1,
                                 description="lr of D", readout_format=".1e",
                                 continuous_update=False),
        "lr_g": W.FloatLogSlider(value=lr_g, base=10, min=-4, max=-1.5, step=0.1,
                                 description="lr of G", readout_format=".1e",
                                 continuous_update=False),
        "steps": W.IntSlider(value=steps, min=0, max=max(max_steps, steps), step=50,
                             description="steps", continuous_update=False),
    }
    extra = {
        "loss": W.Dropdown(options=["non-saturating", "saturating"], value=loss,
                           description="G loss"),
        "prior": W.Dropdown(options=list(theory.PRIORS), value=prior, description="noise"),
    }
    centres = theory.ring_mixture(base.get("k", 8), base.get("radius", 2.0))
    real = theory.sample_ring(centres, base.get("std", 0.1), 500,
                              np.random.default_rng(base["seed"] + 2))
    fig, (ax1, ax2) = _figure(2, (9.5, 3.6))
    ax1.plot(real[:, 0], real[:, 1], ".", color="0.7", ms=3, label="data")
    lines = {"generated": ax1.plot([], [], "C3.", ms=3, alpha=0.6, label="G(z)")[0]}
    ax1.set(xlim=(-3.5, 3.5), ylim=(-3.5, 3.5), aspect="equal", title="after the last step")
    ax1.legend(loc="upper right", fontsize=8)
    lines["modes"] = ax2.plot([], [], "C0.-", label=f"modes covered (of {len(centres)})")[0]
    ax2.set(xlabel="step", ylabel="modes covered", ylim=(-0.3, len(centres) + 0.5))
    axq = ax2.twinx()
    lines["quality"] = axq.plot([], [], "C2--", label="share of samples on a mode")[0]
    axq.set(ylim=(-0.03, 1.03), ylabel="share on a mode")
    h1, l1 = ax2.get_legend_handles_labels()
    h2, l2 = axq.get_legend_handles_labels()
    ax2.legend(h1 + h2, l1 + l2, loc="upper left", fontsize=8)
    data = {}
    known = {} if history is None else {_settings_key(history["settings"]): history}

    def compute(v):
        settings = dict(base, steps=int(v["steps"]), lr_d=float(v["lr_d"]),
                        lr_g=float(v["lr_g"]), loss=v["loss"], prior=v["prior"])
        key = _settings_key(settings)
        h = known[key] if key in known else theory.train_toy_gan(**settings)
        data.update(history=h, settings=settings)
        lines["generated"].set_data(h["samples"][:, 0], h["samples"][:, 1])
        lines["modes"].set_data(h["step"], h["modes"])
        lines["quality"].set_data(h["step"], h["quality"])
        ax2.set_xlim(-0.02 * max(1, settings["steps"]), max(1, settings["steps"]) * 1.02)

    def rows(d):
        h = d["history"]
        return [("modes covered at the end", f"{h['modes'][-1]} of {len(centres)}"),
                ("share of samples on a mode", f"{h['quality'][-1]:.2f}"),
                ("most modes covered during training", f"{h['modes'].max()}")]

    return _assemble(sliders, extra, fig, lines, data, compute, rows,
                     "A GAN on 8 Gaussians: change the learning rates, steps, loss or noise")
