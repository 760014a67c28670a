"""The numbers behind the theory notebooks: the VAE lower bound and the GAN value function.

Everything here is plain NumPy (no autodiff) except :func:`encoder_gradient_autodiff`, which
imports TensorFlow to check the hand-derived gradient. Equation numbers refer to the paper in
``shared/reference`` (eq. 1-5: the VAE, eq. 6-8: the GAN).

Taught in notebooks ``01_vae_lower_bound`` and ``02_gan_value_function``.

The tests in ``tests/test_theory.py`` pair each numeric claim with a deliberately wrong variant
that the same check must reject.

Random numbers always come from a ``numpy.random.Generator`` passed in (or a seed), never from
global state, so every result is reproducible.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

LOG2PI = math.log(2.0 * math.pi)
LOG4 = math.log(4.0)


def _rng(rng) -> np.random.Generator:
    """A ``Generator`` from a ``Generator``, a seed or ``None``."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


# --- Small numerical helpers ---------------------------------------------------------------------

def sigmoid(logit):
    """The logistic function ``1 / (1 + exp(-logit))``, elementwise and without overflow."""
    logit = np.asarray(logit, dtype=float)
    return np.exp(-np.logaddexp(0.0, -logit))


def softplus(x):
    """``log(1 + exp(x))``, elementwise and without overflow; ``log sigmoid(l) = -softplus(-l)``."""
    return np.logaddexp(0.0, np.asarray(x, dtype=float))


def log_mean_exp(a, axis=None):
    """``log(mean(exp(a)))`` over ``axis`` (``None``: all), computed stably."""
    a = np.asarray(a, dtype=float)
    m = np.max(a, axis=axis, keepdims=True)
    out = np.log(np.mean(np.exp(a - m), axis=axis, keepdims=True)) + m
    return np.squeeze(out, axis=axis) if axis is not None else float(out.squeeze())


def trapezoid(y, x):
    """Trapezoidal rule ``int y dx`` for ``y`` of shape ``(..., n)`` on the grid ``x`` of shape
    ``(n,)``, along the last axis (NumPy 1 and 2 alike)."""
    y = np.asarray(y, dtype=float)
    dx = np.diff(np.asarray(x, dtype=float))
    return np.sum(0.5 * (y[..., 1:] + y[..., :-1]) * dx, axis=-1)


def _xlogy(a, b):
    """``a * log(b)`` with the convention ``0 * log(0) = 0``."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
    out = np.zeros(a.shape)
    nz = a != 0
    out[nz] = a[nz] * np.log(b[nz])
    return out


_erf = np.vectorize(math.erf, otypes=[float])


def normal_cdf(x):
    """The standard normal CDF ``Phi(x) = P(Z <= x)``, elementwise (NumPy has no ``erf``, and
    SciPy is not a dependency)."""
    return 0.5 * (1.0 + _erf(np.asarray(x, dtype=float) / math.sqrt(2.0)))


def numerical_gradient(f, params: dict, h: float = 1e-5) -> dict:
    """Central finite differences of a scalar function of named arrays.

    Args:
        f: function called as ``f(**params)`` and returning a number, e.g.
            :func:`kl_normal_std_normal` with ``params = {"mu": ..., "std": ...}``.
        params: the point, ``{name: array}``; not modified.
        h: step.

    Returns:
        ``{name: array}`` of partial derivatives, shaped like ``params``.
    """
    grads = {}
    for name, value in params.items():
        g = np.zeros(np.shape(value))
        for idx in np.ndindex(g.shape):
            plus = {k: np.array(v, dtype=float) for k, v in params.items()}
            minus = {k: np.array(v, dtype=float) for k, v in params.items()}
            plus[name][idx] += h
            minus[name][idx] -= h
            g[idx] = (float(f(**plus)) - float(f(**minus))) / (2 * h)
        grads[name] = g
    return grads


def flatten_params(params: dict, samples: bool = False) -> np.ndarray:
    """Concatenate a dict of arrays into one vector, in the dict's order.

    Args:
        params: ``{name: array}``.
        samples: the arrays carry a leading sample axis ``n`` (as returned by
            :func:`reparam_gradient_samples`); keep it.

    Returns:
        Shape ``(P,)``, or ``(n, P)`` if ``samples``.
    """
    if samples:
        return np.concatenate([np.asarray(v, dtype=float).reshape(len(v), -1)
                               for v in params.values()], axis=1)
    return np.concatenate([np.asarray(v, dtype=float).ravel() for v in params.values()])


# --- Gaussians and KL divergences ----------------------------------------------------------------

@dataclass
class Gaussian:
    """A multivariate normal ``N(mean, cov)``.

    Attributes:
        mean: shape ``(M,)``.
        cov: shape ``(M, M)``, symmetric positive definite.
    """

    mean: np.ndarray
    cov: np.ndarray

    def __post_init__(self):
        self.mean = np.atleast_1d(np.asarray(self.mean, dtype=float))
        self.cov = np.atleast_2d(np.asarray(self.cov, dtype=float))

    @classmethod
    def diagonal(cls, mean, std) -> "Gaussian":
        """``N(mean, diag(std**2))``: the VAE encoder's family."""
        mean = np.atleast_1d(np.asarray(mean, dtype=float))
        std = np.broadcast_to(np.asarray(std, dtype=float), mean.shape)
        return cls(mean, np.diag(std ** 2))

    @classmethod
    def standard(cls, dim: int) -> "Gaussian":
        """``N(0, I)``: the prior ``p(z)``."""
        return cls(np.zeros(dim), np.eye(dim))

    @property
    def dim(self) -> int:
        return self.mean.shape[0]

    @property
    def chol(self) -> np.ndarray:
        """Lower Cholesky factor ``L`` with ``L L^T = cov``."""
        return np.linalg.cholesky(self.cov)

    def sample(self, n: int, rng=None) -> np.ndarray:
        """``n`` reparameterised draws ``mean + L eps`` with ``eps ~ N(0, I)``: shape ``(n, M)``."""
        eps = _rng(rng).standard_normal((n, self.dim))
        return self.mean + eps @ self.chol.T

    def log_prob(self, z) -> np.ndarray:
        """``log N(z; mean, cov)`` for each row of ``z`` (shape ``(n, M)`` or ``(M,)``)."""
        z = np.asarray(z, dtype=float)
        single = z.ndim == 1
        z = np.atleast_2d(z)
        chol = self.chol
        sol = np.linalg.solve(chol, (z - self.mean).T)  # (M, n)
        maha = np.sum(sol ** 2, axis=0)
        logdet = 2.0 * np.sum(np.log(np.diag(chol)))
        out = -0.5 * (self.dim * LOG2PI + logdet + maha)
        return out[0] if single else out

    def entropy(self) -> float:
        """Differential entropy ``0.5 log det(2 pi e cov)`` (negative for a narrow Gaussian)."""
        logdet = 2.0 * np.sum(np.log(np.diag(self.chol)))
        return float(0.5 * (self.dim * (1.0 + LOG2PI) + logdet))


