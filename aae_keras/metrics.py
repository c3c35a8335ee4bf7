"""Evaluation of codes against a prior: MMD^2 to the prior and the share of codes on a mode.

Example:
    >>> import numpy as np
    >>> from aae_keras import metrics, priors
    >>> ring = priors.gaussian_mixture(10, 2)
    >>> metrics.near_mode_fraction(np.zeros((5, 2)), ring)   # the centre is 4 from every mode
    0.0
"""

import numpy as np

from aae_keras import priors, regularizers

__all__ = ["mmd_to_prior", "near_mode_fraction"]


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
