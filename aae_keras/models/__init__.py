"""Autoencoder models trained with `model.fit`.

The core models: `MMDAutoencoder` and `AdversarialAutoencoder`. The paper's family, each with
`regularizer="mmd"` (closed form) or `"adversarial"`: `LabelConditionedAutoencoder`,
`SupervisedAutoencoder`, `SemiSupervisedAutoencoder`, `ClusteringAutoencoder` and
`DimReductionAutoencoder` (all built on `MatchedAutoencoder`).

Example:
    >>> from aae_keras import models
    >>> models.MMDAutoencoder.__name__, models.AdversarialAutoencoder.__name__
    ('MMDAutoencoder', 'AdversarialAutoencoder')
"""

from aae_keras.models.adversarial import AdversarialAutoencoder
from aae_keras.models.base import LatentAutoencoder
from aae_keras.models.conditional import LabelConditionedAutoencoder
from aae_keras.models.dim_reduction import DimReductionAutoencoder
from aae_keras.models.matched import MatchedAutoencoder
from aae_keras.models.mmd import MMDAutoencoder
from aae_keras.models.saving import load_model
from aae_keras.models.semi_supervised import (
    ClusteringAutoencoder,
    SemiSupervisedAutoencoder,
)
from aae_keras.models.supervised import SupervisedAutoencoder

__all__ = [
    "AdversarialAutoencoder",
    "ClusteringAutoencoder",
    "DimReductionAutoencoder",
    "LabelConditionedAutoencoder",
    "LatentAutoencoder",
    "MMDAutoencoder",
    "MatchedAutoencoder",
    "SemiSupervisedAutoencoder",
    "SupervisedAutoencoder",
    "load_model",
]