def kl_gaussians(q: Gaussian, p: Gaussian) -> float:
    """``KL(q || p)`` between two multivariate normals, in closed form.

    Args:
        q, p: :class:`Gaussian` of the same dimension.

    Returns:
        The divergence in nats (>= 0, and 0 only if ``q == p``).
    """
    p_inv = np.linalg.inv(p.cov)
    d = p.mean - q.mean
    _, logdet_p = np.linalg.slogdet(p.cov)
    _, logdet_q = np.linalg.slogdet(q.cov)
    return float(0.5 * (np.trace(p_inv @ q.cov) + d @ p_inv @ d - q.dim + logdet_p - logdet_q))


def kl_normal_std_normal(mu, std):
    """Closed-form ``KL(N(mu, diag(std^2)) || N(0, I))`` = ``0.5 sum(std^2 + mu^2 - 1 - log std^2)``.

    Args:
        mu: means, shape ``(..., M)``.
        std: standard deviations, same shape.

    Returns:
        The divergence summed over the last axis, shape ``(...)``.
    """
    mu = np.asarray(mu, dtype=float)
    var = np.asarray(std, dtype=float) ** 2
    return 0.5 * np.sum(var + mu ** 2 - 1.0 - np.log(var), axis=-1)


def kl_normal_std_normal_grad(mu, std):
    """Gradient of :func:`kl_normal_std_normal` with respect to ``mu`` and ``std``.

    Args:
        mu, std: arrays of the same shape.

    Returns:
        ``(d KL / d mu, d KL / d std)`` = ``(mu, std - 1/std)``; both vanish at the prior
        ``mu = 0, std = 1``.
    """
    mu = np.asarray(mu, dtype=float)
    std = np.asarray(std, dtype=float)
    return mu.copy(), std - 1.0 / std


def kl_normal_std_normal_mc(mu, std, n: int, rng=None):
    """Monte Carlo ``KL(q || N(0, I))`` = ``E_q[log q(z) - log p(z)]`` with ``n`` draws, for
    ``mu`` and ``std`` of shape ``(M,)``: ``(estimate, standard error)``."""
    q = Gaussian.diagonal(mu, std)
    z = q.sample(n, rng)
    d = q.log_prob(z) - Gaussian.standard(q.dim).log_prob(z)
    return float(d.mean()), float(d.std(ddof=1) / math.sqrt(n))


# --- A latent-variable model with an exact log p(x) and posterior (probabilistic PCA) ------------

@dataclass
class LinearGaussianModel:
    """``p(z) = N(0, I_M)``, ``p(x | z) = N(W z + b, s^2 I_D)`` (probabilistic PCA).

    Both the marginal ``p(x) = N(b, W W^T + s^2 I)`` and the posterior ``p(z | x)`` are Gaussian
    and exact, so every quantity of the VAE bound can be checked against the truth.

    Attributes:
        W: decoder weights, shape ``(D, M)``.
        b: decoder bias, shape ``(D,)``.
        noise_std: ``s``, the decoder's standard deviation.
    """

    W: np.ndarray
    b: np.ndarray
    noise_std: float

    @classmethod
    def random(cls, data_dim: int, latent_dim: int, noise_std: float = 0.5,
               rng=None) -> "LinearGaussianModel":
        """A model with ``W`` and ``b`` drawn from ``N(0, 1)``.

        Args:
            data_dim: ``D``.
            latent_dim: ``M``.
            noise_std: ``s``.
            rng: ``numpy.random.Generator`` or seed.

        Returns:
            A :class:`LinearGaussianModel`.
        """
        rng = _rng(rng)
        return cls(rng.standard_normal((data_dim, latent_dim)),
                   rng.standard_normal(data_dim), float(noise_std))

    @property
    def data_dim(self) -> int:
        return self.W.shape[0]

    @property
    def latent_dim(self) -> int:
        return self.W.shape[1]

    def prior(self) -> Gaussian:
        return Gaussian.standard(self.latent_dim)

    def marginal(self) -> Gaussian:
        """``p(x) = N(b, W W^T + s^2 I)``."""
        return Gaussian(self.b, self.W @ self.W.T + self.noise_std ** 2 * np.eye(self.data_dim))

    def log_marginal(self, x) -> float:
        """The exact ``log p(x)`` of one data point ``x`` (shape ``(D,)``)."""
        return float(self.marginal().log_prob(np.asarray(x, dtype=float)))

    def posterior(self, x) -> Gaussian:
        """The exact posterior ``p(z | x) = N(S W^T (x - b) / s^2, S)``, ``S = (I + W^T W / s^2)^-1``."""
        s2 = self.noise_std ** 2
        cov = np.linalg.inv(np.eye(self.latent_dim) + self.W.T @ self.W / s2)
        cov = 0.5 * (cov + cov.T)
        return Gaussian(cov @ self.W.T @ (np.asarray(x, dtype=float) - self.b) / s2, cov)

    def log_likelihood(self, x, z) -> np.ndarray:
        """``log p(x | z)`` for each row of ``z`` (shape ``(n, M)``); returns shape ``(n,)``."""
        z = np.atleast_2d(np.asarray(z, dtype=float))
        r = np.asarray(x, dtype=float) - z @ self.W.T - self.b
        s = self.noise_std
        return -0.5 * (self.data_dim * (LOG2PI + 2 * math.log(s)) + np.sum(r ** 2, axis=1) / s ** 2)

    def grad_z_log_likelihood(self, x, z) -> np.ndarray:
        """``d log p(x | z) / dz`` = ``W^T (x - W z - b) / s^2`` for each row of ``z``."""
        z = np.atleast_2d(np.asarray(z, dtype=float))
        r = np.asarray(x, dtype=float) - z @ self.W.T - self.b
        return r @ self.W / self.noise_std ** 2

    def log_prior(self, z) -> np.ndarray:
        """``log p(z)`` for each row of ``z``."""
        return self.prior().log_prob(np.atleast_2d(z))

    def log_joint(self, x, z) -> np.ndarray:
        """``log p(x, z) = log p(x | z) + log p(z)`` for each row of ``z``."""
        return self.log_likelihood(x, z) + self.log_prior(z)

    def sample(self, n: int, rng=None):
        """Draw ``(x, z)`` pairs from the model.

        Returns:
            ``x`` of shape ``(n, D)`` and ``z`` of shape ``(n, M)``.
        """
        rng = _rng(rng)
        z = rng.standard_normal((n, self.latent_dim))
        x = z @ self.W.T + self.b + self.noise_std * rng.standard_normal((n, self.data_dim))
        return x, z


