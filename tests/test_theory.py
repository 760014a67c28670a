"""Each numeric claim of the theory notebooks, checked, and each check shown to reject a wrong
variant (an entropy term dropped, a factor 2 missing, a sign flipped), so its tolerance is tight
enough to tell."""
import math

import numpy as np
import pytest

from gencomp_utils import theory as th

N = 20_000  # Monte Carlo draws (the smoke preset's theory_samples)


# ---------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def problem():
    """A linear-Gaussian model with a narrow posterior (negative entropy), and one data point."""
    rng = np.random.default_rng(0)
    model = th.LinearGaussianModel.random(data_dim=4, latent_dim=2, noise_std=0.2, rng=rng)
    x = model.sample(1, rng)[0][0]
    return model, x


def trial_qs(model, x, rng):
    """The exact posterior first, then distributions around it: shifted, too wide, too narrow,
    mean-field, and the prior."""
    post = model.posterior(x)
    sd = np.sqrt(np.diag(post.cov))
    qs = [post,
          th.Gaussian(post.mean + 0.5 * sd, post.cov),
          th.Gaussian(post.mean, 3.0 * post.cov),
          th.Gaussian(post.mean, 0.3 * post.cov),
          th.Gaussian.diagonal(post.mean, sd),
          model.prior()]
    for _ in range(3):
        a = rng.normal(size=(2, 2))
        qs.append(th.Gaussian(post.mean + sd * rng.normal(size=2),
                              0.5 * post.cov + 0.01 * a @ a.T))
    return qs


def elbo_correct(model, x, q, rng):
    t = th.elbo_terms(model, x, q, N, rng)
    return t["elbo"]


def elbo_entropy_dropped(model, x, q, rng):
    t = th.elbo_terms(model, x, q, N, rng)
    return t["log_likelihood"] + t["log_prior"]


def elbo_entropy_sign_flipped(model, x, q, rng):
    t = th.elbo_terms(model, x, q, N, rng)
    return t["log_likelihood"] + t["log_prior"] + t["log_q"]


# ---------------------------------------------------------------------------------------------
# Gaussians and the linear-Gaussian model
# ---------------------------------------------------------------------------------------------

def test_gaussian_log_prob_and_sampling():
    g = th.Gaussian([1.0, -2.0], [[2.0, 0.3], [0.3, 0.5]])
    z = np.array([[0.3, -1.0], [2.0, 0.0]])
    d = z - g.mean
    expected = (-0.5 * np.einsum("ni,ij,nj->n", d, np.linalg.inv(g.cov), d)
                - 0.5 * np.log(np.linalg.det(2 * np.pi * g.cov)))
    np.testing.assert_allclose(g.log_prob(z), expected, rtol=1e-12)
    s = g.sample(N, np.random.default_rng(1))
    np.testing.assert_allclose(s.mean(0), g.mean, atol=4 * math.sqrt(2.0 / N))
    np.testing.assert_allclose(np.cov(s.T), g.cov, atol=0.05)
    # entropy = -E[log q]
    assert abs(g.entropy() + g.log_prob(s).mean()) < 4 * g.log_prob(s).std() / math.sqrt(N)


def test_marginal_matches_brute_force(problem):
    """log p(x) = log E_{p(z)}[p(x|z)]: the closed form against prior sampling."""
    model, x = problem
    model = th.LinearGaussianModel(model.W, model.b, 1.0)  # wide enough for prior sampling
    z = np.random.default_rng(2).standard_normal((200_000, model.latent_dim))
    log_w = model.log_likelihood(x, z)
    w = np.exp(log_w - log_w.max())
    se = w.std() / (w.mean() * math.sqrt(len(w)))
    assert abs(th.log_mean_exp(log_w) - model.log_marginal(x)) < 4 * se + 1e-3


def test_posterior_satisfies_bayes_rule(problem):
    model, x = problem
    z = np.random.default_rng(3).normal(size=(7, model.latent_dim))
    lhs = model.log_joint(x, z) - model.log_marginal(x)

    def holds(post):
        return np.allclose(lhs, post.log_prob(z), atol=1e-9)

    assert holds(model.posterior(x))
    post = model.posterior(x)
    forgot_inverse = th.Gaussian(post.mean, np.linalg.inv(post.cov))
    assert not holds(forgot_inverse)


# ---------------------------------------------------------------------------------------------
# the bound (eq. 1) and its gap
# ---------------------------------------------------------------------------------------------

