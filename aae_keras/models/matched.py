"""MatchedAutoencoder: the base of the paper's model family: classes (or clusters) and labels.

The variants split the encoder output into slots (the style z, the class y) and say what the
decoder takes; the training core (`models.base`) matches every slot to its prior, by MMD added
to the reconstruction loss (`regularizer="mmd"`, closed form, the default; "sample_mmd",
"imq_mmd") or adversarially (`regularizer="adversarial"`: one discriminator per slot, with
`instance_noise`, `label_smoothing`, `discriminator_steps` and `schedule`), and runs the semi-supervised
classification phase on the labeled examples of each batch. Labels reach the train step as `y`
of `fit(x, y)`, with -1 for an unlabeled example.

Example:
    >>> from aae_keras import models, priors
    >>> model = models.SemiSupervisedAutoencoder.create((8, 8), priors.gaussian(2), 10, hidden=(32,))
    >>> [slot.name for slot in model.slots], model.regularizer
    (['y', 'z'], 'mmd')
"""

import keras
import numpy as np
from keras import ops

from aae_keras import data as data_lib
from aae_keras import networks, priors
from aae_keras.models.base import REGULARIZERS, LatentAutoencoder, Slot

__all__ = ["REGULARIZERS", "MatchedAutoencoder", "Slot"]