def elbo_exact(model: LinearGaussianModel, x, q: Gaussian) -> float:
    """The lower bound of eq. (1) for one data point, in closed form.

    ``E_q[log p(x|z)] + E_q[log p(z)] - E_q[log q(z)]`` with a Gaussian ``q``; each expectation
    is exact for the linear-Gaussian model.

    Args:
        model: the model.
        x: one data point, shape ``(D,)``.
        q: the variational distribution ``q(z | x)``.

    Returns:
        The ELBO in nats.
    """
    x = np.asarray(x, dtype=float)
    s2 = model.noise_std ** 2
    r = x - model.W @ q.mean - model.b
    e_loglik = -0.5 * (model.data_dim * (LOG2PI + math.log(s2))
                       + (r @ r + np.trace(model.W @ q.cov @ model.W.T)) / s2)
    e_logprior = -0.5 * (model.latent_dim * LOG2PI + q.mean @ q.mean + np.trace(q.cov))
    return float(e_loglik + e_logprior + q.entropy())


def elbo_terms(model: LinearGaussianModel, x, q: Gaussian, n: int, rng=None) -> dict:
    """The three terms inside eq. (1)'s expectation at ``n`` reparameterised draws from ``q``.

    Args:
        model: the model.
        x: one data point.
        q: the variational distribution.
        n: number of draws ``z = mean + L eps``.
        rng: ``numpy.random.Generator`` or seed.

    Returns:
        A dict of arrays of shape ``(n,)``: ``log_likelihood`` (``log p(x|z)``), ``log_prior``
        (``log p(z)``), ``log_q`` (``log q(z|x)``) and ``elbo`` (the first two minus the third),
        plus ``z`` of shape ``(n, M)``.
    """
    z = q.sample(n, rng)
    ll = model.log_likelihood(x, z)
    lp = model.log_prior(z)
    lq = q.log_prob(z)
    return {"z": z, "log_likelihood": ll, "log_prior": lp, "log_q": lq, "elbo": ll + lp - lq}


def elbo_mc(model: LinearGaussianModel, x, q: Gaussian, L: int, rng=None) -> float:
    """The estimator of eq. (2)-(3): the average of the ELBO integrand over ``L`` draws.

    Args:
        model, x, q: as in :func:`elbo_terms`.
        L: number of samples.
        rng: ``numpy.random.Generator`` or seed.

    Returns:
        The estimate (an unbiased estimate of :func:`elbo_exact`).
    """
    return float(elbo_terms(model, x, q, L, rng)["elbo"].mean())


def elbo_estimates(model: LinearGaussianModel, x, q: Gaussian, L: int, repeats: int,
                   rng=None) -> np.ndarray:
    """``repeats`` independent ``L``-sample estimates of the ELBO (to study their spread).

    Args:
        model, x, q: as in :func:`elbo_terms`.
        L: samples per estimate.
        repeats: number of estimates.
        rng: ``numpy.random.Generator`` or seed.

    Returns:
        Shape ``(repeats,)``.
    """
    e = elbo_terms(model, x, q, L * repeats, rng)["elbo"]
    return e.reshape(repeats, L).mean(axis=1)


# --- An encoder and the gradient of eq. (4)-(5) --------------------------------------------------

ENCODER_PARAMS = ("A", "a", "C", "c")


@dataclass
class LinearEncoder:
    """``q(z | x) = N(mu(x), diag(std(x)^2))`` with ``mu = A x + a`` and ``log std = C x + c``.

    Attributes:
        A: shape ``(M, D)``.
        a: shape ``(M,)``.
        C: shape ``(M, D)``.
        c: shape ``(M,)``.
    """

    A: np.ndarray
    a: np.ndarray
    C: np.ndarray
    c: np.ndarray

    @classmethod
    def random(cls, data_dim: int, latent_dim: int, scale: float = 0.3, rng=None) -> "LinearEncoder":
        """An encoder with weights drawn from ``N(0, scale^2)``."""
        rng = _rng(rng)
        return cls(*(scale * rng.standard_normal(s) for s in
                     [(latent_dim, data_dim), (latent_dim,), (latent_dim, data_dim), (latent_dim,)]))

    @classmethod
    def prior_matching(cls, data_dim: int, latent_dim: int) -> "LinearEncoder":
        """The encoder whose output is the prior ``N(0, I)`` for every ``x`` (all weights zero)."""
        return cls(np.zeros((latent_dim, data_dim)), np.zeros(latent_dim),
                   np.zeros((latent_dim, data_dim)), np.zeros(latent_dim))

    @classmethod
    def from_params(cls, params: dict) -> "LinearEncoder":
        return cls(*(np.asarray(params[k], dtype=float) for k in ENCODER_PARAMS))

    def params(self) -> dict:
        """``{"A": ..., "a": ..., "C": ..., "c": ...}`` (copies)."""
        return {k: np.array(getattr(self, k), dtype=float) for k in ENCODER_PARAMS}

    def __call__(self, x):
        """``(mu, std)`` of ``q(z | x)`` for one data point ``x``."""
        x = np.asarray(x, dtype=float)
        return self.A @ x + self.a, np.exp(self.C @ x + self.c)

    def q(self, x) -> Gaussian:
        """``q(z | x)`` as a :class:`Gaussian`."""
        return Gaussian.diagonal(*self(x))


def _per_sample_to_params(g_mu, g_logstd, x) -> dict:
    """Chain rule from ``(mu, log std)`` to the weights: ``d mu / dA_ij = x_j`` etc.

    ``g_mu`` and ``g_logstd`` have shape ``(n, M)``; returns arrays with a leading ``n`` axis.
    """
    return {"A": g_mu[:, :, None] * x[None, None, :], "a": g_mu,
            "C": g_logstd[:, :, None] * x[None, None, :], "c": g_logstd}