def _bound_holds(model, x, elbo_fn, seed=4):
    """ELBO <= log p(x) for every q tried (within Monte Carlo error), with equality at the
    posterior."""
    rng = np.random.default_rng(seed)
    log_px = model.log_marginal(x)
    qs = trial_qs(model, x, rng)
    for i, q in enumerate(qs):
        e = elbo_fn(model, x, q, rng)
        est, se = e.mean(), e.std(ddof=1) / math.sqrt(len(e))
        if est > log_px + 4 * se + 1e-9:
            return False
        if i == 0 and abs(est - log_px) > 1e-9:
            return False
    return True


def test_elbo_is_a_lower_bound_tight_at_the_posterior(problem):
    model, x = problem
    assert model.posterior(x).entropy() < 0  # so dropping the entropy breaks the bound
    assert _bound_holds(model, x, elbo_correct)
    assert not _bound_holds(model, x, elbo_entropy_dropped)
    assert not _bound_holds(model, x, elbo_entropy_sign_flipped)


def test_integrand_is_constant_at_the_posterior(problem):
    model, x = problem
    e = th.elbo_terms(model, x, model.posterior(x), 100, np.random.default_rng(5))["elbo"]
    np.testing.assert_allclose(e, model.log_marginal(x), atol=1e-9)


def _gap_is_kl(model, x, elbo_fn, seed=6):
    """log p(x) - ELBO = KL(q || p(z|x)) within Monte Carlo error for every q tried."""
    rng = np.random.default_rng(seed)
    log_px, post = model.log_marginal(x), model.posterior(x)
    for q in trial_qs(model, x, rng):
        e = elbo_fn(model, x, q, rng)
        se = e.std(ddof=1) / math.sqrt(len(e))
        if abs(log_px - e.mean() - th.kl_gaussians(q, post)) > 4 * se + 1e-9:
            return False
    return True


def test_gap_equals_kl_monte_carlo(problem):
    model, x = problem
    assert _gap_is_kl(model, x, elbo_correct)
    assert not _gap_is_kl(model, x, elbo_entropy_dropped)
    assert not _gap_is_kl(model, x, elbo_entropy_sign_flipped)


def test_gap_equals_kl_closed_form(problem):
    model, x = problem
    log_px, post = model.log_marginal(x), model.posterior(x)
    for q in trial_qs(model, x, np.random.default_rng(7)):
        e = th.elbo_exact(model, x, q)
        assert e <= log_px + 1e-12
        assert abs(log_px - e - th.kl_gaussians(q, post)) < 1e-9
        # and it agrees with the Monte Carlo average (checks elbo_exact itself)
        mc = th.elbo_terms(model, x, q, N, np.random.default_rng(8))["elbo"]
        assert abs(mc.mean() - e) < 4 * mc.std() / math.sqrt(N) + 1e-9
        # the wrong variant without the entropy misses the KL by exactly H(q)
        assert abs(log_px - (e - q.entropy()) - th.kl_gaussians(q, post)) > 1e-3


def test_kl_gaussians_properties():
    p = th.Gaussian([0.5, -1.0], [[1.0, 0.2], [0.2, 0.7]])
    assert th.kl_gaussians(p, p) == pytest.approx(0.0, abs=1e-12)
    q = th.Gaussian([0.0, 0.0], np.eye(2))
    z = q.sample(N, np.random.default_rng(9))
    d = q.log_prob(z) - p.log_prob(z)
    assert abs(th.kl_gaussians(q, p) - d.mean()) < 4 * d.std() / math.sqrt(N)


def test_jensen_log_of_mean_weight_tends_to_log_px(problem):
    model, x = problem
    post = model.posterior(x)
    q = th.Gaussian(post.mean, 2.0 * post.cov)
    rng = np.random.default_rng(10)
    lw = th.elbo_terms(model, x, q, N, rng)["elbo"]
    log_px = model.log_marginal(x)
    assert lw.mean() < th.log_mean_exp(lw)
    assert abs(th.log_mean_exp(lw) - log_px) < 0.02
    assert log_px - lw.mean() > 0.1  # the ELBO's gap stays


# ---------------------------------------------------------------------------------------------
# the Monte Carlo estimator (eq. 2-3)
# ---------------------------------------------------------------------------------------------

