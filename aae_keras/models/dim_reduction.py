"""DimReductionAutoencoder (paper section 7): clusters and style in one low-dimensional map.

The encoder outputs K cluster logits (softmax y) and a style z of d dims (d = 2 for a plot);
the representation is y W + z, where the rows of W are learned cluster heads, and the decoder
reconstructs from it. y is matched to a categorical prior, z to the style prior, and the
paper's penalty sum_{i<j} max(0, eta - ||W_i - W_j||) keeps the heads at least eta apart.
With `semi_supervised=True` the labeled examples (label >= 0) also train q(y | x).

Example:
    >>> from aae_keras import data, models, priors
    >>> x, y = data.load("digits", split="train")
    >>> model = models.DimReductionAutoencoder.create(x.shape[1:], priors.gaussian(2), 10, hidden=(64,))
    >>> model.compile()
    >>> history = model.fit(x, epochs=1, batch_size=100, verbose=0)
    >>> model.encode(x[:3]).shape    # the 2-D map
    (3, 2)
"""

import keras
import numpy as np
from keras import ops

from aae_keras.models.matched import MatchedAutoencoder
from aae_keras.models.semi_supervised import CategoricalEncoding, ClusterReporting

__all__ = ["DimReductionAutoencoder"]


@keras.saving.register_keras_serializable(package="aae_keras")
class DimReductionAutoencoder(ClusterReporting, CategoricalEncoding, MatchedAutoencoder):
    """`encode(x)` is the map y W + z; `cluster(x)` the cluster; `heads` the K x d matrix W.

    The latent figure shows the map.

    head_distance: eta, the smallest distance between two heads that costs nothing.
    """

    count_name = "num_clusters"
    penalties = ("head_penalty",)

    def __init__(self, encoder, decoder, prior, num_clusters=20, head_distance=6.0, semi_supervised=False, **kwargs):
        self.classifies = bool(semi_supervised)
        super().__init__(encoder, decoder, prior, num_classes=num_clusters, **kwargs)
        if not head_distance > 0:
            raise ValueError(f"head_distance must be positive, got {head_distance!r}.")
        self.head_distance = float(head_distance)
        self.heads = self.add_weight(
            shape=(self.num_classes, self.latent_dim),
            initializer=keras.initializers.RandomNormal(stddev=self.head_distance, seed=self.seed),
            name="heads",
        )

    @property
    def labels(self):
        return "optional" if self.classifies else "none"

    @classmethod
    def _sizes(cls, num_classes, dim, code_outputs):
        return num_classes + code_outputs, dim

    def _parts(self, x, training=False, seed=None):
        parts = super()._parts(x, training, seed)
        parts["representation"] = ops.matmul(parts["y"], self.heads) + parts["z"]
        return parts

    def _decoder_input(self, parts, labels):
        return parts["representation"]

    def _penalties(self, parts):
        gaps = ops.norm(self.heads[:, None, :] - self.heads[None, :, :] + 1e-12, axis=-1)
        upper = ops.triu(ops.ones_like(gaps), k=1)  # each pair i < j once
        return {"head_penalty": ops.sum(upper * ops.relu(self.head_distance - gaps))}

    def _extra_variables(self):
        return [self.heads]

    def encode(self, x, batch_size=256):
        """The d-dimensional map y W + z of images x (numpy)."""
        return self.class_probabilities(x, batch_size) @ np.asarray(self.heads) + self._styles(x, batch_size)

    @property
    def codes_match_prior(self):
        """False: `encode(x)` is the map y W + z, not the style matched to the prior."""
        return False

    def check_latents(self, n=4, seed=0):
        """Prior samples plus cluster head i mod K for sample i: the decoder reads y W + z."""
        z, labels = super().check_latents(n, seed)
        heads = np.asarray(self.heads)
        return z + heads[np.arange(n) % len(heads)], labels

    def decoder_metadata(self):
        """{"cluster_heads"}: the K x d matrix W; the decoder reads y W + z (a head plus a prior sample)."""
        return {"cluster_heads": np.asarray(self.heads, np.float64).tolist()}

    def get_config(self):
        return {**super().get_config(), "head_distance": self.head_distance, "semi_supervised": self.classifies}
