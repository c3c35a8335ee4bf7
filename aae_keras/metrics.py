"""Evaluation metrics: codes against a prior, clustering, and Parzen-window log-likelihood.

- `mmd_to_prior`, `near_mode_fraction`: MMD^2 of codes to the prior and the share of codes on a mode.
- `cluster_accuracy`, `nmi`, `classification_error`: unsupervised clustering and semi-supervised
  classification, as in the Adversarial Autoencoders paper (Makhzani et al. 2015).
- `parzen_log_likelihood`, `parzen_bandwidth`, `parzen_evaluate`: the paper's Gaussian Parzen-window
  test log-likelihood of generated samples (pure numpy/scipy, float64, bounded memory).

Example:
    >>> import numpy as np
    >>> from aae_keras import metrics, priors
    >>> ring = priors.gaussian_mixture(10, 2)
    >>> metrics.near_mode_fraction(np.zeros((5, 2)), ring)   # the centre is 4 from every mode
    0.0
"""

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.special import logsumexp

from aae_keras import priors, regularizers

__all__ = [
    "classification_error",
    "cluster_accuracy",
    "mmd_to_prior",
    "near_mode_fraction",
    "nmi",
    "parzen_bandwidth",
    "parzen_evaluate",
    "parzen_log_likelihood",
]

DEFAULT_SIGMAS = np.logspace(-1, 0, 10)


def mmd_to_prior(codes, prior, max_codes=2000, seed=0):
    """(MMD^2 of codes to prior, method): closed form when the prior has one, else sampled.

    At most `max_codes` codes (a fixed random subset) are used: the cost is quadratic.

    >>> value, method = mmd_to_prior(np.zeros((10, 2), "float32"), priors.gaussian(2))
    >>> method
    'closed_form'
    """
    codes = np.asarray(codes, np.float32)
    if priors.describe(prior)["kind"] in ("mixture", "uniform", "categorical"):
        method, regularizer = "closed_form", regularizers.ClosedFormMMD(prior)
    else:
        method, regularizer = "sample", regularizers.SampleMMD(prior, seed=seed)
    subset = codes[np.random.default_rng(seed).permutation(len(codes))[:max_codes]]
    return float(regularizer(subset)), method


def near_mode_fraction(codes, prior, radius=1.5):
    """Fraction of codes within `radius` of their nearest mixture mean (Gaussian mixtures).

    >>> round(near_mode_fraction(priors.describe(priors.gaussian_mixture(10, 2))["means"], priors.gaussian_mixture(10, 2)), 1)
    1.0
    """
    info = priors.describe(prior)
    if info["kind"] != "mixture":
        raise ValueError(f"near_mode_fraction needs a Gaussian-mixture prior, got kind {info['kind']!r}.")
    codes = np.asarray(codes, np.float64)
    distances = np.linalg.norm(codes[:, None, :] - info["means"][None], axis=-1).min(axis=1)
    return float(np.mean(distances < radius))


def _labels(name, values):
    """`values` as a non-empty 1-D array of integer-like labels (ints, bools or whole floats)."""
    values = np.asarray(values)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(
            f"{name} must be a non-empty 1-D array of labels, got shape {values.shape}; "
            "flatten it or pass one label per example."
        )
    integer = values.dtype.kind in "iub" or (
        values.dtype.kind == "f" and np.all(np.isfinite(values)) and np.all(values == np.round(values))
    )
    if not integer:
        raise ValueError(
            f"{name} must hold integer labels, got dtype {values.dtype} with non-integer "
            "values; map class names or cluster ids to integers first."
        )
    return values


def _label_pair(labels, other, other_name):
    labels, other = _labels("labels", labels), _labels(other_name, other)
    if len(labels) != len(other):
        raise ValueError(
            f"labels and {other_name} must have one entry per example, got lengths {len(labels)} and {len(other)}."
        )
    return labels, other


def _contingency(labels, assignments):
    """Counts [clusters, classes]: how many examples of each class every cluster holds."""
    classes, class_index = np.unique(labels, return_inverse=True)
    clusters, cluster_index = np.unique(assignments, return_inverse=True)
    counts = np.bincount(cluster_index * len(classes) + class_index, minlength=len(clusters) * len(classes))
    return counts.reshape(len(clusters), len(classes)).astype(np.float64)