def _estimator_ok(estimates_fn, model, x, q, exact):
    """Unbiased for every L, and its standard deviation falls as 1 / sqrt(L)."""
    Ls = [1, 4, 16, 64]
    est = {L: estimates_fn(L, 400, np.random.default_rng(11 + L)) for L in Ls}
    sigma1 = est[1].std(ddof=1)
    for L, e in est.items():
        if abs(e.mean() - exact) > 4 * e.std(ddof=1) / math.sqrt(len(e)):
            return False
        if not 0.8 < e.std(ddof=1) * math.sqrt(L) / sigma1 < 1.25:
            return False
    return True


def test_mc_estimator_unbiased_and_std_falls_as_inverse_sqrt_l(problem):
    model, x = problem
    post = model.posterior(x)
    q = th.Gaussian(post.mean + 0.05, 2.0 * post.cov)
    exact = th.elbo_exact(model, x, q)

    def right(L, repeats, rng):
        return th.elbo_estimates(model, x, q, L, repeats, rng)

    def sum_over_n(L, repeats, rng):  # the sum over l divided by N = 10 data points, not by L
        return right(L, repeats, rng) * L / 10

    def std_not_falling(L, repeats, rng):  # averages L copies of one draw
        return th.elbo_estimates(model, x, q, 1, repeats, rng)

    assert _estimator_ok(right, model, x, q, exact)
    assert not _estimator_ok(sum_over_n, model, x, q, exact)
    assert not _estimator_ok(std_not_falling, model, x, q, exact)


# ---------------------------------------------------------------------------------------------
# the gradient (eq. 4-5)
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def encoder_problem():
    rng = np.random.default_rng(12)
    model = th.LinearGaussianModel.random(data_dim=4, latent_dim=2, noise_std=0.5, rng=rng)
    x = model.sample(1, rng)[0][0]
    enc = th.LinearEncoder.random(4, 2, rng=rng)
    return model, x, enc


def test_exact_gradient_matches_finite_differences(encoder_problem):
    model, x, enc = encoder_problem
    exact = th.elbo_exact_encoder_gradient(enc, model, x)
    num = th.numerical_gradient(
        lambda **p: th.elbo_exact(model, x, th.LinearEncoder.from_params(p).q(x)), enc.params())
    np.testing.assert_allclose(th.flatten_params(exact), th.flatten_params(num),
                               rtol=1e-6, atol=1e-6)


def _relative_error(a, b):
    a, b = th.flatten_params(a), th.flatten_params(b)
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def test_hand_derived_gradient_matches_gradient_tape(encoder_problem):
    pytest.importorskip("tensorflow")
    model, x, enc = encoder_problem
    eps = np.random.default_rng(13).standard_normal((8, 2))
    tape = th.encoder_gradient_autodiff(enc, model, x, eps)
    assert _relative_error(th.encoder_gradient(enc, model, x, eps), tape) < 1e-10
    t = th.encoder_gradient_terms(enc, model, x, eps)
    anchor_sign_flipped = {k: t["reconstruction"][k] + t["score"][k] - t["anchor"][k] for k in t["score"]}
    score_dropped = {k: t["reconstruction"][k] + t["anchor"][k] for k in t["score"]}
    assert _relative_error(anchor_sign_flipped, tape) > 1e-3
    assert _relative_error(score_dropped, tape) > 1e-3


def test_hand_derived_gradient_matches_finite_differences_of_the_estimate(encoder_problem):
    """Same check without TensorFlow: differentiate the L-sample estimate numerically."""
    model, x, enc = encoder_problem
    eps = np.random.default_rng(14).standard_normal((8, 2))

    def estimate(**p):
        e = th.LinearEncoder.from_params(p)
        mu, std = e(x)
        z = mu + std * eps
        return float(np.mean(model.log_joint(x, z) - th.Gaussian.diagonal(mu, std).log_prob(z)))

    num = th.numerical_gradient(estimate, enc.params())
    assert _relative_error(th.encoder_gradient(enc, model, x, eps), num) < 1e-6


def _unbiased(samples, exact):
    s = th.flatten_params(samples, samples=True)
    z = (s.mean(0) - th.flatten_params(exact)) / (s.std(0, ddof=1) / math.sqrt(len(s)))
    return np.max(np.abs(z)) < 4.5


