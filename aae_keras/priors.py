"""Priors: TensorFlow Probability distributions for the latent space, and their parameters.

Every factory returns a `tfd.Distribution` with event shape `[d]`; any other TFP distribution
with event shape `[d]` is accepted by the models too. `describe(prior)` reads a prior's
parameters into plain numpy (the form the closed-form MMD and serialization use), and
`from_description` rebuilds the distribution.

Example:
    >>> from aae_keras import priors
    >>> ring = priors.gaussian_mixture(num_components=10, dim=2, radius=4.0, scale=0.5)
    >>> priors.describe(ring)["kind"]
    'mixture'
"""

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions
tfb = tfp.bijectors

__all__ = [
    "categorical",
    "component",
    "describe",
    "event_size",
    "from_config",
    "from_description",
    "gaussian",
    "gaussian_mixture",
    "mixture_means",
    "swiss_roll",
    "to_config",
    "uniform",
]


def gaussian(dim, scale=1.0):
    """Isotropic Gaussian N(0, scale^2 I) in `dim` dimensions.

    >>> gaussian(8).event_shape
    TensorShape([8])
    """
    _check_positive_int(dim, "dim")
    _check_positive(scale, "scale")
    return tfd.MultivariateNormalDiag(
        loc=np.zeros(dim, np.float32), scale_diag=np.full(dim, scale, np.float32)
    )


def mixture_means(num_components, dim, radius):
    """Well-separated component means at distance `radius` from the origin.

    dim=2: the paper's ring (angles 2 pi k / K). dim>2 and K <= 2*dim: +-radius along the axes
    (e_1, -e_1, e_2, ...), pairwise at least radius*sqrt(2) apart. Otherwise points on the
    sphere spread by a fixed-seed repulsion, so the layout is the same on every machine.

    >>> mixture_means(4, 2, 1.0).round(3).tolist()
    [[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [-0.0, -1.0]]
    """
    if dim == 1:
        return np.linspace(-radius, radius, num_components).reshape(-1, 1).astype(np.float32)
    if dim == 2:
        angles = 2.0 * np.pi * np.arange(num_components) / num_components
        return (radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)).astype(np.float32)
    if num_components <= 2 * dim:
        axes = np.concatenate([np.eye(dim), -np.eye(dim)])
        order = np.arange(2 * dim).reshape(2, dim).T.reshape(-1)  # e1, -e1, e2, -e2, ...
        return (radius * axes[order[:num_components]]).astype(np.float32)
    points = np.random.default_rng(0).normal(size=(num_components, dim))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    for _ in range(200):  # push points apart on the unit sphere
        diff = points[:, None] - points[None]
        dist2 = np.sum(diff**2, -1) + np.eye(num_components)
        points += 0.05 * np.sum(diff / dist2[..., None] ** 1.5, axis=1)
        points /= np.linalg.norm(points, axis=1, keepdims=True)
    return (radius * points).astype(np.float32)


def gaussian_mixture(
    num_components=10,
    dim=2,
    radius=4.0,
    scale=0.5,
    *,
    means=None,
    scales=None,
    covariances=None,
    weights=None,
):
    """Mixture of Gaussians; by default the paper's ring of 10 2-D Gaussians (radius 4, std 0.5).

    Pass `means` [K, d] to place components yourself, `scales` (scalar, [K] or [K, d] stds) for
    diagonal components or `covariances` [K, d, d] for full ones, and `weights` [K].

    >>> gaussian_mixture(10, 2).event_shape
    TensorShape([2])
    >>> gaussian_mixture(means=[[0., 0.], [3., 0.]], covariances=[np.eye(2), 2 * np.eye(2)])
    ... # doctest: +ELLIPSIS
    <tfp.distributions.MixtureSameFamily ...>
    """
    if means is None:
        _check_positive_int(num_components, "num_components")
        _check_positive_int(dim, "dim")
        _check_positive(radius, "radius")
        means = mixture_means(num_components, dim, radius)
    means = np.asarray(means, np.float32)
    if means.ndim != 2:
        raise ValueError(f"means must have shape [num_components, dim], got {means.shape}.")
    k, d = means.shape
    weights = np.full(k, 1.0 / k) if weights is None else np.asarray(weights, np.float64)
    if weights.shape != (k,) or np.any(weights < 0) or not np.isclose(weights.sum(), 1.0):
        raise ValueError(
            f"weights must be {k} non-negative numbers summing to 1 (one per mean), got {weights}."
        )
    mixing = tfd.Categorical(probs=weights.astype(np.float32))
    if covariances is not None:
        cov = np.asarray(covariances, np.float64)
        if cov.shape != (k, d, d):
            raise ValueError(f"covariances must have shape {(k, d, d)}, got {cov.shape}.")
        try:
            tril = np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:
            raise ValueError("covariances must be symmetric positive definite.") from None
        components = tfd.MultivariateNormalTriL(loc=means, scale_tril=tril.astype(np.float32))
    else:
        stds = np.broadcast_to(np.asarray(scale if scales is None else scales, np.float32).T, (d, k)).T
        _check_positive(np.min(stds), "scales")
        components = tfd.MultivariateNormalDiag(loc=means, scale_diag=np.ascontiguousarray(stds))
    return tfd.MixtureSameFamily(mixing, components)


