"""Kernels: RBF bandwidth ladders, IMQ as an RBF ladder, and closed-form kernel means of priors.

The kernel is k(x, y) = sum_j w_j exp(-||x - y||^2 / (2 s_j^2)). For a prior p that is a
Gaussian mixture (diagonal or full covariances; a one-hot categorical is a mixture of point
masses) or a uniform box, `PriorKernelMean` gives m_p(z) = E_{y~p} k(z, y) in closed form
(per-step maths in `keras.ops`, constants precomputed in float64) and E_{y,y'~p} k(y, y').

Example:
    >>> from aae_keras import kernels, priors
    >>> info = priors.describe(priors.gaussian_mixture(10, 2))
    >>> kernels.auto_bandwidths(info)
    [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0]
"""

import math

import numpy as np
from keras import ops

__all__ = [
    "auto_bandwidths",
    "imq_ladder",
    "check_ladder",
    "pairwise_sq_distances",
    "rbf_ladder",
    "PriorKernelMean",
]

_MAX_LADDER = 16
_MAX_BLOCK_MATRIX = 2**22  # entries; larger diagonal mixtures use an einsum instead


def auto_bandwidths(info):
    """A x2 ladder of RBF bandwidths s_j scaled to the prior described by `info`.

    Gaussian N(mu, sigma^2 I) in d dims: s_j^2 = d sigma^2 2^j, j = -3..3. Mixtures, boxes and
    categoricals: s doubles from sqrt(d/8) times the smallest component std (a quarter of
    the closest pair of means for point masses) until it reaches twice the prior's spread
    R = sqrt(E||y - E y||^2). The ring of 10 (radius 4, std 0.5) gets 0.25, 0.5, ..., 16.

    >>> from aae_keras import priors
    >>> auto_bandwidths(priors.describe(priors.gaussian(8)))[3]
    2.8284271247461903
    """
    dim = info["dim"]
    if info["kind"] == "mixture" and len(info["weights"]) == 1:
        sigma2 = float(np.trace(_covariances(info)[0])) / dim
        return [math.sqrt(dim * sigma2 * 2.0**j) for j in range(-3, 4)]
    if info["kind"] == "uniform":
        std = (np.asarray(info["high"]) - np.asarray(info["low"])) / math.sqrt(12.0)
        smallest, spread = float(std.min()), float(np.sqrt(np.sum(std**2)))
        first = math.sqrt(dim / 8.0) * smallest
    else:
        weights, means, cov = _mixture(info)
        centre = weights @ means
        spread = math.sqrt(float(weights @ (np.trace(cov, axis1=1, axis2=2) + np.sum((means - centre) ** 2, 1))))
        smallest = math.sqrt(max(float(np.linalg.eigvalsh(cov).min()), 0.0))
        if smallest > 0:
            first = math.sqrt(dim / 8.0) * smallest
        else:  # point masses: resolve the closest pair of atoms
            gaps = np.sqrt(np.sum((means[:, None] - means[None]) ** 2, -1))
            first = float(gaps[gaps > 0].min()) / 4.0 if len(means) > 1 else spread / 4.0
    ladder = [first]
    while ladder[-1] < 2.0 * spread and len(ladder) < _MAX_LADDER:
        ladder.append(ladder[-1] * 2.0)
    return ladder


def imq_ladder(scale, num_nodes=16):
    """RBF ladder equal to the IMQ kernel C / (C + r^2) with C = `scale`.

    C/(C + r^2) = E_{t~Exp(1)} exp(-t r^2 / C): a trapezoid rule in log t on [-11, 3]
    gives bandwidths s^2 = C / (2t) and weights; error < 0.1% for r^2/C in [0, 100].

    >>> s, w = imq_ladder(1.0); round(sum(w), 3)
    1.0
    """
    u = np.linspace(-11.0, 3.0, num_nodes)
    t = np.exp(u)
    weights = (u[1] - u[0]) * t * np.exp(-t)
    return [float(v) for v in np.sqrt(scale / (2.0 * t))], [float(v) for v in weights]


