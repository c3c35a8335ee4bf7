"""MMDAutoencoder: reconstruction + weight x a latent regularizer (closed-form MMD by default).

One loss and one optimizer; the regularizer sees the global batch of codes under
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
import tensorflow as tf
from keras import ops

from aae_keras import distribute, regularizers
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
        super().__init__(encoder, decoder, prior, **kwargs)
        self.regularizer = regularizers.get(regularizer, prior)
        if self.regularizer.dim != self.latent_dim:
            raise ValueError(
                f"The regularizer's prior has event size {self.regularizer.dim} but the model's "
                f"prior has {self.latent_dim}."
            )
        self.weight = float(weight)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.regularizer_tracker = keras.metrics.Mean(name="regularizer")

    @property
    def metrics(self):
        return [self.loss_tracker, self.reconstruction_tracker, self.regularizer_tracker]

    def _loss_terms(self, x, training, step=None):
        z = self._codes(x, training=training, seed=None if step is None else self._seed(step, 1))
        reconstruction = ops.mean(self.reconstruction_loss(x, self.decoder(z, training=training)))
        seed = self._seed(self.optimizer.iterations if step is None else step, 2)
        regularizer = self.regularizer(distribute.gather(z), seed=seed)
        return reconstruction, regularizer

    def train_step(self, data):
        x = self._features(data)
        step = self.optimizer.iterations
        with tf.GradientTape() as tape:
            reconstruction, regularizer = self._loss_terms(x, True, step)
            loss = reconstruction + self.weight * regularizer
            scaled = self._scaled(self.optimizer, loss)
        variables = self.encoder.trainable_variables + self.decoder.trainable_variables
        self.optimizer.apply(tape.gradient(scaled, variables), variables)
        return self._record(loss=loss, reconstruction=reconstruction, regularizer=regularizer)

    def test_step(self, data):
        reconstruction, regularizer = self._loss_terms(self._features(data, training=False), False)
        loss = reconstruction + self.weight * regularizer
        return self._record(loss=loss, reconstruction=reconstruction, regularizer=regularizer)

    def get_config(self):
        return {
            **super().get_config(),
            "regularizer": keras.saving.serialize_keras_object(self.regularizer),
            "weight": self.weight,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["regularizer"] = keras.saving.deserialize_keras_object(config["regularizer"])
        return super().from_config(config)