def test_both_estimators_unbiased_reparam_has_lower_variance(encoder_problem):
    model, x, enc = encoder_problem
    eps = np.random.default_rng(15).standard_normal((N, 2))
    exact = th.elbo_exact_encoder_gradient(enc, model, x)
    rep = th.reparam_gradient_samples(enc, model, x, eps)
    sf = th.score_function_gradient_samples(enc, model, x, eps)
    assert _unbiased(rep, exact)
    assert _unbiased(sf, exact)
    ratio = th.flatten_params(sf, samples=True).var(0) / th.flatten_params(rep, samples=True).var(0)
    assert np.all(ratio > 3)
    # a sign flipped in the anchor term of eq. (5) biases the reparameterised estimator
    parts = th.reparam_gradient_samples(enc, model, x, eps, terms=True)
    flipped = {k: parts["reconstruction"][k] + parts["score"][k] - parts["anchor"][k] for k in rep}
    assert not _unbiased(flipped, exact)


def test_score_has_zero_mean(encoder_problem):
    """E_q[d log q / d phi] = 0, which is why the score-function estimator needs no extra term."""
    model, x, enc = encoder_problem
    eps = np.random.default_rng(16).standard_normal((N, 2))
    t = th.reparam_gradient_samples(enc, model, x, eps, terms=True)["score"]
    zero = {k: np.zeros(v.shape[1:]) for k, v in t.items()}
    assert _unbiased(t, zero)


# ---------------------------------------------------------------------------------------------
# the prior as an anchor; the KL to N(0, I)
# ---------------------------------------------------------------------------------------------

def test_anchor_term_vanishes_when_posterior_is_the_prior(encoder_problem):
    model, x, enc = encoder_problem
    eps = np.random.default_rng(17).standard_normal((50, 2))
    at_prior = th.LinearEncoder.prior_matching(4, 2)
    anchor = th.reparam_gradient_samples(at_prior, model, x, eps, terms=True)["anchor"]
    assert max(np.abs(v).max() for v in anchor.values()) < 1e-12
    anchor = th.reparam_gradient_samples(enc, model, x, eps, terms=True)["anchor"]
    assert max(np.abs(v).max() for v in anchor.values()) > 1e-2
    # a wrong bracket (d log p/dz + d log q/dz) does not vanish at the prior
    mu, std = at_prior(x)
    z = mu + std * eps
    assert np.abs(-z + (-(z - mu) / std ** 2)).max() > 1e-2


def _kl_matches_mc(kl_fn, mu, std, seed=18):
    est, se = th.kl_normal_std_normal_mc(mu, std, N, np.random.default_rng(seed))
    return abs(kl_fn(mu, std) - est) < 4 * se


@pytest.mark.parametrize("mu,std", [([0.3, -1.2, 0.0], [0.5, 1.5, 1.0]),
                                    ([2.0, 0.1], [0.2, 0.9])])
def test_closed_form_kl_matches_monte_carlo(mu, std):
    mu, std = np.array(mu), np.array(std)
    assert _kl_matches_mc(th.kl_normal_std_normal, mu, std)

    def log_var_sign_flipped(m, s):
        return 0.5 * np.sum(s ** 2 + m ** 2 - 1 + np.log(s ** 2))

    def half_missing(m, s):
        return np.sum(s ** 2 + m ** 2 - 1 - np.log(s ** 2))

    assert not _kl_matches_mc(log_var_sign_flipped, mu, std)
    assert not _kl_matches_mc(half_missing, mu, std)


def test_kl_gradient_vanishes_at_the_prior_only():
    g_mu, g_std = th.kl_normal_std_normal_grad(np.zeros(3), np.ones(3))
    assert np.all(g_mu == 0) and np.all(g_std == 0)
    mu, std = np.array([0.4, -0.2]), np.array([0.7, 1.3])
    num = th.numerical_gradient(th.kl_normal_std_normal, {"mu": mu, "std": std})
    g_mu, g_std = th.kl_normal_std_normal_grad(mu, std)
    np.testing.assert_allclose(g_mu, num["mu"], atol=1e-8)
    np.testing.assert_allclose(g_std, num["std"], atol=1e-8)
    assert np.abs(g_std).min() > 0.1


def test_elbo_is_reconstruction_minus_kl_to_prior(problem):
    model, x = problem
    q = th.Gaussian.diagonal([0.1, -0.3], [0.4, 0.8])
    t = th.elbo_terms(model, x, q, N, np.random.default_rng(19))
    recon = t["log_likelihood"]
    kl = th.kl_normal_std_normal(q.mean, np.sqrt(np.diag(q.cov)))
    assert abs(th.elbo_exact(model, x, q) - (recon.mean() - kl)) < 4 * recon.std() / math.sqrt(N)


# ---------------------------------------------------------------------------------------------
# decoders
# ---------------------------------------------------------------------------------------------