def reparam_gradient_samples(encoder: LinearEncoder, model: LinearGaussianModel, x, eps,
                             terms: bool = False) -> dict:
    """Per-sample reparameterised gradient of the ELBO integrand, written out as in eq. (4)-(5).

    With ``z = mu + std * eps`` and a weight ``phi_i``, the integrand
    ``log p(x|z) + log p(z) - log q(z|x)`` has derivative

    - ``reconstruction``: ``d log p(x|z)/dz * dz/dphi_i`` (eq. 4, first term);
    - ``score``: ``- d log q(z|x)/dphi_i`` at fixed ``z`` (eq. 4, second term);
    - ``anchor``: ``(d log p(z)/dz - d log q(z|x)/dz) * dz/dphi_i``, the bracket of eq. (5),
      zero when ``q`` equals the prior.

    No autodiff: every derivative is written by hand.

    Args:
        encoder: the encoder (weights ``phi``).
        model: the decoder and prior.
        x: one data point, shape ``(D,)``.
        eps: standard-normal noise, shape ``(n, M)``.
        terms: return the three terms separately.

    Returns:
        ``{name: array}`` with a leading sample axis (``(n, M, D)`` for ``A``), or, if ``terms``,
        ``{"reconstruction": ..., "score": ..., "anchor": ...}`` of such dicts (they sum to the
        total).
    """
    x = np.asarray(x, dtype=float)
    eps = np.atleast_2d(np.asarray(eps, dtype=float))
    mu, std = encoder(x)
    z = mu + std * eps                                  # (n, M)
    dz_dlogstd = std * eps                              # dz/dmu = 1
    g_lik = model.grad_z_log_likelihood(x, z)           # d log p(x|z) / dz
    bracket = -z - (-(z - mu) / std ** 2)               # d log p(z)/dz - d log q(z|x)/dz
    score_mu = (z - mu) / std ** 2                      # d log q / d mu at fixed z
    score_logstd = ((z - mu) / std) ** 2 - 1.0          # d log q / d log std at fixed z
    parts = {
        "reconstruction": _per_sample_to_params(g_lik, g_lik * dz_dlogstd, x),
        "score": _per_sample_to_params(-score_mu, -score_logstd, x),
        "anchor": _per_sample_to_params(bracket, bracket * dz_dlogstd, x),
    }
    if terms:
        return parts
    return {k: sum(p[k] for p in parts.values()) for k in ENCODER_PARAMS}


def encoder_gradient_terms(encoder: LinearEncoder, model: LinearGaussianModel, x, eps) -> dict:
    """The three terms of eq. (4)-(5), each averaged over the ``L`` noise draws in ``eps``.

    Returns:
        ``{"reconstruction": {name: grad}, "score": {...}, "anchor": {...}}``.
    """
    parts = reparam_gradient_samples(encoder, model, x, eps, terms=True)
    return {t: {k: v.mean(axis=0) for k, v in d.items()} for t, d in parts.items()}


def encoder_gradient(encoder: LinearEncoder, model: LinearGaussianModel, x, eps) -> dict:
    """Hand-derived gradient of the ``L``-sample ELBO estimate (eq. 2-3) with respect to every
    encoder weight: the sum of the three terms of eq. (4)-(5).

    Args:
        encoder: the encoder.
        model: the decoder and prior.
        x: one data point.
        eps: the ``L`` noise draws, shape ``(L, M)``.

    Returns:
        ``{name: gradient}`` shaped like the encoder's weights.
    """
    t = encoder_gradient_terms(encoder, model, x, eps)
    return {k: t["reconstruction"][k] + t["score"][k] + t["anchor"][k] for k in ENCODER_PARAMS}


def encoder_gradient_autodiff(encoder: LinearEncoder, model: LinearGaussianModel, x, eps) -> dict:
    """The same gradient as :func:`encoder_gradient`, by ``tf.GradientTape`` (float64).

    The ELBO estimate is written in TensorFlow from its definition (eq. 2-3); TensorFlow is
    imported here only.

    Args:
        encoder, model, x, eps: as in :func:`encoder_gradient`.

    Returns:
        ``{name: gradient}`` as NumPy arrays.
    """
    import tensorflow as tf

    f64 = tf.float64
    vars_ = {k: tf.Variable(v, dtype=f64) for k, v in encoder.params().items()}
    xt = tf.constant(np.asarray(x, dtype=float), dtype=f64)
    eps_t = tf.constant(np.atleast_2d(eps), dtype=f64)
    W = tf.constant(model.W, dtype=f64)
    b = tf.constant(model.b, dtype=f64)
    s = float(model.noise_std)
    D, M = model.data_dim, model.latent_dim
    with tf.GradientTape() as tape:
        mu = tf.linalg.matvec(vars_["A"], xt) + vars_["a"]
        log_std = tf.linalg.matvec(vars_["C"], xt) + vars_["c"]
        std = tf.exp(log_std)
        z = mu + std * eps_t                                            # (L, M)
        r = xt - tf.matmul(z, W, transpose_b=True) - b
        log_lik = -0.5 * (D * (LOG2PI + 2 * math.log(s)) + tf.reduce_sum(r ** 2, axis=1) / s ** 2)
        log_prior = -0.5 * (M * LOG2PI + tf.reduce_sum(z ** 2, axis=1))
        log_q = tf.reduce_sum(-0.5 * LOG2PI - log_std - 0.5 * ((z - mu) / std) ** 2, axis=1)
        elbo = tf.reduce_mean(log_lik + log_prior - log_q)
    grads = tape.gradient(elbo, vars_)
    return {k: grads[k].numpy() for k in ENCODER_PARAMS}


def score_function_gradient_samples(encoder: LinearEncoder, model: LinearGaussianModel, x,
                                    eps) -> dict:
    """Per-sample score-function (REINFORCE) estimates of the same gradient.

    ``grad E_q[f(z)] = E_q[f(z) * d log q(z|x) / dphi]`` with ``f = log p(x, z) - log q(z|x)``
    (the extra term ``-E_q[d log q / dphi]`` is zero). It needs no derivative of the decoder.

    Args:
        encoder, model, x: as in :func:`encoder_gradient`.
        eps: noise, shape ``(n, M)``; ``z = mu + std * eps`` as before.

    Returns:
        ``{name: array}`` with a leading sample axis, like :func:`reparam_gradient_samples`.
    """
    x = np.asarray(x, dtype=float)
    eps = np.atleast_2d(np.asarray(eps, dtype=float))
    mu, std = encoder(x)
    z = mu + std * eps
    q = Gaussian.diagonal(mu, std)
    f = model.log_joint(x, z) - q.log_prob(z)            # (n,)
    score_mu = (z - mu) / std ** 2
    score_logstd = ((z - mu) / std) ** 2 - 1.0
    return _per_sample_to_params(f[:, None] * score_mu, f[:, None] * score_logstd, x)


def elbo_exact_encoder_gradient(encoder: LinearEncoder, model: LinearGaussianModel, x) -> dict:
    """The exact gradient of :func:`elbo_exact` with ``q = encoder.q(x)``, in closed form.

    ``d ELBO / d mu = W^T (x - W mu - b) / s^2 - mu`` and
    ``d ELBO / d log std_k = 1 - std_k^2 (|W_k|^2 / s^2 + 1)``, then the chain rule to ``A, a, C, c``.

    Returns:
        ``{name: gradient}`` shaped like the encoder's weights.
    """
    x = np.asarray(x, dtype=float)
    mu, std = encoder(x)
    s2 = model.noise_std ** 2
    g_mu = model.W.T @ (x - model.W @ mu - model.b) / s2 - mu
    g_logstd = 1.0 - std ** 2 * (np.sum(model.W ** 2, axis=0) / s2 + 1.0)
    g = _per_sample_to_params(g_mu[None], g_logstd[None], x)
    return {k: v[0] for k, v in g.items()}


# --- Decoders: Bernoulli for binary data, Gaussian for continuous data ---------------------------