class MatchedAutoencoder(LatentAutoencoder):
    """Base class: encoder, decoder, a style prior and `num_classes`; slots from `_slots()`.

    Takes every option of the core (`regularizer`, `weight`, `posterior`, the adversarial
    options; see `LatentAutoencoder`); discriminators default to MLPs with
    `discriminator_hidden` units, input width = the slot's size, plus num_classes + 1 for a
    label-conditioned slot.
    """

    labels = "optional"  # "required", "optional" or "none": how this model uses labels
    default_schedule = "paper"  # adversarially: the joint schedule lost on semi-supervised digits (README)
    count_name = "num_classes"  # the constructor argument that holds num_classes

    def __init__(self, encoder, decoder, prior, num_classes=10, **kwargs):
        if not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
            raise ValueError(f"{self.count_name} must be an integer >= 2, got {num_classes!r}.")
        self.num_classes = int(num_classes)
        super().__init__(encoder, decoder, prior, **kwargs)

    @classmethod
    def create(cls, image_shape, prior, num_classes=10, network="mlp", hidden=networks.PAPER_HIDDEN, **kwargs):
        """Build the networks for this model (encoder / decoder sizes follow the variant and the
        posterior) and the model. `num_classes` is the number of classes or clusters; other
        keywords go to the constructor."""
        dim = priors.event_size(prior)
        code_outputs = dim * (2 if kwargs.get("posterior") == "gaussian" else 1)
        encoder_outputs, decoder_inputs = cls._sizes(num_classes, dim, code_outputs)
        encoder, decoder, _ = networks.build(network, image_shape, decoder_inputs, encoder_outputs, hidden)
        return cls(encoder, decoder, prior, **{cls.count_name: num_classes}, **kwargs)

    @classmethod
    def _sizes(cls, num_classes, dim, code_outputs):
        """(encoder outputs, decoder inputs) for `num_classes`, a style of `dim` dims and
        `code_outputs` encoder outputs for the style (2 dim for a Gaussian posterior)."""
        raise NotImplementedError

    def _network_sizes(self):
        return self._sizes(self.num_classes, self.latent_dim, self._code_outputs())

    def _how_to_build(self):
        return f" ({self.count_name}={self.num_classes}); {type(self).__name__}.create builds matching networks"

    # ------------------------------------------------------------------------------- labels
    def _labels(self, data, x):
        """(the labels y of a batch as int32 [n], -1 where missing; y itself, checked by
        `_label_checks`: whole numbers, in range)."""
        _, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        if y is None or self.labels == "none":
            if self.labels == "required":
                raise ValueError(f"{type(self).__name__} trains on labeled data: call fit(x, y).")
            return super()._labels(data, x)
        y = ops.reshape(y, [-1])
        dtype = keras.backend.standardize_dtype(y.dtype)
        if not any(kind in dtype for kind in ("int", "float", "bool")):
            raise ValueError(
                f"Labels must be integer classes, got a tensor of dtype {dtype}; map them to 0..{self.num_classes - 1}."
            )
        return ops.cast(y, "int32"), y

    def _label_checks(self, y, labels, xp, where):
        """Labels are whole numbers (float labels) in range: -1..K-1, or 0..K-1 where required."""
        low = 0 if self.labels == "required" else -1
        checks = [(xp.all(xp.logical_and(labels >= low, labels < self.num_classes)), f"{where}: labels_out_of_range")]
        if "float" in keras.backend.standardize_dtype(y.dtype):
            checks.insert(0, (xp.all(xp.equal(y, xp.round(y))), f"{where}: non_integer_labels"))
        return checks

    def _data_problems(self):
        low = -1 if self.labels != "required" else 0
        return {
            **super()._data_problems(),
            "labels_out_of_range": f"{{what}} holds a label outside {low}..{self.num_classes - 1} "
            f"({self.count_name}={self.num_classes}); build the model with {self.count_name} equal to the number of "
            "classes" + (", and use -1 for an unlabeled example." if low < 0 else "."),
            "non_integer_labels": "{what} holds labels that are not whole numbers; labels must be integer classes"
            + (" (-1 for an unlabeled example)." if low < 0 else "."),
        }

    def _check_labels(self, y, n):
        """Numpy labels checked against this model: one per example, in range; returns int array."""
        if self.labels == "none":
            raise ValueError(
                f"{type(self).__name__} learns without labels: call fit(x) (use "
                "SemiSupervisedAutoencoder to learn from labels)."
            )
        y = np.asarray(y)
        numeric = np.issubdtype(y.dtype, np.integer) or (
            np.issubdtype(y.dtype, np.floating) and np.all(y == np.round(y))
        )
        if y.ndim != 1 or len(y) != n or not numeric:
            raise ValueError(
                f"Labels must be 1-D integers, one per example ({n}), got shape {y.shape}, dtype {y.dtype}; "
                f"map class names to 0..{self.num_classes - 1}."
            )
        y = y.astype(np.int64)
        low = 0 if self.labels == "required" else -1
        if len(y) and (y.min() < low or y.max() >= self.num_classes):
            unlabeled = "" if low == 0 else ", or -1 for an unlabeled example"
            raise ValueError(
                f"Labels must lie in 0..{self.num_classes - 1} ({self.count_name}={self.num_classes}"
                f"{unlabeled}); got values from {y.min()} to {y.max()}. Build the model with "
                f"{self.count_name} equal to the number of classes in the data."
            )
        return y

    def fit(self, x=None, y=None, batch_size=None, **kwargs):
        """`Model.fit`; with numpy labels that are partly -1, each batch gets `labeled_batch_size`
        (keyword, default min(batch_size, number labeled)) extra labeled examples.

        `validation_split` takes the last examples (and labels) as validation data, as Keras
        does; a run resumed by `keras.callbacks.BackupAndRestore` continues the labeled batches
        from the restored epoch, so it ends where an uninterrupted run does."""
        labeled_batch_size = kwargs.pop("labeled_batch_size", None)
        if y is not None and isinstance(x, np.ndarray):
            y = self._check_labels(y, len(x))
            validation = kwargs.get("validation_data")
            if validation is not None and isinstance(validation, (tuple, list)) and len(validation) > 1:
                self._check_labels(validation[1], len(validation[0]))
            if self.classifies and (y < 0).any():
                self._check_data(x, "training data")
                x, kwargs = data_lib.labeled_fit_arguments(
                    x, y, batch_size or 32, labeled_batch_size, self.seed, kwargs
                )
                y = batch_size = None
        return super().fit(x, y, batch_size=batch_size, **kwargs)

    def get_config(self):
        return {**super().get_config(), self.count_name: self.num_classes}
