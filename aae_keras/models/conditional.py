"""LabelConditionedAutoencoder (paper section 2.3, Fig. 4): labels choose the prior's component.

The prior is a Gaussian mixture with one component per class. A labeled example's code is
matched to the component of its class, an unlabeled one (label -1) to the whole mixture:
adversarially, the discriminator also gets the one-hot label (slot K: unlabeled); with MMD,
per class in closed form (`regularizers.ConditionalMMD`).

Example:
    >>> from aae_keras import data, models, priors
    >>> x, y = data.load("digits", split="train")
    >>> model = models.LabelConditionedAutoencoder.create(x.shape[1:], priors.gaussian_mixture(10, 2), hidden=(64,))
    >>> model.compile()
    >>> history = model.fit(x, data.keep_labels(y, 500), epochs=1, batch_size=100, verbose=0)
    >>> model.sample(4, y=3).shape
    (4, 8, 8)
"""

import keras
import numpy as np

from aae_keras import priors
from aae_keras.models.matched import MatchedAutoencoder, Slot

__all__ = ["LabelConditionedAutoencoder"]


@keras.saving.register_keras_serializable(package="aae_keras")
class LabelConditionedAutoencoder(MatchedAutoencoder):
    """Codes of class c matched to mixture component c; `num_classes` defaults to the prior's K."""

    def __init__(self, encoder, decoder, prior, num_classes=None, **kwargs):
        info = priors.describe(prior)
        components = len(info["weights"]) if info["kind"] == "mixture" else 0
        if components < 2:
            raise ValueError(
                "A label-conditioned prior must be a Gaussian mixture with one component per class "
                f"(e.g. priors.gaussian_mixture(10, 2)); got kind {info['kind']!r} with {components} component(s)."
            )
        if num_classes is not None and num_classes != components:
            raise ValueError(
                f"num_classes={num_classes} does not match the prior's {components} components: a "
                "label-conditioned prior needs one component per class."
            )
        super().__init__(encoder, decoder, prior, num_classes=components, **kwargs)

    @classmethod
    def create(cls, image_shape, prior, num_classes=None, **kwargs):
        """As `MatchedAutoencoder.create`; `num_classes` defaults to the prior's components."""
        info = priors.describe(prior)
        return super().create(image_shape, prior, num_classes or len(info.get("weights", ())), **kwargs)

    @classmethod
    def _sizes(cls, num_classes, dim, code_outputs):
        return code_outputs, dim

    @property
    def samples_by_class(self):
        """True: `sample(n, y=c)` decodes draws from component c, where fit put class c."""
        return True

    def _slots(self):
        return [Slot("z", self.prior, conditional=True)]

    def task_metrics(self, x, y):
        """{"codes_on_class_component"}: the fraction of images x whose code is nearest to the
        mean of their class's component."""
        means = priors.describe(self.prior)["means"]
        codes = self.encode(x)
        nearest = np.argmin(np.linalg.norm(codes[:, None] - means[None], axis=-1), axis=1)
        return {"codes_on_class_component": float(np.mean(nearest == np.asarray(y)))}

    def sample(self, n, y=None, seed=None):
        """n images from the prior, or from component(s) `y` (an int or n ints) when given."""
        if y is None:
            return super().sample(n, seed=seed)
        y = np.broadcast_to(np.asarray(y, np.int64), (int(n),))
        if y.min() < 0 or y.max() >= self.num_classes:
            raise ValueError(f"Classes must lie in 0..{self.num_classes - 1}, got {y.min()}..{y.max()}.")
        return self.decode(np.asarray(self.prior.sample(int(n), seed=seed, components=y), np.float32))