def bernoulli_log_likelihood(x, p, clip: float = 1e-7):
    """``x log p + (1 - x) log(1 - p)`` per pixel (the negative of binary cross-entropy).

    Args:
        x: pixel values in ``{0, 1}`` (or ``[0, 1]``).
        p: the decoder's predicted probabilities.
        clip: ``p`` is clipped to ``[clip, 1 - clip]``.

    Returns:
        Per-pixel log-likelihoods, broadcast shape.
    """
    p = np.clip(np.asarray(p, dtype=float), clip, 1.0 - clip)
    x = np.asarray(x, dtype=float)
    return x * np.log(p) + (1.0 - x) * np.log1p(-p)


def bernoulli_log_likelihood_logits(x, logits):
    """Same as :func:`bernoulli_log_likelihood` from logits: ``x l - softplus(l)`` (stable)."""
    x = np.asarray(x, dtype=float)
    logits = np.asarray(logits, dtype=float)
    return x * logits - softplus(logits)


def gaussian_log_likelihood(x, mean, std):
    """``log N(x; mean, std^2)`` per pixel = ``-(x - mean)^2 / (2 std^2) - log std - log(2 pi)/2``.

    Args:
        x: pixel values.
        mean: the decoder's predicted means.
        std: the decoder's standard deviation (a scalar or per pixel).

    Returns:
        Per-pixel log-likelihoods.
    """
    x = np.asarray(x, dtype=float)
    std = np.asarray(std, dtype=float)
    return -0.5 * ((x - mean) / std) ** 2 - np.log(std) - 0.5 * LOG2PI


def bernoulli_normaliser(p):
    """``int_0^1 p^x (1 - p)^(1 - x) dx``: what the Bernoulli "density" integrates to over
    continuous ``x`` in ``[0, 1]`` (1 would be a proper density; it is not).

    Args:
        p: probabilities in ``(0, 1)``.

    Returns:
        ``(2p - 1) / (log p - log(1 - p))``, and ``1/2`` at ``p = 1/2``.
    """
    p = np.asarray(p, dtype=float)
    near = np.abs(p - 0.5) < 1e-6
    safe = np.where(near, 0.25, p)
    out = (2 * safe - 1) / (np.log(safe) - np.log1p(-safe))
    return np.where(near, 0.5, out)


# --- GAN: 1-D densities, the optimal discriminator, the value function and the JSD ---------------

@dataclass
class Mixture1D:
    """A 1-D mixture of normals.

    Attributes:
        means, stds, weights: one entry per component; weights are normalised.
    """

    means: np.ndarray
    stds: np.ndarray
    weights: np.ndarray = None

    def __post_init__(self):
        self.means = np.atleast_1d(np.asarray(self.means, dtype=float))
        self.stds = np.broadcast_to(np.asarray(self.stds, dtype=float), self.means.shape).copy()
        w = np.ones_like(self.means) if self.weights is None else np.asarray(self.weights, float)
        self.weights = np.broadcast_to(w, self.means.shape) / np.sum(w)

    def pdf(self, x) -> np.ndarray:
        """The density at ``x`` (any shape)."""
        x = np.asarray(x, dtype=float)[..., None]
        comp = np.exp(-0.5 * ((x - self.means) / self.stds) ** 2) / (self.stds * math.sqrt(2 * math.pi))
        return np.sum(self.weights * comp, axis=-1)

    def cdf(self, x) -> np.ndarray:
        """The cumulative distribution function at ``x``."""
        x = np.asarray(x, dtype=float)[..., None]
        return np.sum(self.weights * normal_cdf((x - self.means) / self.stds), axis=-1)

    def sample(self, n: int, rng=None) -> np.ndarray:
        """``n`` draws, shape ``(n,)``."""
        rng = _rng(rng)
        k = rng.choice(len(self.means), size=n, p=self.weights)
        return self.means[k] + self.stds[k] * rng.standard_normal(n)

    def quantile(self, u, grid_size: int = 20_001) -> np.ndarray:
        """The inverse CDF ``F^-1(u)`` (by interpolation on a fine grid).

        Args:
            u: probabilities in ``(0, 1)``.
            grid_size: points of the interpolation grid.

        Returns:
            ``x`` with ``F(x) = u``.
        """
        lo = np.min(self.means - 8 * self.stds)
        hi = np.max(self.means + 8 * self.stds)
        grid = np.linspace(lo, hi, grid_size)
        return np.interp(u, self.cdf(grid), grid)


def optimal_discriminator(p_data, p_g):
    """``D*(x) = p_data(x) / (p_data(x) + p_g(x))`` (1/2 where both densities are zero).

    Args:
        p_data: the data density at some points.
        p_g: the generator's density at the same points.

    Returns:
        ``D*`` at those points.
    """
    p_data = np.asarray(p_data, dtype=float)
    p_g = np.asarray(p_g, dtype=float)
    den = p_data + p_g
    return np.where(den > 0, p_data / np.where(den > 0, den, 1.0), 0.5)


