"""MMDAutoencoder: reconstruction + weight x a latent regularizer (closed-form MMD by default).

One slot, one loss, one optimizer; the regularizer sees the global batch of codes under
`tf.distribute` (codes are all-gathered across replicas).

Example:
    >>> import keras
    >>> from aae_keras import models, networks, priors, data
    >>> x, _ = data.load("digits", split="train")
    >>> enc, dec, _ = networks.build("mlp", x.shape[1:], 2, hidden=(256, 256))
    >>> model = models.MMDAutoencoder(enc, dec, priors.gaussian_mixture(10, 2), weight=100.0)
    >>> model.compile(optimizer=keras.optimizers.Adam(1e-3))
    >>> history = model.fit(x, epochs=1, batch_size=100, verbose=0)
"""

import keras

from aae_keras import regularizers
from aae_keras.models.base import LatentAutoencoder

__all__ = ["MMDAutoencoder"]


@keras.saving.register_keras_serializable(package="aae_keras")
class MMDAutoencoder(LatentAutoencoder):
    """Autoencoder whose codes are pulled to `prior` by `regularizer` (default ClosedFormMMD).

    Logs `loss`, `reconstruction` (per-example mean) and `regularizer` (the MMD^2 estimate
    on the global batch). `regularizer` is a `regularizers.LatentRegularizer` or a name
    ("mmd", "sample_mmd", "imq_mmd").
    """

    def __init__(self, encoder, decoder, prior, regularizer="mmd", weight=10.0, **kwargs):
        super().__init__(encoder, decoder, prior, regularizers.get(regularizer, prior), weight, **kwargs)
