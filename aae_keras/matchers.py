"""Matchers: the Keras layers that pull a latent slot of a model to its prior during training.

A model holds one matcher per latent slot (`model.matchers`). `MMDMatcher` wraps an MMD
estimate (`aae_keras.regularizers`: closed form, sample RBF / IMQ, or per class) that the
reconstruction phase adds to its loss; `Adversary` holds a discriminator between prior samples
(real) and codes (fake), trained in the discriminator phase and fooled in the generator phase.
Both see the global batch under `tf.distribute`, and draw their random numbers from the
stateless seeds the model passes, so runs are reproducible on any number of replicas.

Example:
    >>> from aae_keras import matchers, networks, priors, regularizers
    >>> mmd = matchers.MMDMatcher(regularizers.ClosedFormMMD(priors.gaussian(2)))
    >>> adversary = matchers.Adversary(priors.gaussian(2), networks.mlp_discriminator(2, (16,)))
    >>> mmd.adversarial, adversary.adversarial
    (False, True)
"""

import keras
from keras import ops

from aae_keras import backend, priors, regularizers

__all__ = ["Adversary", "MMDMatcher"]


@keras.saving.register_keras_serializable(package="aae_keras")
class MMDMatcher(keras.layers.Layer):
    """A slot matched by an MMD estimate added to the reconstruction loss.

    `matcher(codes, labels, seed)` is the estimate over the global batch of codes (labels are
    read by a per-class estimate only).
    """

    adversarial = False

    def __init__(self, regularizer, **kwargs):
        super().__init__(**{"dtype": "float32", **kwargs})
        self.regularizer = regularizer
        self.conditional = isinstance(regularizer, regularizers.ConditionalMMD)

    def call(self, codes, labels=None, seed=None):
        local = backend.current()
        if self.conditional:
            return self.regularizer(local.gather(codes), local.gather(labels), seed=seed)
        return self.regularizer(local.gather(codes), seed=seed)

    def get_config(self):
        return {**super().get_config(), "regularizer": keras.saving.serialize_keras_object(self.regularizer)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["regularizer"] = keras.saving.deserialize_keras_object(config["regularizer"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="aae_keras")
class Adversary(keras.layers.Layer):
    """A slot matched adversarially: `discriminator` tells prior samples (real) from codes (fake).

    instance_noise: std of Gaussian noise added to both discriminator inputs while training;
    label_smoothing: real targets are 1 - label_smoothing; num_classes: when set, the
    discriminator also reads the one-hot label (slot num_classes: unlabeled) and real samples
    come from the label's mixture component (the label-conditioned prior of the paper's Fig. 4).
    `adversary(codes, labels)` gives the discriminator's logits.
    """

    adversarial = True

    def __init__(self, prior, discriminator, instance_noise=0.0, label_smoothing=0.0, num_classes=None, **kwargs):
        super().__init__(**{"dtype": "float32", **kwargs})
        if instance_noise < 0 or not 0 <= label_smoothing < 0.5:
            raise ValueError(
                f"Need instance_noise >= 0 and 0 <= label_smoothing < 0.5; got {instance_noise} and {label_smoothing}."
            )
        self.prior, self.discriminator = priors.as_prior(prior), discriminator
        self.instance_noise, self.label_smoothing = float(instance_noise), float(label_smoothing)
        self.num_classes = None if num_classes is None else int(num_classes)
        width = self.prior.dim + (self.num_classes + 1 if self.num_classes else 0)
        if discriminator.built and discriminator.input_shape[-1] != width:
            raise ValueError(
                f"The discriminator takes {discriminator.input_shape[-1]} inputs but the prior has event size "
                f"{self.prior.dim}"
                + (f" and {self.num_classes + 1} label slots" if self.num_classes else "")
                + f": it must take {width}."
            )

    def call(self, codes, labels=None, noise_seed=None, training=False):
        if self.instance_noise > 0 and noise_seed is not None:
            codes = codes + self.instance_noise * backend.replica_normal(
                ops.shape(codes)[0], self.prior.dim, noise_seed
            )
        if self.num_classes:
            slot = ops.where(labels < 0, self.num_classes, labels)
            codes = ops.concatenate([codes, ops.one_hot(slot, self.num_classes + 1)], axis=-1)
        return ops.cast(self.discriminator(codes, training=training), "float32")

    def discriminator_terms(self, fake, labels, seeds):
        """(loss, accuracy) of the discriminator on prior samples and codes `fake`; `seeds`: three
        stateless seeds (prior samples, noise on real, noise on fake)."""
        real = self.logits_of_prior(labels, seeds[0], seeds[1])
        return _discriminator_terms(real, self(fake, labels, seeds[2], training=True), self.label_smoothing)

    def generator_loss(self, codes, labels, seed):
        """The generator's loss: cross-entropy of the codes labeled real."""
        return _cross_entropy(1.0, self(codes, labels, seed, training=True))

    def evaluation_terms(self, codes, labels, seed):
        """(discriminator loss, accuracy, generator loss) on held-out codes, without noise or smoothing."""
        fake = self(codes, labels)
        loss, accuracy = _discriminator_terms(self.logits_of_prior(labels, seed), fake)
        return loss, accuracy, _cross_entropy(1.0, fake)

    def logits_of_prior(self, labels, seed, noise_seed=None):
        """The discriminator's logits for this replica's slice of a global batch of prior
        samples (one per label; from the label's component when label-conditioned)."""
        local = backend.current()
        size = ops.shape(labels)[0]
        components = local.gather(labels) if self.num_classes else None  # -1: the whole mixture
        samples = self.prior.sample(local.global_size(size), seed=seed, components=components)
        real = local.replica_slice(ops.cast(samples, "float32"), size)
        return self(real, labels, noise_seed, training=noise_seed is not None)

    def get_config(self):
        return {
            **super().get_config(),
            "prior": priors.to_config(self.prior),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            "instance_noise": self.instance_noise,
            "label_smoothing": self.label_smoothing,
            "num_classes": self.num_classes,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["prior"] = priors.from_config(config["prior"])
        config["discriminator"] = keras.saving.deserialize_keras_object(config["discriminator"])
        return cls(**config)


def _cross_entropy(target, logits):
    """Mean binary cross-entropy of logits against a constant target (float32)."""
    return ops.mean(ops.binary_crossentropy(ops.full_like(logits, target), logits, from_logits=True))


def _discriminator_terms(real_logits, fake_logits, label_smoothing=0.0):
    """Mean cross-entropy (prior samples real, codes fake) and accuracy of the discriminator."""
    loss = _cross_entropy(1.0 - label_smoothing, real_logits) + _cross_entropy(0.0, fake_logits)
    accuracy = 0.5 * ops.mean(ops.cast(real_logits > 0, "float32") + ops.cast(fake_logits < 0, "float32"))
    return loss, accuracy
