"""Semi-supervised (paper section 5) and clustering (section 6) autoencoders.

The encoder outputs class logits (softmax y) and a style z; y is matched to a categorical prior,
z to the style prior, and the decoder takes [y, z]. The semi-supervised model adds a
classification phase on the labeled examples (labels -1 are unlabeled); the clustering model
learns without labels, with K clusters.

Example:
    >>> import numpy as np
    >>> from aae_keras import data, models, priors
    >>> x, y = data.load("digits", split="train")
    >>> y = data.keep_labels(y, 100)       # 100 labels, the rest -1
    >>> model = models.SemiSupervisedAutoencoder.create(x.shape[1:], priors.gaussian(2), 10, hidden=(64,))
    >>> model.compile()
    >>> history = model.fit(x, y, epochs=1, batch_size=100, verbose=0)
    >>> model.classify(x[:5]).shape
    (5,)
"""

import keras
import numpy as np
from keras import ops

from aae_keras import metrics, priors
from aae_keras.models.base import OPTIMIZER_DEFAULTS
from aae_keras.models.matched import MatchedAutoencoder, Slot
from aae_keras.models.supervised import ClassStyleDecoding

__all__ = ["CategoricalEncoding", "ClusterReporting", "ClusteringAutoencoder", "SemiSupervisedAutoencoder"]

# compile's "auto" optimizers of the semi-supervised model: Adam(1e-4) for every phase, beta_1 0.5
# for the adversarial ones. The core's 1e-3 for reconstruction and classification let the
# classifier memorise 100 labels within an epoch, and the unlabeled data then gained nothing
# (benchmarks/semi_ablation.py: MNIST, 100 labels, 4 epochs, 24.7 % test error against 14.0 %).
SEMI_SUPERVISED_OPTIMIZERS = {
    "optimizer": (1e-4, 0.9),
    "discriminator_optimizer": (1e-4, 0.5),
    "generator_optimizer": (1e-4, 0.5),
    "classifier_optimizer": (1e-4, 0.9),
}


class CategoricalEncoding:
    """Mixin: the encoder outputs K class logits, then a style z; y ~ categorical(K), z ~ prior.

    With `joint_matching` (and an MMD regularizer and a Gaussian or diagonal-mixture style), one
    MMD matches the joint codes [y, z] to p(y) p(z) (`priors.class_and_style`) instead of one
    MMD for y and one for z: it also pulls each class's styles to the same p(z). Off by default:
    on MNIST with 100 labels it trained to 19.0 % test error in 4 epochs against 16.9 % for y and
    z apart (benchmarks/semi_ablation.py).
    """

    joint_matching = False

    def _matches_jointly(self):
        """Whether the slots are the joint [y, z] (see the class docstring) rather than y and z."""
        style = priors.describe(self.prior)
        return bool(
            self.joint_matching
            and isinstance(self.regularizer, str)
            and not self.adversarial
            and style["kind"] == "mixture"
            and "covariances" not in style
        )

    def _slots(self):
        if self._matches_jointly():
            return [Slot("yz", priors.class_and_style(self.num_classes, self.prior))]
        return [Slot("y", priors.categorical(self.num_classes)), Slot("z", self.prior)]

    def _parts(self, x, training=False, seed=None):
        out = self._encode_batch(x, training=training, seed=seed)
        logits = out[:, : self.num_classes]
        parts = {
            "logits": logits,
            "y": ops.softmax(logits),
            "z": self._posterior_codes(out[:, self.num_classes :], seed),
        }
        if self._matches_jointly():
            parts["yz"] = ops.concatenate([parts["y"], parts["z"]], axis=-1)
        return parts

    def _output_layout(self):
        return f"{self.num_classes} class logits, then {super()._output_layout()}"

    def _styles(self, x, batch_size):
        """The style part of the encoder outputs (the means for a Gaussian posterior), numpy."""
        return self._encoder_outputs(x, batch_size)[:, self.num_classes : self.num_classes + self.latent_dim]

    def class_probabilities(self, x, batch_size=256):
        """q(y | x) [n, K] (numpy)."""
        logits = self._encoder_outputs(x, batch_size)[:, : self.num_classes]
        return np.asarray(keras.ops.softmax(logits), np.float32)

    def classify(self, x, batch_size=256):
        """The most probable class (or cluster) of each example [n]."""
        return np.argmax(self.class_probabilities(x, batch_size), axis=1)