def test_bernoulli_log_likelihood_forms_agree():
    x = np.array([0, 1, 1, 0, 1], dtype=float)
    logits = np.array([-3.0, 2.0, 0.1, 20.0, -20.0])
    p = th.sigmoid(logits)
    np.testing.assert_allclose(th.bernoulli_log_likelihood_logits(x, logits),
                               th.bernoulli_log_likelihood(x, p, clip=1e-300), rtol=1e-9)
    # far out, sigmoid rounds to 1 and only the logits form keeps the exact value
    assert th.bernoulli_log_likelihood_logits(0.0, 40.0) == pytest.approx(-40.0)
    # a probability over x in {0, 1}: the two values sum to one
    for pi in (0.1, 0.5, 0.93):
        total = sum(np.exp(th.bernoulli_log_likelihood(v, pi)) for v in (0.0, 1.0))
        assert total == pytest.approx(1.0, abs=1e-12)


def test_gaussian_log_likelihood_is_scaled_squared_error():
    rng = np.random.default_rng(20)
    x, m = rng.uniform(size=50), rng.uniform(size=50)
    for s in (1.0, 0.3, 0.1):
        ll = th.gaussian_log_likelihood(x, m, s).sum()
        expected = -np.sum((x - m) ** 2) / (2 * s ** 2) - 50 * (math.log(s) + 0.5 * math.log(2 * math.pi))
        assert ll == pytest.approx(expected, rel=1e-12)
    grid = np.linspace(-8, 8, 20_001)
    density = np.exp(th.gaussian_log_likelihood(grid, 0.3, 0.7))
    assert th.trapezoid(density, grid) == pytest.approx(1.0, abs=1e-9)


def test_bernoulli_is_not_a_density_on_continuous_pixels():
    u = np.linspace(0, 1, 20_001)
    for p in (0.05, 0.3, 0.5, 0.8):
        integral = th.trapezoid(np.exp(th.bernoulli_log_likelihood(u, p)), u)
        assert th.bernoulli_normaliser(p) == pytest.approx(integral, abs=1e-8)
        assert abs(integral - 1.0) > 0.05


# ---------------------------------------------------------------------------------------------
# GAN: the optimal discriminator and the value function (eq. 6-8)
# ---------------------------------------------------------------------------------------------

P_DATA = th.Mixture1D([-2.0, 2.0], [0.6, 0.6])
P_G = th.Mixture1D([0.5], [1.2])
GRID = np.linspace(-10, 10, 8001)


def test_sigmoid_and_softplus_identities():
    l = np.array([-800.0, -30.0, -1.0, 0.0, 2.5, 30.0, 800.0])
    d = th.sigmoid(l)
    assert np.all(np.isfinite(d)) and np.all((d >= 0) & (d <= 1))
    mid = np.abs(l) < 10
    np.testing.assert_allclose(np.log(d[mid]), -th.softplus(-l[mid]), rtol=1e-12)
    np.testing.assert_allclose(np.log1p(-d[mid]), -th.softplus(l[mid]), rtol=1e-12)
    # at l = 30, 1 - sigmoid(l) has lost most digits; the softplus form keeps them
    assert -th.softplus(30.0) == pytest.approx(-30.0, rel=1e-12)
    assert np.log1p(-th.sigmoid(30.0)) != pytest.approx(-30.0, rel=1e-9)


def test_optimal_discriminator_maximises_pointwise():
    y = np.linspace(1e-4, 1 - 1e-4, 100_001)

    def argmax_is(formula):
        for a, b in [(0.3, 1.2), (2.0, 0.5), (1.0, 1.0), (0.01, 0.4)]:
            best = y[np.argmax(a * np.log(y) + b * np.log(1 - y))]
            if abs(best - formula(a, b)) > 1e-4:
                return False
        return True

    assert argmax_is(lambda a, b: float(th.optimal_discriminator(a, b)))
    assert not argmax_is(lambda a, b: b / (a + b))  # labels swapped


def test_optimal_discriminator_beats_perturbations():
    pd, pg = P_DATA.pdf(GRID), P_G.pdf(GRID)
    logit = th.optimal_logit(pd, pg)
    v_star = th.value_function_grid(logit, pd, pg, GRID, logit=True)
    assert v_star == pytest.approx(
        th.value_function_grid(th.optimal_discriminator(pd, pg), pd, pg, GRID), abs=1e-9)
    rng = np.random.default_rng(21)
    for _ in range(10):
        bump = rng.normal() * np.exp(-0.5 * ((GRID - rng.uniform(-4, 4)) / rng.uniform(0.3, 2)) ** 2)
        assert th.value_function_grid(logit + bump, pd, pg, GRID, logit=True) < v_star