def uniform(dim, low=-1.0, high=1.0):
    """Uniform box prod_j U(low_j, high_j); `low`/`high` are scalars or length-`dim` vectors.

    >>> uniform(2).event_shape
    TensorShape([2])
    """
    _check_positive_int(dim, "dim")
    low = np.broadcast_to(np.asarray(low, np.float32), (dim,)).copy()
    high = np.broadcast_to(np.asarray(high, np.float32), (dim,)).copy()
    if np.any(high <= low):
        raise ValueError(f"uniform prior needs high > low in every dimension, got {low}, {high}.")
    return tfd.Independent(tfd.Uniform(low=low, high=high), reinterpreted_batch_ndims=1)


class SwissRoll(tfb.Bijector):
    """Maps (t, n) with t ~ U(0, 1), n ~ N(0, noise^2) onto a 2-D swiss roll (sample-only)."""

    def __init__(self, turns=1.5, radius=4.0, noise=0.1):
        parameters = dict(locals())
        self.turns, self.radius, self.noise = float(turns), float(radius), float(noise)
        super().__init__(
            forward_min_event_ndims=1, is_constant_jacobian=False, parameters=parameters,
            name="swiss_roll",
        )

    def _forward(self, x):
        t, n = x[..., 0], x[..., 1]
        angle = 2.0 * np.pi * self.turns * tf.sqrt(t)
        r = self.radius * tf.sqrt(t) + n
        return tf.stack([r * tf.cos(angle), r * tf.sin(angle)], axis=-1)


def swiss_roll(turns=1.5, radius=4.0, noise=0.1):
    """2-D swiss roll (the paper's Fig. 2): samples only, no density and no closed-form MMD.

    >>> swiss_roll().sample(3).shape
    TensorShape([3, 2])
    """
    _check_positive(turns, "turns")
    _check_positive(radius, "radius")
    _check_positive(noise, "noise")
    base = tfd.Blockwise(
        [
            tfd.Independent(tfd.Uniform(low=[0.0], high=[1.0]), 1),
            tfd.Independent(tfd.Normal(loc=[0.0], scale=[noise]), 1),
        ]
    )
    return tfd.TransformedDistribution(base, SwissRoll(turns, radius, noise))


def categorical(num_classes, probs=None):
    """One-hot categorical over `num_classes` classes (uniform unless `probs` is given).

    >>> categorical(10).event_shape
    TensorShape([10])
    """
    _check_positive_int(num_classes, "num_classes")
    probs = np.full(num_classes, 1.0 / num_classes) if probs is None else np.asarray(probs)
    if probs.shape != (num_classes,) or not np.isclose(probs.sum(), 1.0) or np.any(probs < 0):
        raise ValueError(f"probs must be {num_classes} non-negative numbers summing to 1.")
    return tfd.OneHotCategorical(probs=probs.astype(np.float32), dtype=tf.float32)


def event_size(prior):
    """The latent size d of a prior with event shape [d] (clear error otherwise).

    >>> event_size(gaussian(3))
    3
    """
    if not isinstance(prior, tfd.Distribution):
        raise TypeError(
            f"A prior must be a tfp.distributions.Distribution, got {type(prior).__name__}; "
            "build one with aae_keras.priors (gaussian, gaussian_mixture, uniform, ...)."
        )
    shape = prior.event_shape
    if shape.rank != 1 or shape[0] is None or prior.batch_shape.rank != 0:
        raise ValueError(
            f"A prior must have event shape [d] and no batch shape; got event shape {shape} and "
            f"batch shape {prior.batch_shape}. Wrap per-dimension distributions in "
            "tfd.Independent(..., reinterpreted_batch_ndims=1)."
        )
    return int(shape[0])


