"""Priors: latent distributions described by their parameters, usable on any Keras backend.

A `Prior` holds its parameters as numpy arrays (`describe()`), samples with stateless seeds
(`sample(n, seed)`, the same numbers on every replica), evaluates `log_prob` in `keras.ops`,
and round-trips through `get_config` / `from_config`. The kinds: Gaussian mixtures (a plain
Gaussian is one component; diagonal or full covariances), uniform boxes, one-hot
categoricals and the swiss roll. TensorFlow Probability stays the interface on TensorFlow:
`prior.distribution` is the TFP distribution, and `as_prior` (which every model applies to
the prior it is given) turns a TFP Gaussian, mixture, uniform box or one-hot categorical into
a `Prior`; any other TFP distribution is kept as a sample-only prior sampled through TFP.

Example:
    >>> from aae_keras import priors
    >>> ring = priors.gaussian_mixture(num_components=10, dim=2, radius=4.0, scale=0.5)
    >>> ring.kind, ring.dim, tuple(ring.sample(3, seed=0).shape)
    ('mixture', 2, (3, 2))
"""

import math

import numpy as np
from keras import ops

from aae_keras import backend

__all__ = [
    "Prior",
    "as_prior",
    "categorical",
    "class_and_style",
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


class Prior:
    """A prior over R^d given by its parameters (see the module docstring).

    `sample(n, seed=None, components=None)`: n float32 samples [n, d]; `seed` is None (fresh),
    an int, a pair of ints or a [2] integer tensor (stateless: the same seed gives the same
    samples). `components` (mixtures only): one component index per sample, -1 for "draw it
    from the mixture weights".
    """

    kind = None

    def __init__(self, info):
        self._info = info
        self.dim = int(info["dim"])

    def describe(self):
        """The parameters as a dict of numpy arrays (float64) plus "kind" and "dim"."""
        return dict(self._info)

    def get_config(self):
        """A JSON-able description; `from_config` rebuilds the prior."""
        return {key: value.tolist() if isinstance(value, np.ndarray) else value for key, value in self._info.items()}

    @classmethod
    def from_config(cls, config):
        return from_description(config)

    @property
    def distribution(self):
        """This prior as a TensorFlow Probability distribution (TensorFlow backend only)."""
        _need_tensorflow("prior.distribution is a TensorFlow Probability distribution")
        from aae_keras.backend import tensorflow

        return tensorflow.to_distribution(self._info)

    def sample(self, n, seed=None, components=None):
        raise NotImplementedError

    def log_prob(self, z):
        """log p(z) for codes z [n, d] (keras.ops); NotImplementedError for sample-only priors."""
        raise NotImplementedError(f"A {self.kind} prior has no density here.")

    def __repr__(self):
        return f"<aae_keras.priors.{type(self).__name__} kind={self.kind!r} dim={self.dim}>"

    def _seeds(self, seed, count):
        """`count` independent stateless seeds derived from `seed`."""
        seeds = backend.current().split(backend.to_seed(seed), count)
        return [seeds[i] for i in range(count)]


class GaussianMixture(Prior):
    """sum_k w_k N(mu_k, Sigma_k), diagonal (`variances` [K, d]) or full (`covariances` [K, d, d])."""

    kind = "mixture"

    def __init__(self, info):
        super().__init__(info)
        self._log_weights = np.log(np.maximum(info["weights"], 1e-300)).astype(np.float32)
        self._means = np.asarray(info["means"], np.float32)
        if "covariances" in info:
            cov = np.asarray(info["covariances"], np.float64)
            self._cholesky = np.linalg.cholesky(cov).astype(np.float32)
            self._precisions = np.linalg.inv(cov).astype(np.float32)
            self._log_det = np.linalg.slogdet(cov)[1].astype(np.float32)
        else:
            variances = np.asarray(info["variances"], np.float64)
            self._stds = np.sqrt(variances).astype(np.float32)
            self._point_masses = bool(np.any(variances == 0))  # see class_and_style: no density
            with np.errstate(divide="ignore"):
                self._precisions = (1.0 / variances).astype(np.float32)
                self._log_det = np.sum(np.log(variances), axis=1).astype(np.float32)

    def sample(self, n, seed=None, components=None):
        pick, noise = self._seeds(seed, 2)
        random = backend.current()
        chosen = random.categorical(self._log_weights[None], n, pick)
        if components is not None:
            components = ops.cast(ops.convert_to_tensor(components), "int32")
            chosen = ops.where(components >= 0, components, chosen)
        eps = random.normal((n, self.dim), noise)
        means = ops.take(ops.convert_to_tensor(self._means), chosen, axis=0)
        if hasattr(self, "_stds"):
            return means + ops.take(ops.convert_to_tensor(self._stds), chosen, axis=0) * eps
        factors = ops.take(ops.convert_to_tensor(self._cholesky), chosen, axis=0)
        return means + ops.einsum("nij,nj->ni", factors, eps)

    def log_prob(self, z):
        if getattr(self, "_point_masses", False):
            raise NotImplementedError("A mixture with point-mass dimensions (zero variances) has no density.")
        diff = ops.cast(z, "float32")[:, None, :] - ops.convert_to_tensor(self._means)[None]  # [n, K, d]
        if hasattr(self, "_stds"):
            quad = ops.sum(diff**2 * ops.convert_to_tensor(self._precisions)[None], axis=-1)
        else:
            quad = ops.einsum("nki,kij,nkj->nk", diff, ops.convert_to_tensor(self._precisions), diff)
        log_norm = -0.5 * (self.dim * math.log(2 * math.pi) + ops.convert_to_tensor(self._log_det))
        return ops.logsumexp(ops.convert_to_tensor(self._log_weights) + log_norm - 0.5 * quad, axis=-1)


class UniformBox(Prior):
    """prod_j U(low_j, high_j)."""

    kind = "uniform"

    def sample(self, n, seed=None, components=None):
        low, high = (np.asarray(self._info[k], np.float32) for k in ("low", "high"))
        unit = backend.current().uniform((n, self.dim), backend.to_seed(seed))
        return ops.convert_to_tensor(low) + ops.convert_to_tensor(high - low) * unit

    def log_prob(self, z):
        low, high = (np.asarray(self._info[k], np.float32) for k in ("low", "high"))
        z = ops.cast(z, "float32")
        inside = ops.all(ops.logical_and(z >= ops.convert_to_tensor(low), z <= ops.convert_to_tensor(high)), axis=-1)
        return ops.where(inside, -float(np.sum(np.log(high - low))), -np.inf)


class Categorical(Prior):
    """One-hot categorical over `dim` classes with probabilities `probs`."""

    kind = "categorical"

    def sample(self, n, seed=None, components=None):
        logits = np.log(np.maximum(self._info["probs"], 1e-300)).astype(np.float32)[None]
        classes = backend.current().categorical(logits, n, backend.to_seed(seed))
        return ops.one_hot(classes, self.dim)

    def log_prob(self, z):
        log_probs = np.log(np.maximum(self._info["probs"], 1e-300)).astype(np.float32)
        return ops.sum(ops.cast(z, "float32") * ops.convert_to_tensor(log_probs), axis=-1)


class SwissRoll(Prior):
    """The 2-D swiss roll: t ~ U(0, 1), angle 2 pi turns sqrt(t), radius r sqrt(t) + N(0, noise^2)."""

    kind = "swiss_roll"

    def sample(self, n, seed=None, components=None):
        along, across = self._seeds(seed, 2)
        random = backend.current()
        root = ops.sqrt(random.uniform((n,), along))
        angle = 2.0 * math.pi * self._info["turns"] * root
        radius = self._info["radius"] * root + self._info["noise"] * random.normal((n,), across)
        return ops.stack([radius * ops.cos(angle), radius * ops.sin(angle)], axis=-1)


class DistributionPrior(Prior):
    """Any other TFP distribution with event shape [d]: sampled through TFP, not serializable."""

    kind = "sample_only"

    def __init__(self, distribution, dim):
        super().__init__({"kind": "sample_only", "dim": dim})
        self._distribution = distribution

    @property
    def distribution(self):
        return self._distribution

    def sample(self, n, seed=None, components=None):
        from aae_keras.backend import tensorflow

        return tensorflow.sample_distribution(self._distribution, n, backend.to_seed(seed))

    def log_prob(self, z):
        return self._distribution.log_prob(z)

    def get_config(self):
        raise ValueError(
            f"Cannot save a model whose prior is a {type(self._distribution).__name__}: only priors made by "
            "aae_keras.priors or Gaussian, Gaussian-mixture, uniform and one-hot categorical TFP "
            "distributions are serializable."
        )


_KINDS = {cls.kind: cls for cls in (GaussianMixture, UniformBox, Categorical, SwissRoll)}


# ---------------------------------------------------------------------------------- factories
def gaussian(dim, scale=1.0):
    """Isotropic Gaussian N(0, scale^2 I) in `dim` dimensions (a one-component mixture).

    >>> gaussian(8).dim
    8
    """
    _check_positive_int(dim, "dim")
    _check_positive(scale, "scale")
    return from_description(
        {
            "kind": "mixture",
            "dim": dim,
            "weights": np.ones(1),
            "means": np.zeros((1, dim)),
            "variances": np.full((1, dim), float(scale) ** 2),
        }
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

    >>> gaussian_mixture(10, 2).dim
    2
    >>> gaussian_mixture(means=[[0., 0.], [3., 0.]], covariances=[np.eye(2), 2 * np.eye(2)])
    <aae_keras.priors.GaussianMixture kind='mixture' dim=2>
    """
    if means is None:
        _check_positive_int(num_components, "num_components")
        _check_positive_int(dim, "dim")
        _check_positive(radius, "radius")
        means = mixture_means(num_components, dim, radius)
    means = np.asarray(means, np.float64)
    if means.ndim != 2:
        raise ValueError(f"means must have shape [num_components, dim], got {means.shape}.")
    k, d = means.shape
    weights = np.full(k, 1.0 / k) if weights is None else np.asarray(weights, np.float64)
    if weights.shape != (k,) or np.any(weights < 0) or not np.isclose(weights.sum(), 1.0):
        raise ValueError(f"weights must be {k} non-negative numbers summing to 1 (one per mean), got {weights}.")
    info = {"kind": "mixture", "dim": d, "weights": weights, "means": means}
    if covariances is not None:
        cov = np.asarray(covariances, np.float64)
        if cov.shape != (k, d, d):
            raise ValueError(f"covariances must have shape {(k, d, d)}, got {cov.shape}.")
        try:
            np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:
            raise ValueError("covariances must be symmetric positive definite.") from None
        info["covariances"] = cov
    else:
        stds = np.broadcast_to(np.asarray(scale if scales is None else scales, np.float64).T, (d, k)).T
        _check_positive(np.min(stds), "scales")
        info["variances"] = np.ascontiguousarray(stds) ** 2
    return from_description(info)


def class_and_style(num_classes, style):
    """p(y) p(z): a uniform one-hot class y and an independent Gaussian (mixture) style z, over
    the joint codes [y, z] of K + d dims, as a mixture of K x J components (J: the style's)
    whose class dims are point masses (zero variance). It has no density, but the closed-form
    MMD matches joint codes to it, which also pulls every class's styles to the same p(z).

    >>> prior = class_and_style(3, gaussian(2))
    >>> prior.dim, describe(prior)["means"].tolist()[:2]
    (5, [[1.0, 0.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0, 0.0]])
    """
    _check_positive_int(num_classes, "num_classes")
    info = describe(style)
    if info["kind"] != "mixture":
        raise ValueError(f"The style prior must be a Gaussian or a Gaussian mixture, got kind {info['kind']!r}.")
    if "covariances" in info:
        raise ValueError("The style prior must have diagonal components (gaussian_mixture(..., scales=...)).")
    k, (j, d) = int(num_classes), np.shape(info["means"])
    classes = np.repeat(np.eye(k), j, axis=0)  # component (c, m) at row c * j + m
    return from_description(
        {
            "kind": "mixture",
            "dim": k + d,
            "weights": np.tile(np.asarray(info["weights"]), k) / k,
            "means": np.concatenate([classes, np.tile(np.asarray(info["means"]), (k, 1))], axis=1),
            "variances": np.concatenate([np.zeros((k * j, k)), np.tile(np.asarray(info["variances"]), (k, 1))], axis=1),
        }
    )


def uniform(dim, low=-1.0, high=1.0):
    """Uniform box prod_j U(low_j, high_j); `low`/`high` are scalars or length-`dim` vectors.

    >>> uniform(2).describe()["high"].tolist()
    [1.0, 1.0]
    """
    _check_positive_int(dim, "dim")
    low = np.broadcast_to(np.asarray(low, np.float64), (dim,)).copy()
    high = np.broadcast_to(np.asarray(high, np.float64), (dim,)).copy()
    if np.any(high <= low):
        raise ValueError(f"uniform prior needs high > low in every dimension, got {low}, {high}.")
    return from_description({"kind": "uniform", "dim": dim, "low": low, "high": high})


def swiss_roll(turns=1.5, radius=4.0, noise=0.1):
    """2-D swiss roll (the paper's Fig. 2): samples only, no density and no closed-form MMD.

    >>> tuple(swiss_roll().sample(3, seed=0).shape)
    (3, 2)
    """
    _check_positive(turns, "turns")
    _check_positive(radius, "radius")
    _check_positive(noise, "noise")
    return from_description(
        {"kind": "swiss_roll", "dim": 2, "turns": float(turns), "radius": float(radius), "noise": float(noise)}
    )


def categorical(num_classes, probs=None):
    """One-hot categorical over `num_classes` classes (uniform unless `probs` is given).

    >>> categorical(10).dim
    10
    """
    _check_positive_int(num_classes, "num_classes")
    probs = np.full(num_classes, 1.0 / num_classes) if probs is None else np.asarray(probs, np.float64)
    if probs.shape != (num_classes,) or not np.isclose(probs.sum(), 1.0) or np.any(probs < 0):
        raise ValueError(f"probs must be {num_classes} non-negative numbers summing to 1.")
    return from_description({"kind": "categorical", "dim": num_classes, "probs": probs})


# --------------------------------------------------------------------------------- conversion
def as_prior(prior):
    """`prior` as a `Prior`: itself, or a TFP distribution converted (clear error otherwise).

    >>> as_prior(gaussian(2)).kind
    'mixture'
    """
    if isinstance(prior, Prior):
        return prior
    not_a_prior = TypeError(
        f"A prior must be an aae_keras prior or a tfp.distributions.Distribution, got "
        f"{type(prior).__name__}; build one with aae_keras.priors (gaussian, gaussian_mixture, uniform, ...)."
    )
    if not type(prior).__module__.startswith("tensorflow_probability"):
        raise not_a_prior
    from aae_keras.backend import tensorflow

    if not tensorflow.is_distribution(prior):
        raise not_a_prior
    info = tensorflow.describe_distribution(prior)
    if info["kind"] == "sample_only":
        _need_tensorflow(
            f"A {type(prior).__name__} prior (no parameter form here) is sampled through TensorFlow Probability"
        )
        return DistributionPrior(prior, info["dim"])
    return from_description(info)


def _need_tensorflow(what):
    """A clear error unless Keras runs on TensorFlow: `what` needs it."""
    import keras

    name = keras.backend.backend()
    if name != "tensorflow":
        raise RuntimeError(
            f"{what}, which needs the TensorFlow backend; Keras runs on {name!r}. Set KERAS_BACKEND=tensorflow, or "
            "use an aae_keras prior (gaussian, gaussian_mixture, uniform, categorical, swiss_roll), which works on "
            "every backend."
        )


def event_size(prior):
    """The latent size d of a prior (an aae_keras prior or a TFP distribution with event shape [d]).

    >>> event_size(gaussian(3))
    3
    """
    return as_prior(prior).dim


def describe(prior):
    """A prior's parameters as a dict of numpy arrays (float64).

    Kinds: "mixture" (weights [K], means [K, d], and either `variances` [K, d] for diagonal
    components or `covariances` [K, d, d]; a plain Gaussian is K = 1), "uniform" (low, high),
    "categorical" (probs), "swiss_roll" (turns, radius, noise) and "sample_only" for any other
    TFP distribution (then only `dim` is known).

    >>> describe(gaussian(2))["means"].tolist()
    [[0.0, 0.0]]
    """
    return as_prior(prior).describe()


def component(info, k):
    """The description of component k of a described Gaussian mixture, as a one-component one.

    >>> component(describe(gaussian_mixture(10, 2)), 0)["means"].round(3).tolist()
    [[4.0, 0.0]]
    """
    if info["kind"] != "mixture" or not 0 <= k < len(info["weights"]):
        raise ValueError(f"No component {k} in a prior of kind {info['kind']!r}.")
    spread = "covariances" if "covariances" in info else "variances"
    return {
        "kind": "mixture",
        "dim": info["dim"],
        "weights": np.ones(1),
        "means": np.asarray(info["means"])[k : k + 1],
        spread: np.asarray(info[spread])[k : k + 1],
    }


def from_description(info):
    """Rebuild a prior from `describe(prior)` output (lists are accepted for arrays).

    >>> from_description(describe(uniform(2))).kind
    'uniform'
    """
    kind = info.get("kind")
    if kind not in _KINDS:
        raise ValueError(
            f"Cannot rebuild a prior of kind {kind!r}: only priors made by aae_keras.priors or "
            "Gaussian, Gaussian-mixture, uniform and one-hot categorical TFP distributions can be "
            "saved. Pass the prior again when you load (custom_objects) or use one of those."
        )
    arrays = {
        key: np.asarray(value, np.float64) if isinstance(value, (list, tuple, np.ndarray)) else value
        for key, value in info.items()
    }
    return _KINDS[kind](arrays)


def to_config(prior):
    """A JSON-able description of a prior, for saving models (`from_config` inverts it).

    >>> from_config(to_config(gaussian(2))).dim
    2
    """
    return as_prior(prior).get_config()


def from_config(config):
    """Rebuild a prior saved with `to_config`.

    >>> from_config({"kind": "categorical", "dim": 3, "probs": [0.5, 0.25, 0.25]}).dim
    3
    """
    return from_description(config)


def _check_positive_int(value, name):
    if not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")


def _check_positive(value, name):
    if not np.all(np.asarray(value) > 0):
        raise ValueError(f"{name} must be positive, got {value!r}.")