def _value_is_jsd(pd, pg, jsd_factor):
    v = th.value_function_grid(th.optimal_logit(pd, pg), pd, pg, GRID, logit=True)
    return abs(v - (-th.LOG4 + jsd_factor * th.jsd_grid(pd, pg, GRID))) < 1e-8


def test_value_at_optimum_is_minus_log4_plus_2_jsd():
    pairs = [(P_DATA, P_G), (P_DATA, th.Mixture1D([-2.0], [0.6])),
             (P_DATA, th.Mixture1D([1.0, 4.0], [0.5, 0.8], [0.3, 0.7]))]
    for a, b in pairs:
        pd, pg = a.pdf(GRID), b.pdf(GRID)
        assert _value_is_jsd(pd, pg, 2.0)
        assert not _value_is_jsd(pd, pg, 1.0)  # the JSD without its factor 2
        v = th.value_function_grid(th.optimal_logit(pd, pg), pd, pg, GRID, logit=True)
        assert th.jsd_from_value(v) == pytest.approx(th.jsd_grid(pd, pg, GRID), abs=1e-8)


def test_value_at_optimum_monte_carlo():
    rng = np.random.default_rng(22)
    xr, xg = P_DATA.sample(N, rng), P_G.sample(N, rng)

    def d_star(x):
        return th.optimal_discriminator(P_DATA.pdf(x), P_G.pdf(x))

    v, se = th.value_function_mc(d_star(xr), d_star(xg))
    jsd = th.jsd_grid(P_DATA.pdf(GRID), P_G.pdf(GRID), GRID)
    assert abs(v - (-th.LOG4 + 2 * jsd)) < 4 * se
    assert abs(v - (-th.LOG4 + jsd)) > 4 * se
    j_mc, j_se = th.jsd_mc(P_DATA.pdf, P_G.pdf, xr, xg)
    assert abs(j_mc - jsd) < 4 * j_se


def test_value_extremes():
    pd = P_DATA.pdf(GRID)
    d_star = th.optimal_discriminator(pd, pd)
    np.testing.assert_allclose(d_star, 0.5)
    assert th.value_function_grid(d_star, pd, pd, GRID) == pytest.approx(-th.LOG4, abs=1e-8)
    assert th.jsd_grid(pd, pd, GRID) == pytest.approx(0.0, abs=1e-12)
    # far apart, the supports barely overlap: JSD -> log 2 and V(D*, G) -> 0
    both = np.linspace(-10, 60, 70_001)
    a, b = P_DATA.pdf(both), th.Mixture1D([50.0], [0.5]).pdf(both)
    assert th.jsd_grid(a, b, both) == pytest.approx(math.log(2), abs=1e-6)
    v = th.value_function_grid(th.optimal_logit(a, b), a, b, both, logit=True)
    assert v == pytest.approx(0.0, abs=1e-6)


def test_value_function_quadrature_matches_monte_carlo_for_any_d():
    """The change of variables E_z[f(G(z))] = E_{p_g}[f(x)] behind the integral form of V."""
    rng = np.random.default_rng(23)
    D = lambda x: th.sigmoid(0.8 * x - 0.2)  # noqa: E731  (an arbitrary discriminator)
    g = lambda z: 0.5 + 1.2 * z  # noqa: E731  (a generator whose p_g is P_G)
    v, se = th.value_function_mc(D(P_DATA.sample(N, rng)), D(g(rng.standard_normal(N))))
    v_grid = th.value_function_grid(D(GRID), P_DATA.pdf(GRID), P_G.pdf(GRID), GRID)
    assert abs(v - v_grid) < 4 * se


def _weighted_error(d, d_star):
    w = 0.5 * (P_DATA.pdf(GRID) + P_G.pdf(GRID))
    return th.trapezoid(np.abs(d - d_star) * w, GRID)


def test_trained_discriminator_matches_optimal():
    res = th.train_discriminator_1d(P_DATA, P_G, steps=400, seed=0)
    d = res["discriminator"](GRID)
    d_star = th.optimal_discriminator(P_DATA.pdf(GRID), P_G.pdf(GRID))
    assert _weighted_error(d, d_star) < 0.05
    logit_star = np.log(d_star) - np.log1p(-d_star)
    assert _weighted_error(d, th.sigmoid(0.5 * logit_star)) > 0.05  # a tempered D*
    assert _weighted_error(d, 1 - d_star) > 0.05  # labels swapped
    pd, pg = P_DATA.pdf(GRID), P_G.pdf(GRID)
    gap = th.value_function_grid(d_star, pd, pg, GRID) - th.value_function_grid(d, pd, pg, GRID)
    assert 0 <= gap < 0.02
    assert res["loss"][-50:].mean() < res["loss"][:10].mean()