def cluster_accuracy(labels, assignments, mapping=None):
    """Clustering accuracy: the share of examples whose cluster maps to their class.

    `mapping="hungarian"` matches clusters to classes one-to-one (linear_sum_assignment on the
    contingency table); `"majority"` gives every cluster the class of most of its members
    (many-to-one, the paper's protocol for 16 or 30 clusters on 10 classes). The default picks
    "hungarian" when there are no more clusters than classes, else "majority".

    >>> cluster_accuracy([0, 0, 1, 1, 2], [2, 2, 0, 0, 1])   # the same partition, renamed
    1.0
    >>> cluster_accuracy([0, 0, 0, 1], [0, 1, 2, 3])         # 4 clusters, 2 classes: majority
    1.0
    """
    labels, assignments = _label_pair(labels, assignments, "assignments")
    table = _contingency(labels, assignments)
    mapping = mapping or ("hungarian" if table.shape[0] <= table.shape[1] else "majority")
    if mapping == "hungarian":
        correct = table[linear_sum_assignment(table, maximize=True)].sum()
    elif mapping == "majority":
        correct = table.max(axis=1).sum()
    else:
        raise ValueError(f"mapping must be 'hungarian', 'majority' or None (automatic), got {mapping!r}.")
    return float(correct / len(labels))


def classification_error(labels, predictions):
    """Fraction of examples whose predicted label differs from the true one.

    >>> classification_error([0, 1, 2, 3], [0, 1, 2, 0])
    0.25
    """
    labels, predictions = _label_pair(labels, predictions, "predictions")
    return float(np.mean(labels != predictions))


def _entropy(counts):
    p = counts[counts > 0] / counts.sum()
    return float(-np.sum(p * np.log(p)))


def nmi(labels, assignments):
    """Normalized mutual information, I(labels; assignments) / mean(H(labels), H(assignments)).

    The arithmetic-mean normalisation of sklearn's `normalized_mutual_info_score`, including its
    convention that two single-cluster labellings score 1.

    >>> nmi([0, 0, 1, 1], [1, 1, 0, 0])
    1.0
    >>> nmi([0, 0, 1, 1], [0, 1, 0, 1])
    0.0
    """
    table = _contingency(*_label_pair(labels, assignments, "assignments"))
    if table.shape == (1, 1):
        return 1.0
    joint = table / table.sum()
    outer = joint.sum(axis=1, keepdims=True) * joint.sum(axis=0, keepdims=True)
    nonzero = joint > 0
    mutual = max(float(np.sum(joint[nonzero] * np.log(joint[nonzero] / outer[nonzero]))), 0.0)
    if mutual == 0.0:
        return 0.0
    return mutual / max((_entropy(table.sum(axis=0)) + _entropy(table.sum(axis=1))) / 2, np.finfo(float).eps)


def _points(name, values):
    """`values` as a finite float64 [n, features] array, n >= 1 (images are flattened)."""
    values = np.asarray(values, np.float64)
    if values.ndim < 2 or len(values) == 0 or values[0].size == 0:
        raise ValueError(
            f"{name} must be a non-empty batch [n, features...] (images are flattened), got "
            f"shape {values.shape}; for 1-D data pass x[:, None]."
        )
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} contains NaN or infinite values; drop or fix those examples first.")
    return values.reshape(len(values), -1)


def _sigmas(sigmas):
    sigmas = np.atleast_1d(np.asarray(sigmas, np.float64))
    if sigmas.ndim != 1 or sigmas.size == 0 or not np.all(np.isfinite(sigmas) & (sigmas > 0)):
        raise ValueError(
            f"Parzen bandwidths must be finite and > 0 (a scalar or non-empty 1-D grid), got "
            f"{sigmas}; try e.g. numpy.logspace(-1, 0, 10)."
        )
    return sigmas


