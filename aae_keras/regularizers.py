"""Latent regularizers: losses that pull the codes' distribution q(z) towards a prior p(z).

`ClosedFormMMD` (the default) computes the unbiased MMD^2 between a batch of codes and the
prior with every expectation over p in closed form: nothing is sampled from the prior.
`SampleMMD` is the WAE-MMD estimator against prior samples and works for any prior.

Example:
    >>> import numpy as np
    >>> from aae_keras import priors, regularizers
    >>> reg = regularizers.ClosedFormMMD(priors.gaussian_mixture(10, 2))
    >>> float(reg(np.zeros((100, 2), "float32"))) > 0   # codes collapsed at the origin
    True
"""

import keras
import numpy as np
from keras import ops

from aae_keras import kernels, priors

__all__ = ["ClosedFormMMD", "ConditionalMMD", "LatentRegularizer", "SampleMMD", "get"]


class LatentRegularizer:
    """Base class: `reg(z)` returns a scalar distance between the codes z [n, d] and the prior.

    Subclasses implement `__call__(z, seed=None)` and `get_config()`; `seed` (a [2] int
    tensor) is passed by the models so prior sampling is reproducible under tf.distribute.
    """

    def __init__(self, prior):
        self.prior = priors.as_prior(prior)
        self.dim = self.prior.dim

    def __call__(self, z, seed=None):
        raise NotImplementedError

    def get_config(self):
        return {"prior": priors.to_config(self.prior)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["prior"] = priors.from_config(config["prior"])
        return cls(**config)

    @staticmethod
    def _defined(n, estimate):
        """The estimate where the batch holds at least 2 codes, else 0: the within-batch
        U-statistic needs a pair, so a batch of 0 or 1 codes contributes no MMD term."""
        return ops.where(n >= 2.0, estimate, ops.zeros_like(estimate))

    def _check_codes(self, z):
        if z.shape[-1] is not None and z.shape[-1] != self.dim:
            raise ValueError(f"Codes have {z.shape[-1]} dimensions but the prior has event size {self.dim}.")


@keras.saving.register_keras_serializable(package="aae_keras")
class ClosedFormMMD(LatentRegularizer):
    """Unbiased MMD^2 between codes and a prior, with E over the prior in closed form.

    MMD^2 = 1/(n(n-1)) sum_{i!=j} k(z_i, z_j) - 2/n sum_i m_p(z_i) + E_pp, for an RBF
    ladder k (see `kernels`). Works for Gaussians, diagonal and full-covariance Gaussian
    mixtures, uniform boxes and one-hot categoricals; the estimate can be negative.

    >>> reg = ClosedFormMMD(priors.gaussian(8))
    >>> reg.get_config()["bandwidths"][:2]   # the "auto" ladder, s^2 = d 2^j
    [1.0, 1.4142135623730951]
    """

    def __init__(self, prior, bandwidths="auto", weights=None):
        super().__init__(prior)
        info = priors.describe(prior)
        if info["kind"] not in ("mixture", "uniform", "categorical"):
            raise ValueError(
                f"ClosedFormMMD has no closed form for this prior ({type(prior).__name__}, kind "
                f"{info['kind']!r}); it supports Gaussians, Gaussian mixtures, uniform boxes and "
                "one-hot categoricals. Use regularizers.SampleMMD(prior) for any other prior."
            )
        if isinstance(bandwidths, str):
            if bandwidths != "auto":
                raise ValueError(f'bandwidths must be "auto" or a list of numbers, got {bandwidths!r}.')
            bandwidths = kernels.auto_bandwidths(info)
        self.bandwidths, self.weights = kernels.check_ladder(bandwidths, weights)
        self.kernel_mean = kernels.PriorKernelMean(info, self.bandwidths, self.weights)
        self._diagonal = float(sum(self.weights))

    def __call__(self, z, seed=None):
        self._check_codes(z)
        z = ops.cast(z, "float32")
        n = ops.cast(ops.shape(z)[0], "float32")
        gram = kernels.rbf_ladder(kernels.pairwise_sq_distances(z), self.bandwidths, self.weights)
        pairs = ops.maximum(n * (n - 1.0), 1.0)  # no pair below 2 codes: see _defined
        within = (ops.sum(gram) - n * self._diagonal) / pairs  # k(z, z) = sum_j w_j
        cross = ops.sum(self.kernel_mean(z)) / ops.maximum(n, 1.0)
        return self._defined(n, within - 2.0 * cross + self.kernel_mean.self_mean)

    def get_config(self):
        return {**super().get_config(), "bandwidths": self.bandwidths, "weights": self.weights}


@keras.saving.register_keras_serializable(package="aae_keras")
class ConditionalMMD(LatentRegularizer):
    """Label-conditioned closed-form MMD^2 for a Gaussian-mixture prior with K components.

    `reg(z, labels)`: codes labeled c are matched to component c, unlabeled codes (label -1)
    to the whole mixture; the per-group unbiased MMD^2 estimates are averaged with the
    groups' shares of the batch (groups with fewer than 2 codes are skipped). All groups use
    the mixture's kernel ladder, so the Gram matrix is computed once.

    >>> import numpy as np
    >>> reg = ConditionalMMD(priors.gaussian_mixture(3, 2))
    >>> means = priors.describe(reg.prior)["means"].astype("float32")
    >>> z = np.repeat(means, 50, axis=0)   # 50 codes on each component's mean
    >>> right, wrong = reg(z, np.repeat([0, 1, 2], 50)), reg(z, np.repeat([2, 0, 1], 50))
    >>> float(right) < 0.2 < 1.0 < float(wrong)
    True
    """

    def __init__(self, prior, bandwidths="auto", weights=None):
        super().__init__(prior)
        info = priors.describe(prior)
        if info["kind"] != "mixture" or len(info["weights"]) < 2:
            raise ValueError(
                "ConditionalMMD needs a Gaussian-mixture prior with one component per class "
                f"(e.g. priors.gaussian_mixture(10, 2)); got kind {info['kind']!r} with "
                f"{len(info.get('weights', []))} component(s)."
            )
        self.num_classes = len(info["weights"])
        if isinstance(bandwidths, str):
            if bandwidths != "auto":
                raise ValueError(f'bandwidths must be "auto" or a list of numbers, got {bandwidths!r}.')
            bandwidths = kernels.auto_bandwidths(info)
        self.bandwidths, self.weights = kernels.check_ladder(bandwidths, weights)
        groups = [priors.component(info, k) for k in range(self.num_classes)] + [info]
        self.kernel_means = [kernels.PriorKernelMean(g, self.bandwidths, self.weights) for g in groups]
        self._self_means = np.asarray([km.self_mean for km in self.kernel_means], np.float32)
        self._diagonal = float(sum(self.weights))

    def __call__(self, z, labels, seed=None):
        self._check_codes(z)
        z = ops.cast(z, "float32")
        labels = ops.cast(labels, "int32")
        groups = ops.one_hot(ops.where(labels < 0, self.num_classes, labels), self.num_classes + 1)
        counts = ops.sum(groups, axis=0)
        gram = kernels.rbf_ladder(kernels.pairwise_sq_distances(z), self.bandwidths, self.weights)
        pairs = ops.sum(groups * ops.matmul(gram, groups), axis=0) - counts * self._diagonal
        within = pairs / ops.maximum(counts * (counts - 1.0), 1.0)
        means = ops.stack([km(z) for km in self.kernel_means], axis=1)
        cross = ops.sum(groups * means, axis=0) / ops.maximum(counts, 1.0)
        used = ops.where(counts >= 2.0, counts, 0.0)
        per_group = within - 2.0 * cross + ops.convert_to_tensor(self._self_means)
        return ops.sum(used * per_group) / ops.maximum(ops.sum(used), 1.0)

    def get_config(self):
        return {**super().get_config(), "bandwidths": self.bandwidths, "weights": self.weights}


@keras.saving.register_keras_serializable(package="aae_keras")
class SampleMMD(LatentRegularizer):
    """WAE-MMD: unbiased MMD^2 between codes and as many prior samples, for any prior.

    kernel="rbf" uses an RBF ladder (bandwidths="auto" as for ClosedFormMMD when the prior
    has parameters, else from sample spread); kernel="imq" sums C/(C + r^2) over
    C = scale * {0.1, 0.2, 0.5, 1, 2, 5, 10} with scale = 2 d E[var] (the WAE choice).

    >>> reg = SampleMMD(priors.swiss_roll(), kernel="imq")
    """

    def __init__(self, prior, kernel="rbf", bandwidths="auto", weights=None, seed=0):
        super().__init__(prior)
        if kernel not in ("rbf", "imq"):
            raise ValueError(f'kernel must be "rbf" or "imq", got {kernel!r}.')
        self.kernel, self.seed = kernel, int(seed)
        self._seed_generator = keras.random.SeedGenerator(self.seed)
        if isinstance(bandwidths, str):
            if bandwidths != "auto":
                raise ValueError(f'bandwidths must be "auto" or a list of numbers, got {bandwidths!r}.')
            bandwidths = self._auto_bandwidths()
        self.bandwidths, self.weights = kernels.check_ladder(bandwidths, weights)

    def _auto_bandwidths(self):
        info = priors.describe(self.prior)
        if info["kind"] in ("mixture", "uniform", "categorical") and self.kernel == "rbf":
            return kernels.auto_bandwidths(info)
        samples = np.asarray(self.prior.sample(10000, seed=(self.seed, 1234)), np.float64)
        variance = float(np.mean(np.var(samples, axis=0)))
        if self.kernel == "imq":
            return [2.0 * self.dim * variance * c for c in (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)]
        return kernels.auto_bandwidths(
            {
                "kind": "mixture",
                "dim": self.dim,
                "weights": np.ones(1),
                "means": np.zeros((1, self.dim)),
                "variances": np.full((1, self.dim), variance),
            }
        )

    def __call__(self, z, seed=None):
        self._check_codes(z)
        z = ops.cast(z, "float32")
        n = ops.shape(z)[0]
        if seed is None:
            seed = ops.cast(ops.mod(self._seed_generator.next(), 2**31 - 1), "int32")
        y = ops.cast(self.prior.sample(n, seed=seed), "float32")
        both = ops.concatenate([z, y], axis=0)
        k = self._kernel(kernels.pairwise_sq_distances(both))
        nf = ops.cast(n, "float32")
        k_zz, k_yy, k_zy = k[:n, :n], k[n:, n:], k[:n, n:]
        off_diagonal = ops.maximum(nf * (nf - 1.0), 1.0)  # no pair below 2 codes: see _defined
        return self._defined(
            nf,
            (
                (ops.sum(k_zz) - ops.trace(k_zz)) / off_diagonal
                + (ops.sum(k_yy) - ops.trace(k_yy)) / off_diagonal
                - 2.0 * ops.sum(k_zy) / ops.maximum(nf * nf, 1.0)
            ),
        )

    def _kernel(self, d2):
        if self.kernel == "rbf":
            return kernels.rbf_ladder(d2, self.bandwidths, self.weights)
        return sum(w * c / (c + d2) for c, w in zip(self.bandwidths, self.weights))

    def get_config(self):
        return {
            **super().get_config(),
            "kernel": self.kernel,
            "bandwidths": self.bandwidths,
            "weights": self.weights,
            "seed": self.seed,
        }


def get(identifier, prior):
    """A regularizer from a name ("mmd" / "closed_form_mmd", "sample_mmd", "imq_mmd") or object.

    >>> get("mmd", priors.gaussian(2)).__class__.__name__
    'ClosedFormMMD'
    """
    if isinstance(identifier, LatentRegularizer):
        return identifier
    makers = {
        "mmd": lambda: ClosedFormMMD(prior),
        "closed_form_mmd": lambda: ClosedFormMMD(prior),
        "sample_mmd": lambda: SampleMMD(prior),
        "imq_mmd": lambda: SampleMMD(prior, kernel="imq"),
    }
    if identifier not in makers:
        raise ValueError(f"Unknown regularizer {identifier!r}; choose one of {sorted(makers)}.")
    return makers[identifier]()
