"""aae-keras: autoencoders whose latent space is shaped to match a prior.

Example:
    >>> from aae_keras import priors, regularizers
    >>> prior = priors.gaussian_mixture(num_components=10, dim=2)
    >>> reg = regularizers.ClosedFormMMD(prior)
"""

import os as _os

_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