def optimal_logit(p_data, p_g):
    """The logit of ``D*``: ``log p_data(x) - log p_g(x)`` (``+-inf`` where one density is zero).

    Use it with ``value_function_grid(..., logit=True)`` where one density is many orders of
    magnitude below the other, since ``1 - D*`` then rounds to 0.
    """
    p_data = np.asarray(p_data, dtype=float)
    p_g = np.asarray(p_g, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log(p_data) - np.log(p_g)
    return np.where((p_data == 0) & (p_g == 0), 0.0, out)


def value_function_grid(D, p_data, p_g, x, logit: bool = False) -> float:
    """``V(D, G)`` of eq. (6) by quadrature on a 1-D grid:
    ``int p_data log D + p_g log(1 - D) dx``.

    Args:
        D: the discriminator's output on the grid, in ``[0, 1]`` (or its logit, see ``logit``).
        p_data, p_g: the two densities on the grid.
        x: the grid.
        logit: ``D`` holds logits ``l`` (``D = sigmoid(l)``); then ``log D = -softplus(-l)`` and
            ``log(1 - D) = -softplus(l)`` are computed without rounding ``D`` to 0 or 1.

    Returns:
        The value (at most 0; ``-log 4`` when ``D = 1/2`` everywhere).
    """
    p_data = np.asarray(p_data, dtype=float)
    p_g = np.asarray(p_g, dtype=float)
    if logit:
        l = np.asarray(D, dtype=float)
        with np.errstate(invalid="ignore"):
            a = np.where(p_data > 0, -p_data * softplus(-l), 0.0)
            b = np.where(p_g > 0, -p_g * softplus(l), 0.0)
        return float(trapezoid(a + b, x))
    D = np.asarray(D, dtype=float)
    with np.errstate(divide="ignore"):
        return float(trapezoid(_xlogy(p_data, D) + _xlogy(p_g, 1.0 - D), x))


def value_function_mc(d_real, d_fake):
    """``V(D, G)`` of eq. (6) from samples: ``mean log D(x) + mean log(1 - D(G(z)))``.

    Args:
        d_real: ``D`` at data samples.
        d_fake: ``D`` at generated samples.

    Returns:
        ``(estimate, standard error)``.
    """
    a = np.log(np.asarray(d_real, dtype=float))
    b = np.log1p(-np.asarray(d_fake, dtype=float))
    se = math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    return float(a.mean() + b.mean()), se


def jsd_grid(p, q, x) -> float:
    """Jensen-Shannon divergence from its definition, ``KL(p||m)/2 + KL(q||m)/2``, ``m = (p+q)/2``.

    Args:
        p, q: two densities on the grid ``x``.
        x: the grid.

    Returns:
        The JSD in nats, in ``[0, log 2]``.
    """
    p = np.asarray(p, dtype=float)
    q = np.asarray(q, dtype=float)
    s = np.where(p + q > 0, p + q, 1.0)
    # p log(p / m) with p / m = 2p / (p + q), which stays finite where p is subnormal
    return float(0.5 * trapezoid(_xlogy(p, 2 * p / s) + _xlogy(q, 2 * q / s), x))


def jsd_from_value(v: float) -> float:
    """The JSD read off the optimal value: ``V(D*, G) = -log 4 + 2 JSD``, so ``JSD = (V + log 4)/2``."""
    return 0.5 * (v + LOG4)


def jsd_mc(pdf_p, pdf_q, x_p, x_q):
    """Monte Carlo JSD from samples ``x_p ~ p`` and ``x_q ~ q`` and the two density functions.

    Args:
        pdf_p, pdf_q: callables returning densities.
        x_p, x_q: samples of ``p`` and of ``q``.

    Returns:
        ``(estimate, standard error)``.
    """
    def half(xs, own):
        a, b = pdf_p(xs), pdf_q(xs)
        return np.log(own(a, b)) - np.log(0.5 * (a + b))

    a = half(x_p, lambda a, b: a)
    b = half(x_q, lambda a, b: b)
    se = 0.5 * math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    return float(0.5 * a.mean() + 0.5 * b.mean()), se


def generator_loss(d, kind: str = "non-saturating"):
    """The generator's loss (to minimise) at ``d = D(G(z))``.

    Args:
        d: discriminator outputs on generated samples, in ``(0, 1)``.
        kind: ``"saturating"``: ``log(1 - d)``, eq. (7) as written;
            ``"non-saturating"``: ``-log d``, the usual replacement.

    Returns:
        Per-sample losses.
    """
    d = np.asarray(d, dtype=float)
    if kind == "saturating":
        return np.log1p(-d)
    if kind == "non-saturating":
        return -np.log(d)
    raise ValueError(f"kind must be 'saturating' or 'non-saturating', not {kind!r}")


def generator_loss_grad_logit(d, kind: str = "non-saturating"):
    """Derivative of :func:`generator_loss` with respect to the discriminator's logit ``l``
    (``d = sigmoid(l)``); this is what flows back into the generator.

    Args:
        d: ``D(G(z))``.
        kind: ``"saturating"`` (gradient ``-d``: vanishes as ``d -> 0``) or
            ``"non-saturating"`` (gradient ``d - 1``: about ``-1`` as ``d -> 0``).

    Returns:
        Per-sample derivatives.
    """
    d = np.asarray(d, dtype=float)
    if kind == "saturating":
        return -d
    if kind == "non-saturating":
        return d - 1.0
    raise ValueError(f"kind must be 'saturating' or 'non-saturating', not {kind!r}")


def shift_generator_descent(theta0: float = -4.0, loss: str = "non-saturating", steps: int = 200,
                            lr: float = 0.1, n_quad: int = 80) -> dict:
    """Gradient descent for the simplest generator, facing the optimal discriminator.

    Data ``N(0, 1)``; generator ``G(z) = z + theta`` with ``z ~ N(0, 1)``, so ``p_g = N(theta, 1)``;
    at every step the discriminator is ``D*`` for the current ``theta``, whose logit is
    ``l(x) = log p_data(x) - log p_g(x) = -theta x + theta^2 / 2``. The generator's gradient holds
    ``D`` fixed: ``d loss / d theta = E_z[d loss / dl * dl/dx] = E_z[d loss / dl] * (-theta)``,
    with the expectation over ``z`` by Gauss-Hermite quadrature (no sampling noise).

    Args:
        theta0: starting shift (far from the data: the discriminator rejects the samples).
        loss: ``"saturating"`` or ``"non-saturating"`` (see :func:`generator_loss`).
        steps: gradient steps.
        lr: step size.
        n_quad: quadrature nodes.

    Returns:
        ``{"theta": (steps + 1,), "d_fake": (steps,) mean D*(G(z)), "grad": (steps,)}``.
    """
    nodes, weights = np.polynomial.hermite_e.hermegauss(n_quad)
    weights = weights / weights.sum()                  # E_z[f(z)] = sum w f(node), z ~ N(0, 1)
    theta = np.empty(steps + 1)
    theta[0] = theta0
    d_fake, grad = np.empty(steps), np.empty(steps)
    for t in range(steps):
        th_ = theta[t]
        x = nodes + th_                                 # generated samples
        d = sigmoid(-th_ * x + 0.5 * th_ ** 2)          # D*(G(z))
        d_fake[t] = weights @ d
        grad[t] = (weights @ generator_loss_grad_logit(d, loss)) * (-th_)
        theta[t + 1] = th_ - lr * grad[t]
    return {"theta": theta, "d_fake": d_fake, "grad": grad}


# --- A tiny MLP with hand-written gradients, and Adam --------------------------------------------

# OpenBLAS runs a matrix product on several threads once m * n * k exceeds 65536 * 4. For the
# tiny networks below, starting threads costs more than the work, and on a busy 2-core machine
# it can make a training step ten times slower; so products are split into blocks under that
# size (same result up to rounding, and still deterministic).
_BLAS_BLOCK = 65536 * 4


def _mm(a, b):
    """``a @ b`` for ``a`` of shape ``(n, k)``, in row blocks small enough for one thread."""
    rows = max(1, _BLAS_BLOCK // max(1, a.shape[1] * b.shape[1]))
    if a.shape[0] <= rows:
        return a @ b
    return np.concatenate([a[i:i + rows] @ b for i in range(0, a.shape[0], rows)])


def _mm_tn(a, g):
    """``a.T @ g`` for ``a (n, k)`` and ``g (n, m)`` (a weight gradient), summed over row blocks."""
    rows = max(1, _BLAS_BLOCK // max(1, a.shape[1] * g.shape[1]))
    if a.shape[0] <= rows:
        return a.T @ g
    out = a[:rows].T @ g[:rows]
    for i in range(rows, a.shape[0], rows):
        out += a[i:i + rows].T @ g[i:i + rows]
    return out


class MLP:
    """A fully connected network with a linear output; NumPy only, gradients by hand.

    Args:
        sizes: layer widths, e.g. ``[2, 64, 64, 1]``.
        rng: ``numpy.random.Generator`` or seed (Glorot-uniform initial weights).
        activation: hidden activation, ``"leaky_relu"`` (slope 0.2 below zero; cheap) or
            ``"tanh"``.
    """

    def __init__(self, sizes, rng=None, activation: str = "leaky_relu"):
        if activation not in ("leaky_relu", "tanh"):
            raise ValueError(f"activation must be 'leaky_relu' or 'tanh', not {activation!r}")
        rng = _rng(rng)
        self.sizes = list(sizes)
        self.activation = activation
        self.params = []
        for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:]):
            lim = math.sqrt(6.0 / (n_in + n_out))
            self.params += [rng.uniform(-lim, lim, (n_in, n_out)), np.zeros(n_out)]

    def forward(self, x):
        """Run the network.

        Args:
            x: inputs, shape ``(n, sizes[0])``.

        Returns:
            ``(outputs of shape (n, sizes[-1]), cache for backward)``.
        """
        h = np.asarray(x, dtype=float)
        cache = [h]
        n_layers = len(self.params) // 2
        for i in range(n_layers):
            h = _mm(h, self.params[2 * i]) + self.params[2 * i + 1]
            if i < n_layers - 1:
                if self.activation == "tanh":
                    h = np.tanh(h)
                    cache.append((h, 1.0 - h * h))
                else:
                    slope = np.where(h > 0, 1.0, 0.2)
                    h = h * slope
                    cache.append((h, slope))
        return h, cache

    def __call__(self, x):
        return self.forward(x)[0]

    def backward(self, cache, grad_out):
        """Backpropagate ``d loss / d outputs``.

        Args:
            cache: the cache from :meth:`forward`.
            grad_out: shape ``(n, sizes[-1])``.

        Returns:
            ``(list of parameter gradients, d loss / d inputs)``.
        """
        grads = [None] * len(self.params)
        g = grad_out
        n_layers = len(self.params) // 2
        for i in reversed(range(n_layers)):
            if i < n_layers - 1:
                g = g * cache[i + 1][1]  # activation's derivative
            inputs = cache[i] if i == 0 else cache[i][0]
            grads[2 * i] = _mm_tn(inputs, g)
            grads[2 * i + 1] = g.sum(axis=0)
            g = _mm(g, self.params[2 * i].T)
        return grads, g


class Adam:
    """Adam on a list of NumPy arrays, updated in place.

    Args:
        params: the arrays to update.
        lr: learning rate.
        beta1, beta2, eps: the usual constants.
    """

    def __init__(self, params, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8):
        self.params, self.lr, self.beta1, self.beta2, self.eps = params, lr, beta1, beta2, eps
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, grads) -> None:
        """One descent step along ``grads`` (gradients of a loss to minimise)."""
        self.t += 1
        c1 = 1.0 - self.beta1 ** self.t
        c2 = 1.0 - self.beta2 ** self.t
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= self.beta1
            m += (1.0 - self.beta1) * g
            v *= self.beta2
            v += (1.0 - self.beta2) * g * g
            p -= self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps)


