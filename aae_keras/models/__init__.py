"""Autoencoder models trained with `model.fit`.

Example:
    >>> from aae_keras import models
    >>> models.MMDAutoencoder.__name__, models.AdversarialAutoencoder.__name__
    ('MMDAutoencoder', 'AdversarialAutoencoder')
"""

from aae_keras.models.adversarial import AdversarialAutoencoder
from aae_keras.models.base import LatentAutoencoder
from aae_keras.models.mmd import MMDAutoencoder

__all__ = ["LatentAutoencoder", "MMDAutoencoder", "AdversarialAutoencoder"]
