"""AdversarialAutoencoder: the paper's three-phase schedule with three optimizers.

Per batch: (1) reconstruction update of encoder + decoder, (2) `discriminator_steps` updates
of the discriminator on prior samples (real) against codes (fake), (3) a generator update of
the encoder to fool the discriminator.

Example:
    >>> import keras
    >>> from aae_keras import models, networks, priors
    >>> enc, dec, disc = networks.build("mlp", (8, 8), 2, hidden=(256, 256))
    >>> aae = models.AdversarialAutoencoder(enc, dec, disc, priors.gaussian_mixture(10, 2))
    >>> aae.compile(optimizer=keras.optimizers.Adam(1e-3))   # "auto" defaults for the other two
"""

import keras
import tensorflow as tf
from keras import ops

from aae_keras import distribute
from aae_keras.models.base import LatentAutoencoder

__all__ = ["AdversarialAutoencoder"]


@keras.saving.register_keras_serializable(package="aae_keras")
class AdversarialAutoencoder(LatentAutoencoder):
    """Autoencoder regularized by a discriminator between codes and prior samples.

    Options: `posterior` ("deterministic" or "gaussian"), `instance_noise` (std of Gaussian
    noise added to both discriminator inputs), `label_smoothing` (real targets 1 - s),
    `discriminator_steps` per generator step. Logs `loss` (the encoder and decoder's objective:
    reconstruction + generator loss), `reconstruction`, `discriminator_loss`,
    `discriminator_accuracy` and `generator_loss` (per-example means).
    """

    def __init__(
        self,
        encoder,
        decoder,
        discriminator,
        prior,
        instance_noise=0.0,
        label_smoothing=0.0,
        discriminator_steps=1,
        **kwargs,
    ):
        super().__init__(encoder, decoder, prior, **kwargs)
        self.discriminator = discriminator
        if discriminator.built and discriminator.input_shape[-1] != self.latent_dim:
            raise ValueError(
                f"The discriminator takes {discriminator.input_shape[-1]} inputs but the prior "
                f"has event size {self.latent_dim}."
            )
        if instance_noise < 0 or not 0 <= label_smoothing < 0.5 or int(discriminator_steps) < 1:
            raise ValueError(
                "Need instance_noise >= 0, 0 <= label_smoothing < 0.5 and discriminator_steps >= 1; "
                f"got {instance_noise}, {label_smoothing}, {discriminator_steps}."
            )
        self.instance_noise = float(instance_noise)
        self.label_smoothing = float(label_smoothing)
        self.discriminator_steps = int(discriminator_steps)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.discriminator_loss_tracker = keras.metrics.Mean(name="discriminator_loss")
        self.discriminator_accuracy_tracker = keras.metrics.Mean(name="discriminator_accuracy")
        self.generator_loss_tracker = keras.metrics.Mean(name="generator_loss")

    @property
    def metrics(self):
        return [
            self.loss_tracker,
            self.reconstruction_tracker,
            self.discriminator_loss_tracker,
            self.discriminator_accuracy_tracker,
            self.generator_loss_tracker,
        ]

    @property
    def ae_optimizer(self):
        """The reconstruction phase's optimizer: `model.optimizer` (an older name, kept)."""
        return self.optimizer

    def _optimizer_groups(self):
        return {**super()._optimizer_groups(), "discriminator_optimizer": self.discriminator.trainable_variables,
                "generator_optimizer": self.encoder.trainable_variables}

    def _discriminate(self, z, seed):
        if self.instance_noise > 0:
            local = tf.shape(z)[0]
            noise = tf.random.stateless_normal([distribute.global_size(local), self.latent_dim], seed=seed)
            z = z + self.instance_noise * distribute.replica_slice(noise, local)
        return ops.cast(self.discriminator(z, training=True), "float32")

    def train_step(self, data):
        x = self._features(data)
        step = self.optimizer.iterations

        with tf.GradientTape() as tape:  # (1) reconstruction
            z = self._codes(x, training=True, seed=self._seed(step, 1))
            reconstruction = tf.reduce_mean(self.reconstruction_loss(x, self.decoder(z, training=True)))
            scaled = self._scaled(self.optimizer, reconstruction)
        variables = self._autoencoder_variables()
        self.optimizer.apply(tape.gradient(scaled, variables), variables)

        local = tf.shape(x)[0]
        for k in range(self.discriminator_steps):  # (2) discriminator
            tag = 8 + 4 * k
            fake = tf.stop_gradient(self._codes(x, training=True, seed=self._seed(step, tag)))
            real = self._prior_slice(local, self._seed(step, tag + 1))
            with tf.GradientTape() as tape:
                real_logits = self._discriminate(real, self._seed(step, tag + 2))
                fake_logits = self._discriminate(fake, self._seed(step, tag + 3))
                d_loss, accuracy = self._discriminator_loss(real_logits, fake_logits, self.label_smoothing)
                scaled = self._scaled(self.discriminator_optimizer, d_loss)
            variables = self.discriminator.trainable_variables
            self.discriminator_optimizer.apply(tape.gradient(scaled, variables), variables)

        with tf.GradientTape() as tape:  # (3) generator
            z = self._codes(x, training=True, seed=self._seed(step, 2))
            g_loss = _bce(1.0, self._discriminate(z, self._seed(step, 3)))
            scaled = self._scaled(self.generator_optimizer, g_loss)
        variables = self.encoder.trainable_variables
        self.generator_optimizer.apply(tape.gradient(scaled, variables), variables)
        return self._record(
            loss=reconstruction + g_loss,
            reconstruction=reconstruction,
            discriminator_loss=d_loss,
            discriminator_accuracy=accuracy,
            generator_loss=g_loss,
        )

    def test_step(self, data):
        x = self._features(data, training=False)
        z = self._codes(x)
        reconstruction = tf.reduce_mean(self.reconstruction_loss(x, self.decoder(z)))
        real = self._prior_slice(tf.shape(x)[0], self._seed(self.optimizer.iterations, 5))
        fake_logits = self.discriminator(z)
        d_loss, accuracy = self._discriminator_loss(self.discriminator(real), fake_logits)
        g_loss = _bce(1.0, fake_logits)
        return self._record(
            loss=reconstruction + g_loss,
            reconstruction=reconstruction,
            discriminator_loss=d_loss,
            discriminator_accuracy=accuracy,
            generator_loss=g_loss,
        )

    @staticmethod
    def _discriminator_loss(real_logits, fake_logits, label_smoothing=0.0):
        """Mean cross-entropy (prior samples real, codes fake) and accuracy of the discriminator."""
        real_logits, fake_logits = ops.cast(real_logits, "float32"), ops.cast(fake_logits, "float32")
        loss = _bce(1.0 - label_smoothing, real_logits) + _bce(0.0, fake_logits)
        accuracy = 0.5 * tf.reduce_mean(
            tf.cast(real_logits > 0, tf.float32) + tf.cast(fake_logits < 0, tf.float32)
        )
        return loss, accuracy

    def get_config(self):
        return {
            **super().get_config(),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            "instance_noise": self.instance_noise,
            "label_smoothing": self.label_smoothing,
            "discriminator_steps": self.discriminator_steps,
        }


def _bce(target, logits):
    """Mean binary cross-entropy of logits against a constant target (in float32)."""
    logits = ops.cast(logits, "float32")
    return tf.reduce_mean(
        tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.fill(tf.shape(logits), target), logits=logits)
    )