def train_discriminator_1d(p_data: Mixture1D, p_g: Mixture1D, steps: int, seed: int = 0,
                           batch: int = 256, hidden: int = 32, lr: float = 0.01) -> dict:
    """Train a small discriminator by maximising eq. (8) with ``G`` fixed (so ``p_g`` is fixed).

    The loss is ``-mean log D(x) - mean log(1 - D(x_g))`` on fresh samples each step, with
    ``D = sigmoid(MLP(x))``; gradients are written by hand.

    Args:
        p_data: the data density.
        p_g: the generator's density.
        steps: Adam steps.
        seed: seed of the weights and the samples.
        batch: samples of each density per step.
        hidden: width of the two hidden layers.
        lr: Adam's learning rate.

    Returns:
        ``{"discriminator": callable x -> D(x), "mlp": the MLP, "loss": per-step losses}``.
    """
    rng = np.random.default_rng(seed)
    net = MLP([1, hidden, hidden, 1], rng)
    opt = Adam(net.params, lr=lr)
    losses = np.empty(steps)
    for t in range(steps):
        x = np.concatenate([p_data.sample(batch, rng), p_g.sample(batch, rng)])[:, None]
        y = np.concatenate([np.ones(batch), np.zeros(batch)])[:, None]
        logit, acts = net.forward(x)
        # binary cross-entropy with logits: softplus(l) - y l; derivative sigmoid(l) - y
        losses[t] = np.mean(softplus(logit) - y * logit) * 2
        grads, _ = net.backward(acts, (sigmoid(logit) - y) / batch)
        opt.step(grads)

    def discriminator(x):
        x = np.asarray(x, dtype=float)
        return sigmoid(net(x.reshape(-1, 1))).reshape(x.shape)

    return {"discriminator": discriminator, "mlp": net, "loss": losses}


# --- A small GAN on a 2-D mixture of Gaussians ---------------------------------------------------

def ring_mixture(k: int = 8, radius: float = 2.0):
    """Centres of ``k`` Gaussian modes evenly spaced on a circle.

    Returns:
        Shape ``(k, 2)``.
    """
    angles = 2 * np.pi * np.arange(k) / k
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def sample_ring(centres, std: float, n: int, rng=None) -> np.ndarray:
    """Draw from the equal-weight mixture of ``N(c, std^2 I)`` over the ``centres``.

    Args:
        centres: shape ``(k, 2)`` (see :func:`ring_mixture`).
        std: each mode's standard deviation.
        n: number of draws.
        rng: ``numpy.random.Generator`` or seed.

    Returns:
        Shape ``(n, 2)``.
    """
    rng = _rng(rng)
    k = rng.integers(len(centres), size=n)
    return centres[k] + std * rng.standard_normal((n, 2))


PRIORS = ("normal", "uniform", "uniform_centred")


def _sample_prior(prior, n, dim, rng):
    if prior == "normal":
        return rng.standard_normal((n, dim))
    if prior == "uniform":
        return rng.uniform(0.0, 1.0, (n, dim))
    if prior == "uniform_centred":
        return rng.uniform(-1.0, 1.0, (n, dim))
    raise ValueError(f"prior must be one of {PRIORS}, not {prior!r}")


