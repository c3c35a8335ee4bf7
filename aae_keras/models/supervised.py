"""SupervisedAutoencoder (paper section 4): the decoder gets the label, so z holds style only.

The decoder takes [one-hot y, z]; z is matched to the prior (closed-form MMD or adversarially).
`decode(z, y)` and `sample(n, y)` draw any class in any style; `style_grid` shows one style per
row and one class per column.

Example:
    >>> from aae_keras import data, models, priors
    >>> x, y = data.load("digits", split="train")
    >>> model = models.SupervisedAutoencoder.create(x.shape[1:], priors.gaussian(2), 10, hidden=(64,))
    >>> model.compile()
    >>> history = model.fit(x, y, epochs=1, batch_size=100, verbose=0)
    >>> model.style_grid(styles=3).shape   # 3 styles x 10 classes
    (30, 8, 8)
"""

import keras
import numpy as np
from keras import ops

from aae_keras.models.matched import MatchedAutoencoder

__all__ = ["ClassStyleDecoding", "SupervisedAutoencoder"]


class ClassStyleDecoding:
    """Mixin for decoders that take [class, style]: `decode(z, y)`, `sample(n, y)`, `style_grid`."""

    @property
    def decoder_takes_class(self):
        """True: the decoder takes [class, style], `decode(z, y)`."""
        return True

    @property
    def samples_by_class(self):
        """True when fit learned classes from labels (not for the clustering model's clusters)."""
        return self.uses_labels

    @property
    def figures(self):
        """The base figures and "style_grid" (one style per row, one class per column)."""
        return (*super().figures, "style_grid")

    def decode(self, z, y, batch_size=256):
        """Images for styles z [n, d] and classes y (an int, n ints, or [n, K] class probabilities)."""
        z = np.asarray(z, np.float32)
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"decode expects styles of shape (n, {self.latent_dim}), got {z.shape}.")
        if len(z) == 0:
            raise ValueError(f"decode got no examples (styles of shape {z.shape}); pass at least one.")
        y = np.asarray(y)
        if y.ndim < 2:
            y = np.broadcast_to(y, (len(z),)).astype(np.int64)
            if y.min() < 0 or y.max() >= self.num_classes:
                raise ValueError(f"Classes must lie in 0..{self.num_classes - 1}, got {y.min()}..{y.max()}.")
            y = np.eye(self.num_classes, dtype=np.float32)[y]
        if y.shape != (len(z), self.num_classes):
            raise ValueError(f"y must be ints or class rows of shape ({len(z)}, {self.num_classes}), got {y.shape}.")
        inputs = np.concatenate([y.astype(np.float32), z], axis=1)
        return self._predict(self.decoder, inputs, batch_size, "decode")

    def sample(self, n, y=None, seed=None):
        """n images from prior styles; classes `y` (int or n ints), random when None."""
        z = np.asarray(self.prior.sample(int(n), seed=seed), np.float32)
        if y is None:
            y = np.random.default_rng(seed if isinstance(seed, int) else None).integers(self.num_classes, size=int(n))
        return self.decode(z, y)

    def style_grid(self, styles=10, seed=0):
        """Images [styles * K, ...]: row i decodes prior style i with class 0, 1, ..., K - 1."""
        z = np.asarray(self.prior.sample(int(styles), seed=(int(seed), 7)), np.float32)
        return self.decode(np.repeat(z, self.num_classes, axis=0), np.tile(np.arange(self.num_classes), styles))


@keras.saving.register_keras_serializable(package="aae_keras")
class SupervisedAutoencoder(ClassStyleDecoding, MatchedAutoencoder):
    """Encoder x -> style z (matched to `prior`); decoder [one-hot y, z] -> x. Needs every label.

    Build the networks with `SupervisedAutoencoder.create(image_shape, prior, num_classes)`
    or pass an encoder with d outputs and a decoder with num_classes + d inputs.
    """

    labels = "required"

    @classmethod
    def _sizes(cls, num_classes, dim, code_outputs):
        return code_outputs, num_classes + dim

    def _decoder_input(self, parts, labels):
        return ops.concatenate([ops.one_hot(labels, self.num_classes), parts["z"]], axis=-1)

    def serving_signature(self):
        """What Keras's `model.export` serves: the reconstruction of images `x` and their int32 `labels`."""
        return [(*super().serving_signature(), keras.InputSpec(shape=(None,), dtype="int32", name="labels"))]