def check_ladder(bandwidths, weights):
    """Validate a ladder; returns (bandwidths, weights) as float lists (equal weights default).

    >>> check_ladder([1.0, 2.0], None)
    ([1.0, 2.0], [0.5, 0.5])
    """
    bandwidths = [float(s) for s in np.atleast_1d(np.asarray(bandwidths, np.float64))]
    if not bandwidths or not all(np.isfinite(s) and s > 0 for s in bandwidths):
        raise ValueError(
            f"Kernel bandwidths must be positive finite numbers, got {bandwidths}; "
            'use bandwidths="auto" for a ladder scaled to the prior.'
        )
    if weights is None:
        weights = [1.0 / len(bandwidths)] * len(bandwidths)
    weights = [float(w) for w in np.atleast_1d(np.asarray(weights, np.float64))]
    if len(weights) != len(bandwidths) or not all(np.isfinite(w) and w >= 0 for w in weights):
        raise ValueError(
            f"Kernel weights must be {len(bandwidths)} non-negative numbers (one per bandwidth), got {weights}."
        )
    return bandwidths, weights


def pairwise_sq_distances(x):
    """Squared distances between the rows of x, centred first and clamped at 0.

    >>> float(pairwise_sq_distances(np.array([[0., 0.], [3., 4.]]))[0, 1])
    25.0
    """
    x = x - ops.mean(x, axis=0, keepdims=True)
    sq = ops.sum(x * x, axis=1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * ops.matmul(x, ops.transpose(x))
    return ops.maximum(d2, 0.0)


def rbf_ladder(d2, bandwidths, weights):
    """sum_j w_j exp(-d2 / (2 s_j^2)) elementwise over a tensor of squared distances.

    >>> float(rbf_ladder(np.float32(0.0), [1.0, 2.0], [0.5, 0.5]))
    1.0
    """
    d2 = ops.convert_to_tensor(d2, "float32")
    scales = ops.convert_to_tensor(np.asarray([-0.5 / (s * s) for s in bandwidths], np.float32))
    return ops.sum(ops.convert_to_tensor(np.asarray(weights, np.float32)) * ops.exp(d2[..., None] * scales), axis=-1)


class PriorKernelMean:
    """Closed-form m_p(z) = E_{y~p} k(z, y) and E_pp for a described prior and an RBF ladder.

    Raises `ValueError` if the prior has no closed form (e.g. a swiss roll).

    >>> from aae_keras import priors
    >>> km = PriorKernelMean(priors.describe(priors.gaussian(2)), [1.0], [1.0])
    >>> round(km.self_mean, 4)   # E k(y, y') = (1 + 2/1)^(-2/2)
    0.3333
    """

    def __init__(self, info, bandwidths, weights):
        self.kind = info["kind"]
        s = np.asarray(bandwidths, np.float64)
        w = np.asarray(weights, np.float64)
        if self.kind == "uniform":
            self.low = np.asarray(info["low"], np.float64)
            self.high = np.asarray(info["high"], np.float64)
            self._build_uniform(s, w)
            return
        if self.kind not in ("mixture", "categorical"):
            raise ValueError(f"no closed form for a prior of kind {self.kind!r}")
        pi, mu, cov = _mixture(info)
        self._build_mixture(pi, mu, cov, s, w)

    def __call__(self, z):
        """m_p(z) for a batch z [n, d]; returns [n]."""
        z = ops.convert_to_tensor(z, "float32")
        if self.kind == "uniform":
            return self._uniform_mean(z)
        n = ops.shape(z)[0]
        diff = z[:, None, :] - ops.convert_to_tensor(self.means)[None]  # [n, K, d]
        if self.diagonal and self.quad_matrix is not None:  # one matmul, block matrix [K*d, K*S]
            quad = ops.matmul(ops.reshape(diff * diff, (n, -1)), self.quad_matrix)
        elif self.diagonal:  # [K, d, S] inverse variances
            quad = ops.reshape(ops.einsum("nkd,kds->nks", diff * diff, self.inv_var), (n, -1))
        else:  # [K, S, d, d] inverse Cholesky factors
            proj = ops.einsum("nkd,kted->nkte", diff, self.inv_chol)
            quad = ops.reshape(ops.sum(proj * proj, axis=-1), (n, -1))
        return ops.exp(ops.logsumexp(ops.convert_to_tensor(self.log_coef) - 0.5 * quad, axis=1))  # over (k, s)

    def _build_mixture(self, pi, mu, cov, s, w):
        d = mu.shape[1]
        self.means = mu.astype(np.float32)
        variances = np.diagonal(cov, axis1=1, axis2=2)
        self.diagonal = bool(np.allclose(cov, variances[..., None] * np.eye(d)))
        s2 = (s**2)[:, None, None]  # [S, 1, 1]
        k = len(pi)
        if self.diagonal:
            total = variances[None] + s2  # [S, K, d]
            self.inv_var = (1.0 / total).transpose(1, 2, 0).astype(np.float32)  # [K, d, S]
            self.quad_matrix = None
            if k * d * k * len(s) <= _MAX_BLOCK_MATRIX:
                blocks = np.zeros((k, d, k, len(s)), np.float32)
                for c in range(k):
                    blocks[c, :, c, :] = self.inv_var[c]
                self.quad_matrix = blocks.reshape(k * d, k * len(s))
            half_logdet = 0.5 * np.sum(np.log(total), -1)
        else:
            chol = np.linalg.cholesky(cov[None] + s2[..., None] * np.eye(d))  # [S, K, d, d]
            self.inv_chol = np.linalg.inv(chol).transpose(1, 0, 2, 3).astype(np.float32)
            half_logdet = np.sum(np.log(np.diagonal(chol, axis1=2, axis2=3)), -1)
        # log of w_s pi_k det(I + Sigma_k / s^2)^(-1/2), flattened in (k, s) order
        log_coef = np.log(w)[:, None] + np.log(pi)[None] + d * np.log(s)[:, None] - half_logdet
        self.log_coef = log_coef.T.reshape(-1).astype(np.float32)
        # E_pp = sum_s w_s sum_{k,l} pi_k pi_l det(I + (S_k+S_l)/s^2)^(-1/2) exp(-D^T(...)^-1 D/2)
        total = 0.0
        for s_j, w_j in zip(s, w):
            pair_cov = cov[:, None] + cov[None] + s_j**2 * np.eye(d)  # [K, K, d, d]
            delta = mu[:, None] - mu[None]
            _, logdet = np.linalg.slogdet(pair_cov)
            quad = np.einsum("kld,kld->kl", delta, np.linalg.solve(pair_cov, delta[..., None])[..., 0])
            total += w_j * np.sum(pi[:, None] * pi[None] * np.exp(d * np.log(s_j) - 0.5 * logdet - 0.5 * quad))
        self.self_mean = float(total)

    def _build_uniform(self, s, w):
        length = self.high - self.low
        self.bandwidths, self.weights = s.astype(np.float32), w.astype(np.float32)
        factor = s[:, None]  # [S, 1]
        per_dim = (2.0 / length**2) * (
            length * factor * math.sqrt(math.pi / 2.0) * _erf(length / (factor * math.sqrt(2.0)))
            - factor**2 * (1.0 - np.exp(-(length**2) / (2.0 * factor**2)))
        )
        self.self_mean = float(np.sum(w * np.prod(per_dim, axis=1)))

    def _uniform_mean(self, z):
        low, high, length = (
            ops.convert_to_tensor(v.astype(np.float32)) for v in (self.low, self.high, self.high - self.low)
        )
        total = 0.0
        for s, w in zip(self.bandwidths, self.weights):
            c = float(s) * math.sqrt(2.0)
            per_dim = (float(s) * math.sqrt(math.pi / 2.0) / length) * (
                ops.erf((high - z) / c) - ops.erf((low - z) / c)
            )
            total = total + float(w) * ops.prod(per_dim, axis=1)
        return total


def _erf(x):
    return np.vectorize(math.erf)(x)


def _mixture(info):
    """(weights [K], means [K, d], covariances [K, d, d]) in float64; categoricals are atoms."""
    if info["kind"] == "categorical":
        probs = np.asarray(info["probs"], np.float64)
        keep = probs > 0
        k = len(probs)
        return probs[keep], np.eye(k)[keep], np.zeros((int(keep.sum()), k, k))
    return (
        np.asarray(info["weights"], np.float64),
        np.asarray(info["means"], np.float64),
        _covariances(info),
    )


def _covariances(info):
    if "covariances" in info:
        return np.asarray(info["covariances"], np.float64)
    variances = np.asarray(info["variances"], np.float64)
    return variances[..., None] * np.eye(variances.shape[-1])