class ClusterReporting:
    """Mixin for models that cluster: `cluster(x)`, the "clusters" figure, and cluster scores."""

    def cluster(self, x, batch_size=256):
        """The cluster of each example [n] (argmax of q(y | x))."""
        return self.classify(x, batch_size)

    @property
    def figures(self):
        """The base figures and "clusters" (test images of each cluster)."""
        return (*super().figures, "clusters")

    def task_metrics(self, x, y):
        """{"cluster_accuracy", "nmi"} of `cluster(x)` against classes y: the accuracy of the
        best cluster-to-class map and the normalized mutual information."""
        assignments = self.cluster(x)
        return {"cluster_accuracy": metrics.cluster_accuracy(y, assignments), "nmi": metrics.nmi(y, assignments)}


@keras.saving.register_keras_serializable(package="aae_keras")
class SemiSupervisedAutoencoder(CategoricalEncoding, ClassStyleDecoding, MatchedAutoencoder):
    """Class y and style z from one encoder; `classify(x)`; `fit(x, y)` with -1 for unlabeled.

    With numpy labels that are partly -1, `fit` appends labeled examples to every batch
    (`labeled_batch_size`), so the classification phase sees labels at every step. Its
    defaults differ from the core's so that the unlabeled data helps: `input_noise=0.3` and
    Adam(1e-4) for every phase (`SEMI_SUPERVISED_OPTIMIZERS`).
    """

    classifies = True
    optimizer_defaults = SEMI_SUPERVISED_OPTIMIZERS

    def __init__(self, encoder, decoder, prior, num_classes=10, input_noise=0.3, joint_matching=False, **kwargs):
        self.joint_matching = bool(joint_matching)
        super().__init__(encoder, decoder, prior, num_classes=num_classes, input_noise=input_noise, **kwargs)

    @classmethod
    def _sizes(cls, num_classes, dim, code_outputs):
        return num_classes + code_outputs, num_classes + dim

    def _decoder_input(self, parts, labels):
        return ops.concatenate([parts["y"], parts["z"]], axis=-1)

    def encode(self, x, batch_size=256):
        """Styles z [n, d] of images x (the class part is `class_probabilities`)."""
        return self._styles(x, batch_size)

    def get_config(self):
        return {**super().get_config(), "joint_matching": self.joint_matching}

    @classmethod
    def from_config(cls, config):
        return super().from_config({"joint_matching": False, **config})  # files from before it matched y and z apart

    def task_metrics(self, x, y):
        """{"classification_error"}: the fraction of images x that `classify` gets wrong."""
        return {"classification_error": metrics.classification_error(y, self.classify(x))}


@keras.saving.register_keras_serializable(package="aae_keras")
class ClusteringAutoencoder(ClusterReporting, SemiSupervisedAutoencoder):
    """Unsupervised clustering: K = `num_clusters` categorical codes and a style; `cluster(x)`."""

    labels = "none"
    classifies = False
    count_name = "num_clusters"
    optimizer_defaults = OPTIMIZER_DEFAULTS  # the core's, not the semi-supervised model's

    def __init__(self, encoder, decoder, prior, num_clusters=16, input_noise=0.0, joint_matching=False, **kwargs):
        super().__init__(
            encoder,
            decoder,
            prior,
            num_classes=num_clusters,
            input_noise=input_noise,
            joint_matching=joint_matching,
            **kwargs,
        )