# ---------------------------------------------------------------------------------------------
# generator losses
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["saturating", "non-saturating"])
def test_generator_loss_gradient_matches_finite_differences(kind):
    l = np.linspace(-6, 6, 25)
    h = 1e-6
    num = (th.generator_loss(th.sigmoid(l + h), kind) - th.generator_loss(th.sigmoid(l - h), kind)) / (2 * h)
    np.testing.assert_allclose(th.generator_loss_grad_logit(th.sigmoid(l), kind), num, atol=1e-7)
    assert not np.allclose(-th.generator_loss_grad_logit(th.sigmoid(l), kind), num, atol=1e-3)


def test_saturating_loss_stalls_when_d_rejects_fakes():
    d = np.array([1e-3, 1e-2, 0.1])
    sat = np.abs(th.generator_loss_grad_logit(d, "saturating"))
    non = np.abs(th.generator_loss_grad_logit(d, "non-saturating"))
    np.testing.assert_allclose(sat, d)
    np.testing.assert_allclose(non, 1 - d)
    assert np.all(non / sat > 8)
    with pytest.raises(ValueError):
        th.generator_loss(d, "minimax")


# ---------------------------------------------------------------------------------------------
# the small networks and the 2-D toy GAN
# ---------------------------------------------------------------------------------------------

def _central_difference(loss, array, h=1e-6):
    """d loss / d array by central differences, perturbing ``array`` in place."""
    num = np.zeros_like(array)
    for idx in np.ndindex(array.shape):
        old = array[idx]
        array[idx] = old + h
        up = loss()
        array[idx] = old - h
        down = loss()
        array[idx] = old
        num[idx] = (up - down) / (2 * h)
    return num


@pytest.mark.parametrize("activation", ["leaky_relu", "tanh"])
def test_mlp_backward_matches_finite_differences(activation):
    rng = np.random.default_rng(24)
    net = th.MLP([3, 5, 4, 2], rng, activation=activation)
    x = rng.normal(size=(6, 3))
    target = rng.normal(size=(6, 2))

    def loss():
        return 0.5 * np.sum((net(x) - target) ** 2)

    out, cache = net.forward(x)
    grads, g_in = net.backward(cache, out - target)
    for p, g in zip(net.params, grads):
        np.testing.assert_allclose(g, _central_difference(loss, p), atol=1e-6)
    np.testing.assert_allclose(g_in, _central_difference(loss, x), atol=1e-6)


