"""The shared base of the autoencoders: encode / decode / sample, reconstruction, seeds, checks.

Subclasses add the latent regularization in `train_step`. Everything a model needs to be
saved and reloaded (networks, prior, options) goes through `get_config`.

Example:
    >>> from aae_keras import models, networks, priors
    >>> enc, dec, _ = networks.build("mlp", (8, 8), 2, hidden=(64,))
    >>> model = models.MMDAutoencoder(enc, dec, priors.gaussian(2))
    >>> model.sample(4).shape
    (4, 8, 8)
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from aae_keras import data as data_lib
from aae_keras import distribute, priors

__all__ = ["LatentAutoencoder", "RECONSTRUCTIONS"]

RECONSTRUCTIONS = ("bce", "mse")
_NON_FINITE = "aae_keras: non-finite training data"


class LatentAutoencoder(keras.Model):
    """An encoder, a decoder and a prior; `call(x)` reconstructs x.

    reconstruction: "bce" (binary cross-entropy, for images in [0, 1]) or "mse" (squared
    error), summed over each example's features and averaged over the batch.
    posterior: "deterministic" (encoder outputs d codes) or "gaussian" (encoder outputs 2d:
    means, then log-variances; codes are sampled with the reparameterization trick).
    """

    def __init__(
        self, encoder, decoder, prior, reconstruction="bce", posterior="deterministic", seed=0, **kwargs
    ):
        super().__init__(**kwargs)
        if reconstruction not in RECONSTRUCTIONS:
            raise ValueError(f"reconstruction must be one of {RECONSTRUCTIONS}, got {reconstruction!r}.")
        if posterior not in ("deterministic", "gaussian"):
            raise ValueError(f'posterior must be "deterministic" or "gaussian", got {posterior!r}.')
        self.encoder, self.decoder, self.prior = encoder, decoder, prior
        self.latent_dim = priors.event_size(prior)
        self.reconstruction, self.posterior, self.seed = reconstruction, posterior, int(seed)
        self._check_sizes()
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction")
        if encoder.built and decoder.built:
            self.built = True

    # ----------------------------------------------------------------- user-facing numpy API
    def encode(self, x, batch_size=256):
        """Codes for images x (numpy in, numpy out); the posterior mean for a Gaussian one."""
        x = self._check_images(np.asarray(x, np.float32))
        codes = self.encoder.predict(x, batch_size=batch_size, verbose=0)
        return codes[:, : self.latent_dim]

    def decode(self, z, batch_size=256):
        """Images for codes z [n, d] (numpy in, numpy out)."""
        z = np.asarray(z, np.float32)
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"decode expects codes of shape (n, {self.latent_dim}), got {z.shape}.")
        return self.decoder.predict(z, batch_size=batch_size, verbose=0)

    def sample(self, n, seed=None):
        """n images decoded from prior samples."""
        z = self.prior.sample(int(n), seed=seed)
        return self.decode(np.asarray(z, np.float32))

    def call(self, x, training=False):
        return self.decoder(self._codes(x, training=training), training=training)

    # ------------------------------------------------------------------------ training pieces
    def fit(self, x=None, *args, **kwargs):
        if isinstance(x, np.ndarray):
            data_lib.check_finite(self._check_images(x))
        try:
            return super().fit(x, *args, **kwargs)
        except tf.errors.InvalidArgumentError as error:
            if _NON_FINITE in str(error):
                raise ValueError(
                    "The training data contains non-finite values (NaN or inf); clean or drop "
                    "them before training (aae_keras.data.check_finite finds them)."
                ) from None
            raise

    def reconstruction_loss(self, x, x_hat):
        """Per-example reconstruction loss [n]: features summed."""
        x = ops.cast(x, x_hat.dtype)
        if self.reconstruction == "bce":
            x_hat = ops.clip(x_hat, 1e-7, 1.0 - 1e-7)
            per_feature = -(x * ops.log(x_hat) + (1.0 - x) * ops.log(1.0 - x_hat))
        else:
            per_feature = ops.square(x - x_hat)
        return ops.sum(ops.reshape(per_feature, (ops.shape(x)[0], -1)), axis=1)

    def _features(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        x = tf.convert_to_tensor(x, tf.float32)
        tf.debugging.assert_all_finite(x, _NON_FINITE)
        return x

    def _codes(self, x, training=False, seed=None):
        """Codes from the encoder; for a Gaussian posterior, sampled when `seed` is given."""
        out = self.encoder(x, training=training)
        if self.posterior == "deterministic":
            return out
        mean, log_var = out[:, : self.latent_dim], out[:, self.latent_dim :]
        if seed is None:
            return mean
        local = tf.shape(x)[0]
        noise = tf.random.stateless_normal(
            [distribute.global_size(local), self.latent_dim], seed=seed
        )
        return mean + tf.exp(0.5 * log_var) * distribute.replica_slice(noise, local)

    def _seed(self, step, tag):
        """A stateless [2] seed for this step and purpose, the same on every replica."""
        counter = tf.math.floormod(tf.cast(step, tf.int64) * 64 + tag, 2**31 - 1)
        return tf.stack([tf.constant(self.seed % (2**31 - 1), tf.int32), tf.cast(counter, tf.int32)])

    def _prior_slice(self, local_size, seed):
        """This replica's slice of a global batch of prior samples."""
        samples = self.prior.sample(distribute.global_size(local_size), seed=seed)
        return distribute.replica_slice(tf.cast(samples, tf.float32), local_size)

    def _record(self, **values):
        """Update the metric trackers named by the keywords; return the results for Keras.

        Under a multi-worker strategy Keras 3 reduces a step's outputs with
        `strategy.reduce("MEAN", value, axis=0)`, which fails on scalars ("Invalid reduction
        dimension 0 for input with 0 dimensions", tensorflow/tensorflow#72388); shape-[1]
        results reduce to the scalar mean over replicas.
        """
        trackers = {m.name: m for m in self.metrics}
        for name, value in values.items():
            trackers[name].update_state(value)
        results = {m.name: m.result() for m in self.metrics}
        if distribute.multi_worker():
            results = {name: tf.reshape(value, [1]) for name, value in results.items()}
        return results

    def _check_images(self, x):
        """x itself if its example shape is the encoder's input shape, else a clear error."""
        expected = tuple(self.encoder.input_shape[1:]) if self.encoder.built else None
        if expected is not None and tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"This model takes examples of shape {expected}, got an array of shape {x.shape}; "
                "reshape the data or build the networks for its shape."
            )
        return x

    def _check_sizes(self):
        expected = self.latent_dim * (2 if self.posterior == "gaussian" else 1)
        if self.encoder.built:
            got = self.encoder.output_shape[-1]
            if got != expected:
                what = "2 x the prior's event size (means and log-variances)" if self.posterior == "gaussian" else "the prior's event size"
                raise ValueError(
                    f"The encoder outputs {got} values per example but the prior has event size "
                    f"{self.latent_dim}; with a {self.posterior} posterior the encoder must output "
                    f"{expected} ({what})."
                )
        if self.decoder.built:
            got = self.decoder.input_shape[-1]
            if got != self.latent_dim:
                raise ValueError(
                    f"The decoder takes {got} inputs but the prior has event size {self.latent_dim}."
                )

    # ------------------------------------------------------------------------ serialization
    @classmethod
    def from_preset(cls, handle, load_weights=True, sha256=None):
        """The model in a preset: a zoo name, a directory, an archive URL or hf://org/name.

        Raises unless the stored model is this class (or a subclass); see `aae_keras.presets`.

        >>> from aae_keras import models
        >>> model = models.MMDAutoencoder.from_preset("digits_mmd_mog10")
        >>> model.sample(2).shape
        (2, 8, 8)
        """
        from aae_keras import presets

        return presets.load(handle, load_weights=load_weights, expected_class=cls, sha256=sha256)

    def save_to_preset(self, directory, overwrite=False, **metadata):
        """Write this model as a preset directory (config, weights, metadata with hashes);
        keyword arguments (recipe, dataset, seed, metrics, ...) go into metadata.json."""
        from aae_keras import presets

        return presets.save(self, directory, overwrite=overwrite, **metadata)

    def get_config(self):
        return {
            "name": self.name,
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "prior": priors.to_config(self.prior),
            "reconstruction": self.reconstruction,
            "posterior": self.posterior,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("encoder", "decoder", "discriminator"):
            if key in config:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        config["prior"] = priors.from_config(config["prior"])
        return cls(**config)
