"""AdversarialAutoencoder: an autoencoder whose codes a discriminator pulls to the prior.

Per batch, with `schedule="joint"` (the default, two optimizers): one update of encoder +
decoder on reconstruction + `generator_weight` x generator loss and one discriminator update,
from one forward pass. With `schedule="paper"` (three optimizers, the paper's variants'
default): (1) reconstruction update of encoder + decoder, (2) `discriminator_steps` updates of
the discriminator on prior samples (real) against codes (fake), (3) a generator update of the
encoder to fool the discriminator (2 and 3 share one encoder pass). One slot, matched by a
`matchers.Adversary`.

Example:
    >>> import keras
    >>> from aae_keras import models, networks, priors
    >>> enc, dec, disc = networks.build("mlp", (8, 8), 2, hidden=(256, 256))
    >>> aae = models.AdversarialAutoencoder(enc, dec, disc, priors.gaussian_mixture(10, 2))
    >>> aae.compile()   # optimizer and discriminator_optimizer: the joint schedule has no generator phase
    >>> aae.schedule, aae.generator_optimizer is None
    ('joint', True)
    >>> paper = models.AdversarialAutoencoder(enc, dec, disc, priors.gaussian_mixture(10, 2), schedule="paper")
    >>> paper.compile(optimizer=keras.optimizers.Adam(1e-3))   # "auto" defaults for the other two
"""

import keras

from aae_keras.models.base import LatentAutoencoder

__all__ = ["AdversarialAutoencoder"]


@keras.saving.register_keras_serializable(package="aae_keras")
class AdversarialAutoencoder(LatentAutoencoder):
    """Autoencoder regularized by a discriminator between codes and prior samples.

    Options: `posterior` ("deterministic" or "gaussian"), `instance_noise` (std of Gaussian
    noise added to both discriminator inputs), `label_smoothing` (real targets 1 - s),
    `discriminator_steps` per generator step, `schedule` ("paper" or "joint") and
    `generator_weight` (see `LatentAutoencoder`). Logs `loss` (the encoder and decoder's
    objective: reconstruction + generator_weight x generator loss), `reconstruction`, `discriminator_loss`,
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
        super().__init__(
            encoder,
            decoder,
            prior,
            "adversarial",
            discriminators=[discriminator],
            instance_noise=instance_noise,
            label_smoothing=label_smoothing,
            discriminator_steps=discriminator_steps,
            **kwargs,
        )

    @property
    def discriminator(self):
        """The discriminator network (its weights are saved under this name)."""
        return self.matchers[0].discriminator

    @property
    def ae_optimizer(self):
        """The reconstruction phase's optimizer (an older name, kept): `model.optimizer`, or the
        reconstruction member of it where it groups every phase's optimizer (JAX)."""
        return self.phase_optimizer("optimizer")

    def get_config(self):
        config = super().get_config()
        for key in ("regularizer", "weight", "discriminator_hidden"):
            del config[key]
        config["discriminator"] = config.pop("discriminators")[0]
        return config