def test_blocked_matrix_products_agree_with_numpy():
    rng = np.random.default_rng(25)
    a, b, g = rng.normal(size=(700, 64)), rng.normal(size=(64, 48)), rng.normal(size=(700, 48))
    np.testing.assert_allclose(th._mm(a, b), a @ b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(th._mm_tn(a, g), a.T @ g, rtol=1e-10, atol=1e-10)


def test_adam_minimises_a_quadratic():
    p = [np.array([3.0, -2.0])]
    opt = th.Adam(p, lr=0.1)
    for _ in range(300):
        opt.step([2 * p[0]])
    assert np.abs(p[0]).max() < 1e-2


def test_modes_covered_metric():
    centres = th.ring_mixture(8, 2.0)
    rng = np.random.default_rng(26)
    m, q, counts = th.modes_covered(th.sample_ring(centres, 0.1, 2000, rng), centres, 0.1)
    assert m == 8 and q > 0.98 and counts.sum() == round(q * 2000)
    collapsed = centres[3] + 0.1 * rng.normal(size=(2000, 2))
    m, q, counts = th.modes_covered(collapsed, centres, 0.1)
    assert m == 1 and counts.argmax() == 3
    m, q, _ = th.modes_covered(rng.normal(size=(2000, 2)) * 0.05, centres, 0.1)  # at the centre
    assert m == 0 and q == 0


def test_toy_gan_runs_and_is_deterministic():
    a = th.train_toy_gan(12, seed=3, hidden=16, batch=32, record_every=4, d_warmup=3)
    b = th.train_toy_gan(12, seed=3, hidden=16, batch=32, record_every=4, d_warmup=3)
    assert list(a["step"]) == [0, 4, 8, 12]
    assert a["mode_counts"].shape == (4, 8) and a["mode_change"].shape == (3,)
    assert np.all(np.isfinite(a["d_loss"])) and np.all(np.isfinite(a["g_grad_norm"]))
    np.testing.assert_array_equal(a["samples"], b["samples"])
    np.testing.assert_array_equal(a["g_loss"], b["g_loss"])
    c = th.train_toy_gan(12, seed=3, hidden=16, batch=32, record_every=4, prior="uniform")
    assert not np.array_equal(a["samples"], c["samples"])
    with pytest.raises(ValueError):
        th.train_toy_gan(2, prior="cauchy")


def test_saturating_first_step_gradient_is_smaller_when_d_rejects_fakes():
    """Same start (same seed, same warm-up): the first generator gradients differ only by the
    per-sample factors D and 1 - D."""
    kw = dict(steps=1, seed=0, hidden=16, batch=64, d_warmup=50, lr_d=5e-3)
    sat = th.train_toy_gan(loss="saturating", **kw)
    non = th.train_toy_gan(loss="non-saturating", **kw)
    assert sat["d_fake"][0] == non["d_fake"][0] < 0.5
    assert sat["g_grad_norm"][0] < non["g_grad_norm"][0]


def test_quantile_pushforward_of_both_priors():
    """Any 1-D target is the image of U(0, 1) under F^-1, and of N(0, 1) under F^-1(Phi)."""
    rng = np.random.default_rng(27)
    n = 5000
    xs_u = np.sort(P_DATA.quantile(rng.uniform(size=n)))
    xs_n = np.sort(P_DATA.quantile(th.normal_cdf(rng.standard_normal(n))))
    ecdf = (np.arange(1, n + 1) - 0.5) / n
    bound = 1.63 / math.sqrt(n)  # Kolmogorov-Smirnov, 1 % level
    assert np.abs(P_DATA.cdf(xs_u) - ecdf).max() < bound
    assert np.abs(P_DATA.cdf(xs_n) - ecdf).max() < bound
    # the wrong map (the uniform pushed through F^-1 without Phi for the normal) fails
    xs_bad = np.sort(P_DATA.quantile(np.clip(rng.standard_normal(n), 0, 1)))
    assert np.abs(P_DATA.cdf(xs_bad) - ecdf).max() > bound


@pytest.mark.parametrize("loss", ["saturating", "non-saturating"])
def test_shift_generator_gradient_matches_finite_differences(loss):
    """The generator's gradient with D* held fixed, against differentiating the expected loss."""
    theta = -3.0
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    weights = weights / weights.sum()

    def expected_loss(t):  # D fixed at D* for theta; the samples move with t
        logit = -theta * (nodes + t) + 0.5 * theta ** 2
        # log(1 - D) = -softplus(l) and -log D = softplus(-l), from the logit so far tails stay finite
        per_node = -th.softplus(logit) if loss == "saturating" else th.softplus(-logit)
        return weights @ per_node

    num = (expected_loss(theta + 1e-6) - expected_loss(theta - 1e-6)) / 2e-6
    run = th.shift_generator_descent(theta0=theta, loss=loss, steps=1)
    assert run["grad"][0] == pytest.approx(num, rel=1e-6)
    assert run["grad"][0] != pytest.approx(-num, rel=1e-2)  # a flipped sign would show
    assert run["theta"][1] == pytest.approx(theta - 0.1 * run["grad"][0])


def test_saturating_shift_generator_stalls_then_both_reach_the_data():
    sat = th.shift_generator_descent(theta0=-5.0, loss="saturating", steps=400)
    non = th.shift_generator_descent(theta0=-5.0, loss="non-saturating", steps=400)
    assert sat["d_fake"][0] == non["d_fake"][0] < 0.02
    assert abs(sat["theta"][10] + 5) < 0.1 < abs(non["theta"][10] + 5)
    assert abs(non["theta"][-1]) < 1e-3 and abs(sat["theta"][-1]) < 0.1


def test_normal_cdf():
    assert th.normal_cdf(0.0) == pytest.approx(0.5)
    assert th.normal_cdf(1.959963984540054) == pytest.approx(0.975, abs=1e-12)
    z = np.random.default_rng(28).standard_normal(N)
    assert abs(np.mean(z <= 0.7) - th.normal_cdf(0.7)) < 4 * 0.5 / math.sqrt(N)