def describe(prior):
    """Read a prior's parameters into a dict of numpy arrays (float64).

    Kinds: "mixture" (weights [K], means [K, d], and either `variances` [K, d] for diagonal
    components or `covariances` [K, d, d]; a plain Gaussian is K = 1), "uniform" (low, high),
    "categorical" (probs), "swiss_roll" (turns, radius, noise) and "sample_only" for any other
    distribution (then only `dim` is known).

    >>> describe(gaussian(2))["means"].tolist()
    [[0.0, 0.0]]
    """
    dim = event_size(prior)
    if isinstance(prior, tfd.MixtureSameFamily):
        weights = _np(prior.mixture_distribution.probs_parameter())
        info = _gaussian_parameters(prior.components_distribution)
        if info is not None:
            return {"kind": "mixture", "dim": dim, "weights": weights, **info}
    info = _gaussian_parameters(prior)
    if info is not None:
        info = {key: value[None] for key, value in info.items()}
        return {"kind": "mixture", "dim": dim, "weights": np.ones(1), **info}
    if isinstance(prior, tfd.Independent) and isinstance(prior.distribution, tfd.Uniform):
        low, high = (np.broadcast_to(_np(v), (dim,)) for v in (prior.distribution.low, prior.distribution.high))
        return {"kind": "uniform", "dim": dim, "low": low, "high": high}
    if isinstance(prior, tfd.OneHotCategorical):
        return {"kind": "categorical", "dim": dim, "probs": _np(prior.probs_parameter())}
    if isinstance(getattr(prior, "bijector", None), SwissRoll):
        b = prior.bijector
        return {"kind": "swiss_roll", "dim": dim, "turns": b.turns, "radius": b.radius, "noise": b.noise}
    return {"kind": "sample_only", "dim": dim}


def component(info, k):
    """The description of component k of a described Gaussian mixture, as a one-component one.

    >>> component(describe(gaussian_mixture(10, 2)), 0)["means"].round(3).tolist()
    [[4.0, 0.0]]
    """
    if info["kind"] != "mixture" or not 0 <= k < len(info["weights"]):
        raise ValueError(f"No component {k} in a prior of kind {info['kind']!r}.")
    spread = "covariances" if "covariances" in info else "variances"
    return {"kind": "mixture", "dim": info["dim"], "weights": np.ones(1),
            "means": np.asarray(info["means"])[k : k + 1], spread: np.asarray(info[spread])[k : k + 1]}


def from_description(info):
    """Rebuild a prior from `describe(prior)` output (lists are accepted for arrays).

    >>> from_description(describe(uniform(2))).event_shape
    TensorShape([2])
    """
    kind = info["kind"]
    if kind == "mixture":
        if "covariances" in info:
            return gaussian_mixture(
                means=info["means"], covariances=info["covariances"], weights=info["weights"]
            )
        if len(info["weights"]) == 1:
            return tfd.MultivariateNormalDiag(
                loc=np.asarray(info["means"][0], np.float32),
                scale_diag=np.sqrt(np.asarray(info["variances"][0])).astype(np.float32),
            )
        return gaussian_mixture(
            means=info["means"], scales=np.sqrt(np.asarray(info["variances"])), weights=info["weights"]
        )
    if kind == "uniform":
        return uniform(len(info["low"]), info["low"], info["high"])
    if kind == "categorical":
        return categorical(len(info["probs"]), np.asarray(info["probs"], np.float64))
    if kind == "swiss_roll":
        return swiss_roll(info["turns"], info["radius"], info["noise"])
    raise ValueError(
        f"Cannot rebuild a prior of kind {kind!r}: only priors made by aae_keras.priors or "
        "Gaussian, Gaussian-mixture, uniform and one-hot categorical TFP distributions can be "
        "saved. Pass the prior again when you load (custom_objects) or use one of those."
    )


def to_config(prior):
    """A JSON-able description of a prior, for saving models (`from_config` inverts it).

    >>> from_config(to_config(gaussian(2))).event_shape
    TensorShape([2])
    """
    info = describe(prior)
    if info["kind"] == "sample_only":
        raise ValueError(
            f"Cannot save a model whose prior is a {type(prior).__name__}: only priors made by "
            "aae_keras.priors or Gaussian, Gaussian-mixture, uniform and one-hot categorical TFP "
            "distributions are serializable."
        )
    return {key: value.tolist() if isinstance(value, np.ndarray) else value for key, value in info.items()}


def from_config(config):
    """Rebuild a prior saved with `to_config`.

    >>> from_config({"kind": "categorical", "dim": 3, "probs": [0.5, 0.25, 0.25]}).event_shape
    TensorShape([3])
    """
    return from_description(config)


def _gaussian_parameters(dist):
    """means/variances (diagonal) or means/covariances (full) of a Gaussian, else None."""
    if isinstance(dist, tfd.MultivariateNormalDiag) or (
        isinstance(dist, tfd.Independent) and isinstance(dist.distribution, tfd.Normal)
    ):
        return {"means": _np(dist.mean()), "variances": _np(dist.variance())}
    if isinstance(dist, (tfd.MultivariateNormalTriL, tfd.MultivariateNormalFullCovariance)):
        return {"means": _np(dist.mean()), "covariances": _np(dist.covariance())}
    return None


def _np(tensor):
    return np.asarray(tf.convert_to_tensor(tensor), np.float64)


def _check_positive_int(value, name):
    if not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")


def _check_positive(value, name):
    if not np.all(np.asarray(value) > 0):
        raise ValueError(f"{name} must be positive, got {value!r}.")