def modes_covered(samples, centres, std: float, radius_stds: float = 3.0,
                  min_share: float = 0.25):
    """How many modes a set of samples covers, and how many samples are near any mode.

    A sample belongs to its nearest mode if it lies within ``radius_stds * std`` of its centre. A
    mode is covered if it holds at least ``min_share`` of an even share (``n / k``) of the samples.

    Args:
        samples: shape ``(n, 2)``.
        centres: mode centres, shape ``(k, 2)``.
        std: the modes' standard deviation.
        radius_stds: how far from a centre still counts as on the mode.
        min_share: fraction of the even share a mode needs to count as covered.

    Returns:
        ``(number of modes covered, fraction of samples on some mode, counts per mode)``.
    """
    samples = np.asarray(samples, dtype=float)
    d = np.linalg.norm(samples[:, None, :] - centres[None, :, :], axis=2)
    nearest = np.argmin(d, axis=1)
    on_mode = d[np.arange(len(samples)), nearest] <= radius_stds * std
    counts = np.bincount(nearest[on_mode], minlength=len(centres))
    covered = int(np.sum(counts >= min_share * len(samples) / len(centres)))
    return covered, float(on_mode.mean()), counts


def train_toy_gan(steps: int, lr_d: float = 2e-3, lr_g: float = 2e-3,
                  loss: str = "non-saturating", prior: str = "normal", seed: int = 0,
                  k: int = 8, radius: float = 2.0, std: float = 0.1, batch: int = 128,
                  hidden: int = 64, latent_dim: int = 2, d_warmup: int = 0,
                  record_every: int | None = None, n_eval: int = 1000,
                  snapshots: int = 4) -> dict:
    """Train a GAN (NumPy MLPs, hand-written gradients, Adam) on a ring of 2-D Gaussians.

    The discriminator takes one step on eq. (8), then the generator one step on its loss
    (see :func:`generator_loss`), with fresh data and noise every step.

    Args:
        steps: training steps (each one ``D`` step and one ``G`` step).
        lr_d, lr_g: Adam learning rates of the discriminator and the generator (``beta1 = 0.5``).
        loss: the generator's loss, ``"non-saturating"`` or ``"saturating"``.
        prior: the noise ``p_z``: ``"normal"`` (N(0, I)), ``"uniform"`` (U(0, 1) per coordinate,
            as in early GANs) or ``"uniform_centred"`` (U(-1, 1)).
        seed: seed of the weights, the data and the noise.
        k, radius, std: the target: ``k`` modes on a circle of ``radius``, each ``N(c, std^2 I)``.
        batch: samples per step.
        hidden: width of the two hidden layers of both networks.
        latent_dim: size of ``z``.
        d_warmup: discriminator-only steps before training starts (a discriminator that is
            ahead of the generator, as early in real training).
        record_every: steps between evaluations (default: about 30 evaluations).
        n_eval: generated samples per evaluation (from a fixed noise batch).
        snapshots: how many of the evaluations keep their samples (evenly spaced, incl. last).

    Returns:
        A dict: ``centres``, ``std``, ``step`` (evaluation steps), ``modes`` (modes covered),
        ``quality`` (share of samples on a mode), ``mode_counts`` (``(T, k)``), ``mode_change``
        (``T - 1`` values: total-variation distance between the shares of samples per mode at
        consecutive evaluations; large values mean the generator hops between modes), ``d_loss`` and
        ``g_loss`` (per step), ``g_grad_norm`` (per step: norm of the gradient reaching the
        generator's output), ``d_fake`` (per step: mean ``D(G(z))``), ``samples`` (the last
        evaluation's samples), ``snapshots`` (``{step: samples}``) and ``settings``.
    """
    if loss not in ("saturating", "non-saturating"):
        raise ValueError(f"loss must be 'saturating' or 'non-saturating', not {loss!r}")
    rng = np.random.default_rng(seed)
    centres = ring_mixture(k, radius)
    gen = MLP([latent_dim, hidden, hidden, 2], rng)
    disc = MLP([2, hidden, hidden, 1], rng)
    opt_g = Adam(gen.params, lr=lr_g, beta1=0.5)
    opt_d = Adam(disc.params, lr=lr_d, beta1=0.5)
    z_eval = _sample_prior(prior, n_eval, latent_dim, np.random.default_rng(seed + 1))
    record_every = record_every or max(1, steps // 30)
    eval_steps = sorted(set(range(0, steps + 1, record_every)) | {steps})
    keep = set(eval_steps[i] for i in np.linspace(0, len(eval_steps) - 1,
                                                    min(snapshots, len(eval_steps))).astype(int))
    hist = {"step": [], "modes": [], "quality": [], "mode_counts": [], "snapshots": {},
            "d_loss": np.empty(steps), "g_loss": np.empty(steps),
            "g_grad_norm": np.empty(steps), "d_fake": np.empty(steps)}

    def evaluate(t):
        xs = gen(z_eval)
        m, qual, counts = modes_covered(xs, centres, std)
        hist["step"].append(t)
        hist["modes"].append(m)
        hist["quality"].append(qual)
        hist["mode_counts"].append(counts)
        if t in keep:
            hist["snapshots"][t] = xs
        return xs

    y = np.concatenate([np.ones((batch, 1)), np.zeros((batch, 1))])

    def d_step():
        # one step on eq. (8): minimise softplus(-l_real) + softplus(l_fake)
        x_real = sample_ring(centres, std, batch, rng)
        x_fake = gen(_sample_prior(prior, batch, latent_dim, rng))
        logit, acts = disc.forward(np.concatenate([x_real, x_fake]))
        grads, _ = disc.backward(acts, (sigmoid(logit) - y) / batch)
        opt_d.step(grads)
        return np.mean(softplus(logit) - y * logit) * 2

    for _ in range(d_warmup):
        d_step()
    for t in range(steps):
        if t % record_every == 0:
            evaluate(t)
        hist["d_loss"][t] = d_step()
        # generator step through the (updated) discriminator
        x_fake, g_acts = gen.forward(_sample_prior(prior, batch, latent_dim, rng))
        logit, d_acts = disc.forward(x_fake)
        d = sigmoid(logit)
        hist["d_fake"][t] = d.mean()
        hist["g_loss"][t] = np.mean(generator_loss(np.clip(d, 1e-12, 1 - 1e-12), loss))
        _, g_x = disc.backward(d_acts, generator_loss_grad_logit(d, loss) / batch)
        hist["g_grad_norm"][t] = np.mean(np.linalg.norm(g_x * batch, axis=1))
        grads, _ = gen.backward(g_acts, g_x)
        opt_g.step(grads)
    samples = evaluate(steps)
    hist["mode_counts"] = np.array(hist["mode_counts"])
    shares = hist["mode_counts"] / n_eval
    hist["mode_change"] = 0.5 * np.abs(np.diff(shares, axis=0)).sum(axis=1)
    for key in ("step", "modes", "quality"):
        hist[key] = np.array(hist[key])
    hist.update(centres=centres, std=std, samples=samples,
                settings=dict(steps=steps, lr_d=lr_d, lr_g=lr_g, loss=loss, prior=prior,
                              seed=seed, k=k, radius=radius, std=std, batch=batch,
                              hidden=hidden, latent_dim=latent_dim, d_warmup=d_warmup))
    return hist
