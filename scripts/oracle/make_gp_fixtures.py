#!/usr/bin/env python3
"""Reference values for the Gaussian process and expected improvement of Bayesian optimization.

Writes Tests/HyperOptTests/Fixtures/gp.json, read by Tests/HyperOptTests/BayesOptTests.swift.

For fixed data sets (12 points in 2-D, 30 points in 5-D) and FIXED kernel hyperparameters the
reference is scikit-learn's

    GaussianProcessRegressor(kernel=ConstantKernel(sf**2) * RBF(ell) + WhiteKernel(sn**2),
                             optimizer=None, normalize_y=True, alpha=0)

(posterior mean and std at test points, where sklearn's std includes the white noise, and the
log marginal likelihood with its gradient), checked against the textbook formulas written
directly in numpy/scipy (Rasmussen & Williams, Algorithm 2.1 and eq. 5.9), which also give
the latent-f std (no noise). Expected improvement comes from scipy.stats.norm. The fit-quality
reference is sklearn's own optimum of the marginal likelihood (L-BFGS-B, 20 restarts) inside
the box that `GaussianProcess.Bounds.unitCube` uses.

Conventions (same as the Swift code):
  - targets standardized by mean and population std (sklearn normalize_y=True);
  - the LML is of the standardized targets;
  - gradient w.r.t. [log l_1 .. log l_d, log sf, log sn]; sklearn differentiates w.r.t.
    [log sf^2, log l_1 .., log sn^2], so its sf and sn entries are doubled here.

Regenerate (deterministic for given numpy/scikit-learn versions):
    pip install scikit-learn     # fixture generation only; never needed by the Swift tests
    python3 scripts/oracle/make_gp_fixtures.py
    swift test --filter BayesOptTests
"""
import json
import os

import numpy as np
import scipy
import sklearn
from scipy.linalg import cho_factor, cho_solve, solve_triangular
from scipy.stats import norm
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests", "HyperOptTests", "Fixtures", "gp.json")

# GaussianProcess.Bounds.unitCube: l in [0.01, 100], sf in [0.05, 20], sn in [1e-3, 1].
L_BOUNDS = (0.01, 100.0)
SF_BOUNDS = (0.05, 20.0)
SN_BOUNDS = (1e-3, 1.0)


def kernel(ell, sf, sn):
    return (ConstantKernel(sf**2, (SF_BOUNDS[0] ** 2, SF_BOUNDS[1] ** 2))
            * RBF(ell, L_BOUNDS)
            + WhiteKernel(sn**2, (SN_BOUNDS[0] ** 2, SN_BOUNDS[1] ** 2)))


def direct(X, y, Xs, ell, sf, sn):
    """Textbook GP on standardized targets: mean, latent and noisy std, LML and its gradient."""
    ell = np.asarray(ell, dtype=float)
    m, s = y.mean(), y.std()
    yt = (y - m) / s
    n, d = X.shape

    def kf(A, B):
        diff = (A[:, None, :] - B[None, :, :]) / ell
        return sf**2 * np.exp(-0.5 * np.sum(diff**2, axis=2))

    Kf = kf(X, X)
    K = Kf + sn**2 * np.eye(n)
    L = np.linalg.cholesky(K)
    alpha = cho_solve((L, True), yt)
    ks = kf(Xs, X)
    mu = ks @ alpha
    v = solve_triangular(L, ks.T, lower=True)
    var_latent = sf**2 - np.sum(v**2, axis=0)
    lml = -0.5 * yt @ alpha - np.sum(np.log(np.diag(L))) - 0.5 * n * np.log(2 * np.pi)
    W = np.outer(alpha, alpha) - cho_solve((L, True), np.eye(n))
    grad = []
    for c in range(d):
        dK = Kf * (X[:, None, c] - X[None, :, c]) ** 2 / ell[c] ** 2
        grad.append(0.5 * np.sum(W * dK))
    grad.append(0.5 * np.sum(W * 2 * Kf))
    grad.append(0.5 * np.trace(W) * 2 * sn**2)
    return dict(mean=m + s * mu, std_latent=s * np.sqrt(var_latent),
                std_noisy=s * np.sqrt(var_latent + sn**2), lml=lml, grad=np.array(grad))


def expected_improvement(best, xi, mu, sd):
    imp = best - mu - xi
    z = imp / sd
    return imp * norm.cdf(z) + sd * norm.pdf(z)


def rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def make_case(name, X, y, Xs, ell, sf, sn, xi, fit_restarts=20):
    # Bounded (not "fixed") hyperparameters so that sklearn exposes theta and the LML gradient;
    # optimizer=None keeps them at the given values.
    gp = GaussianProcessRegressor(kernel=kernel(ell, sf, sn), optimizer=None, normalize_y=True,
                                  alpha=0.0)
    gp.fit(X, y)
    mean_sk, std_sk = gp.predict(Xs, return_std=True)
    theta = gp.kernel_.theta          # [log sf^2, log l_1.., log sn^2]
    lml_sk, grad_sk = gp.log_marginal_likelihood(theta, eval_gradient=True)
    d = X.shape[1]
    grad_mine = np.concatenate([grad_sk[1:1 + d], [2 * grad_sk[0], 2 * grad_sk[-1]]])

    ref = direct(X, y, Xs, ell, sf, sn)
    checks = {
        "mean": rel(ref["mean"], mean_sk),
        "std_noisy": rel(ref["std_noisy"], std_sk),
        "lml": rel(ref["lml"], lml_sk),
        "grad": rel(ref["grad"], grad_mine),
    }
    worst = max(checks.values())
    assert worst < 1e-10, f"{name}: sklearn and the direct formulas disagree: {checks}"

    best = float(np.min(y))
    ei = expected_improvement(best, xi, ref["mean"], ref["std_latent"])

    # Fit quality: sklearn's optimum inside the unit-cube bounds.
    fitted = GaussianProcessRegressor(kernel=kernel(ell, sf, sn), normalize_y=True, alpha=0.0,
                                      n_restarts_optimizer=fit_restarts, random_state=0)
    fitted.fit(X, y)
    k = fitted.kernel_
    fit = {
        "lml": float(fitted.log_marginal_likelihood_value_),
        "length_scales": np.atleast_1d(k.k1.k2.length_scale).tolist(),
        "signal_std": float(np.sqrt(k.k1.k1.constant_value)),
        "noise_std": float(np.sqrt(k.k2.noise_level)),
    }

    return {
        "name": name,
        "inputs": X.tolist(),
        "targets": y.tolist(),
        "test_inputs": Xs.tolist(),
        "length_scales": list(map(float, ell)),
        "signal_std": sf,
        "noise_std": sn,
        "mean": mean_sk.tolist(),
        "std_noisy": std_sk.tolist(),
        "std_latent": ref["std_latent"].tolist(),
        "log_marginal_likelihood": float(lml_sk),
        "log_marginal_likelihood_gradient": grad_mine.tolist(),
        "ei_best": best,
        "ei_xi": xi,
        "expected_improvement": ei.tolist(),
        "fit": fit,
        "self_check_max_relative_error": worst,
    }


def main():
    rng = np.random.default_rng(20240607)

    # 12 points in 2-D: a smooth bowl with a ripple, small noise.
    X2 = np.round(rng.uniform(0, 1, size=(12, 2)), 4)
    y2 = (X2[:, 0] - 0.3) ** 2 + 2 * (X2[:, 1] - 0.6) ** 2 + 0.1 * np.sin(7 * X2[:, 0]) \
        + 0.01 * rng.standard_normal(12)
    Xs2 = np.round(rng.uniform(-0.1, 1.1, size=(9, 2)), 4)
    case2 = make_case("2d", X2, np.round(y2, 6), Xs2, [0.3, 0.7], 1.3, 0.05, xi=0.01)

    # 30 points in 5-D, one irrelevant direction, more noise, targets on another scale.
    X5 = np.round(rng.uniform(0, 1, size=(30, 5)), 4)
    y5 = 3 + np.sum((X5 - 0.4) ** 2 * np.array([1, 2, 0.5, 0.0, 1.5]), axis=1) \
        + 0.3 * np.cos(4 * X5[:, 0] * X5[:, 1]) + 0.05 * rng.standard_normal(30)
    Xs5 = np.round(rng.uniform(0, 1, size=(10, 5)), 4)
    case5 = make_case("5d", X5, np.round(y5, 6), Xs5, [0.4, 0.5, 0.9, 2.0, 0.6], 0.8, 0.2, xi=0.02)

    out = {
        "generator": "scripts/oracle/make_gp_fixtures.py",
        "versions": {"numpy": np.__version__, "scipy": scipy.__version__, "sklearn": sklearn.__version__},
        "fit_bounds": {"length_scale": L_BOUNDS, "signal_std": SF_BOUNDS, "noise_std": SN_BOUNDS},
        "cases": [case2, case5],
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    for c in out["cases"]:
        print(f"{c['name']}: lml {c['log_marginal_likelihood']:.6f}, fitted lml {c['fit']['lml']:.6f}, "
              f"min EI {min(c['expected_improvement']):.3e}, self-check {c['self_check_max_relative_error']:.1e}")
    print(f"wrote {os.path.relpath(OUT, ROOT)}")


if __name__ == "__main__":
    main()