def _parzen(x, samples, sigmas, batch_size, name="x"):
    """Log-likelihoods [len(sigmas), n] of x under Parzen windows on samples, one bandwidth per row.

    Distances are computed once per (x block, samples block) of at most batch_size^2 entries and
    folded into a running log-sum-exp for every bandwidth.
    """
    x, samples, sigmas = _points(name, x), _points("samples", samples), _sigmas(sigmas)
    if x.shape[1] != samples.shape[1]:
        raise ValueError(
            f"{name} and samples must have the same number of features, got {x.shape[1]} and "
            f"{samples.shape[1]}; flatten both to the same image shape."
        )
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    batch_size = int(batch_size)
    centre = samples.mean(axis=0)  # smaller norms: less cancellation in |x|^2 + |s|^2 - 2 x.s
    x, samples = x - centre, samples - centre
    x_sq, s_sq = np.sum(x**2, axis=1), np.sum(samples**2, axis=1)
    scales = 2 * sigmas**2
    result = np.empty((len(sigmas), len(x)))
    for i in range(0, len(x), batch_size):
        rows = slice(i, i + batch_size)
        running = np.full((len(sigmas), len(x[rows])), -np.inf)
        for j in range(0, len(samples), batch_size):
            cols = slice(j, j + batch_size)
            distances = np.maximum(x_sq[rows, None] + s_sq[None, cols] - 2 * x[rows] @ samples[cols].T, 0)
            running = np.logaddexp(running, [logsumexp(-distances / scale, axis=1) for scale in scales])
        result[:, rows] = running
    d = x.shape[1]
    return result - np.log(len(samples)) - d / 2 * np.log(np.pi * scales)[:, None]


def parzen_log_likelihood(x, samples, sigma, batch_size=1000):
    """Per-example log-likelihood [n] (nats) of x under a Gaussian Parzen window on samples.

    log p(x) = logsumexp_j(-|x - s_j|^2 / (2 sigma^2)) - log m - D/2 log(2 pi sigma^2), for x [n, ...]
    and samples [m, ...] flattened to D features. Float64, in blocks of batch_size x batch_size
    distances, so memory stays bounded for 10K x 10K MNIST-sized sets.

    >>> float(parzen_log_likelihood(np.zeros((1, 2)), np.zeros((3, 2)), sigma=1.0)[0])  # -log(2 pi)
    -1.8378770664093453
    """
    if np.ndim(sigma) != 0:
        raise ValueError(
            f"sigma must be a single bandwidth, got shape {np.shape(sigma)}; use "
            "parzen_bandwidth to choose one from a grid."
        )
    return _parzen(x, samples, [sigma], batch_size)[0]


def parzen_bandwidth(validation, samples, sigmas=None, batch_size=1000):
    """(best sigma, {sigma: mean validation log-likelihood}) over a grid of bandwidths.

    The default grid is numpy.logspace(-1, 0, 10), suited to images in [0, 1]. A best sigma at an
    end of the grid means the grid should be widened.

    >>> rng = np.random.default_rng(0)
    >>> best, scores = parzen_bandwidth(rng.normal(size=(50, 2)), rng.normal(size=(500, 2)), [0.01, 0.3, 10])
    >>> best
    0.3
    """
    sigmas = _sigmas(DEFAULT_SIGMAS if sigmas is None else sigmas)
    means = _parzen(validation, samples, sigmas, batch_size, "validation").mean(axis=1)
    scores = {float(s): float(m) for s, m in zip(sigmas, means)}
    return float(sigmas[np.argmax(means)]), scores


def parzen_evaluate(test, validation, samples, sigmas=None, batch_size=1000):
    """The paper's Parzen-window protocol: {"sigma", "mean", "sem", "validation"}.

    `samples` are generated by the model (the paper uses 10K); the bandwidth is the one of `sigmas`
    that maximises the mean log-likelihood of `validation` (a held-out split, not the test set);
    the reported number is the mean test log-likelihood "mean" +- its standard error "sem"
    (std / sqrt(n), as in Goodfellow et al.'s GAN code). "validation" maps each sigma to its mean
    validation log-likelihood. Images of any shape are flattened.

    >>> rng = np.random.default_rng(0)
    >>> test, validation, samples = (rng.normal(size=(n, 2)) for n in (50, 50, 500))
    >>> result = parzen_evaluate(test, validation, samples)
    >>> sorted(result), round(result["sigma"], 2)
    (['mean', 'sem', 'sigma', 'validation'], 0.46)
    """
    sigma, scores = parzen_bandwidth(validation, samples, sigmas, batch_size)
    ll = _parzen(test, samples, [sigma], batch_size, "test")[0]
    return {"sigma": sigma, "mean": float(ll.mean()), "sem": float(ll.std() / np.sqrt(len(ll))), "validation": scores}
