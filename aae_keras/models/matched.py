"""MatchedAutoencoder: the base of the paper's model family, with either latent regularizer.

Each latent part (a "slot": the style z, the class y) is pulled to its own prior, either by
MMD added to the reconstruction loss (`regularizer="mmd"`, closed form, one optimizer) or
adversarially (`regularizer="adversarial"`: one discriminator per slot, the paper's phases:
reconstruction, discriminators, generator). Models that classify add the paper's
semi-supervised phase: cross-entropy on the labeled examples of each batch. Labels reach the
train step as `y` of `fit(x, y)`, with -1 for an unlabeled example.

Subclasses say how the encoder output splits into slots (`_parts`), what the decoder takes
(`_decoder_input`), and which penalties apply (`_penalties`).

Example:
    >>> from aae_keras import models, priors
    >>> model = models.SemiSupervisedAutoencoder.create((8, 8), priors.gaussian(2), 10, hidden=(32,))
    >>> [slot.name for slot in model.slots], model.regularizer
    (['y', 'z'], 'mmd')
"""

from typing import NamedTuple

import json
import os

import keras
import numpy as np
import tensorflow as tf

from aae_keras import distribute, networks, priors, regularizers
from aae_keras.models.adversarial import AdversarialAutoencoder, _bce
from aae_keras.models.base import LatentAutoencoder

__all__ = ["REGULARIZERS", "MatchedAutoencoder", "Slot"]

REGULARIZERS = ("mmd", "sample_mmd", "imq_mmd", "adversarial")


class Slot(NamedTuple):
    """A latent part: its name, its prior, and whether it is matched per class (label-conditioned)."""

    name: str
    prior: object
    conditional: bool = False


class MatchedAutoencoder(LatentAutoencoder):
    """Base class: encoder, decoder, a style prior and `num_classes`; slots from `_slots()`.

    regularizer: "mmd" (closed-form MMD, the default), "sample_mmd", "imq_mmd" or
    "adversarial". weight: the MMD weight. discriminators: one network per slot (adversarial
    only; default MLPs with `discriminator_hidden` units, input width = the slot's size, plus
    num_classes + 1 for a label-conditioned slot).
    """

    labels = "optional"  # "required", "optional" or "none": how this model uses labels
    classifies = False  # whether a semi-supervised classification phase runs on labeled examples
    penalties = ()  # names of extra losses from `_penalties`
    count_name = "num_classes"  # the constructor argument that holds num_classes

    def __init__(
        self,
        encoder,
        decoder,
        prior,
        num_classes=10,
        regularizer="mmd",
        weight=10.0,
        discriminators=None,
        discriminator_hidden=networks.PAPER_HIDDEN,
        **kwargs,
    ):
        super().__init__(encoder, decoder, prior, **kwargs)
        if self.posterior != "deterministic":
            raise ValueError(f"{type(self).__name__} supports posterior='deterministic' only.")
        if regularizer not in REGULARIZERS:
            raise ValueError(f"Unknown regularizer {regularizer!r}; choose one of {', '.join(REGULARIZERS)}.")
        if not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
            raise ValueError(f"{self.count_name} must be an integer >= 2, got {num_classes!r}.")
        self.num_classes, self.regularizer, self.weight = int(num_classes), regularizer, float(weight)
        self.discriminator_hidden = tuple(discriminator_hidden)
        self.slots = self._slots()
        self._check_networks()
        if self.adversarial:
            self.discriminators = discriminators or [
                networks.mlp_discriminator(self._discriminator_width(s), self.discriminator_hidden, f"discriminator_{s.name}")
                for s in self.slots
            ]
            self.matchers = []
        else:
            self.discriminators = []
            self.matchers = [self._matcher(slot) for slot in self.slots]
        names = ["loss", "reconstruction", *self.penalties]
        names += ["discriminator_loss", "discriminator_accuracy", "generator_loss"] if self.adversarial else ["regularizer"]
        names += ["classification_loss", "classification_accuracy"] if self.classifies else []
        self.trackers = [keras.metrics.Mean(name=name) for name in names]

    @classmethod
    def create(cls, image_shape, prior, num_classes=10, network="mlp", hidden=networks.PAPER_HIDDEN, **kwargs):
        """Build the networks for this model (encoder / decoder sizes follow the variant) and the model.

        `num_classes` is the number of classes or clusters; other keywords go to the constructor.
        """
        encoder_outputs, decoder_inputs = cls._network_sizes(num_classes, priors.event_size(prior))
        encoder, decoder, _ = networks.build(network, image_shape, decoder_inputs, encoder_outputs, hidden)
        return cls(encoder, decoder, prior, **{cls.count_name: num_classes}, **kwargs)

    @property
    def adversarial(self):
        return self.regularizer == "adversarial"

    @property
    def metrics(self):
        return self.trackers

    # ---------------------------------------------------------------- what subclasses define
    @classmethod
    def _network_sizes(cls, num_classes, dim):
        """(encoder outputs, decoder inputs) for `num_classes` and a style of `dim` dims."""
        raise NotImplementedError

    def _slots(self):
        raise NotImplementedError

    def _parts(self, x, training=False):
        """The latent parts of x: a dict with one entry per slot name (and any extras)."""
        raise NotImplementedError

    def _decoder_input(self, parts, labels):
        raise NotImplementedError

    def _penalties(self, parts):
        return {}

    def _extra_variables(self):
        return []

    # ------------------------------------------------------------------------------ training
    def _optimizer_groups(self):
        groups = super()._optimizer_groups()
        if self.adversarial:
            groups["discriminator_optimizer"] = [v for d in self.discriminators for v in d.trainable_variables]
            groups["generator_optimizer"] = self.encoder.trainable_variables
        if self.classifies:
            groups["classifier_optimizer"] = self.encoder.trainable_variables
        return groups

    def _autoencoder_variables(self):
        return super()._autoencoder_variables() + self._extra_variables()

    def train_step(self, data):
        x, labels = self._inputs(data)
        step = self.optimizer.iterations
        with tf.GradientTape() as tape:
            terms, _ = self._objective(x, labels, step, training=True)
            scaled = self._scaled(self.optimizer, terms["loss"])
        variables = self._autoencoder_variables()
        self.optimizer.apply(tape.gradient(scaled, variables), variables)

        if self.adversarial:
            with tf.GradientTape() as tape:  # discriminators: prior samples real, codes fake
                parts = {k: tf.stop_gradient(v) for k, v in self._parts(x, training=True).items()}
                adversarial = self._adversarial_terms(parts, labels, step)
                scaled = self._scaled(self.discriminator_optimizer, adversarial["discriminator_loss"])
            variables = [v for d in self.discriminators for v in d.trainable_variables]
            self.discriminator_optimizer.apply(tape.gradient(scaled, variables), variables)
            with tf.GradientTape() as tape:  # generator: the encoder fools the discriminators
                generator = self._generator_loss(self._parts(x, training=True), labels)
                scaled = self._scaled(self.generator_optimizer, generator)
            self.generator_optimizer.apply(tape.gradient(scaled, self.encoder.trainable_variables), self.encoder.trainable_variables)
            terms.update(adversarial, generator_loss=generator, loss=terms["loss"] + generator)

        if self.classifies:
            with tf.GradientTape() as tape:  # semi-supervised phase on the labeled examples
                classification = self._classification_terms(self._parts(x, training=True), labels)
                scaled = self._scaled(self.classifier_optimizer, classification["classification_loss"])
            variables = self.encoder.trainable_variables
            self.classifier_optimizer.apply(tape.gradient(scaled, variables), variables)
            terms.update(classification)
        return self._record(**terms)

    def test_step(self, data):
        x, labels = self._inputs(data, training=False)
        terms, parts = self._objective(x, labels, self.optimizer.iterations, training=False)
        if self.adversarial:
            adversarial = self._adversarial_terms(parts, labels, self.optimizer.iterations)
            terms.update(adversarial, loss=terms["loss"] + adversarial["generator_loss"])
        if self.classifies:
            terms.update(self._classification_terms(parts, labels))
        return self._record(**terms)

    def _objective(self, x, labels, step, training):
        """The loss of the reconstruction phase (with the MMD terms unless adversarial; the
        adversarial models' logged `loss` adds the generator loss)."""
        parts = self._parts(x, training=training)
        x_hat = self.decoder(self._decoder_input(parts, labels), training=training)
        terms = {"reconstruction": tf.reduce_mean(self.reconstruction_loss(x, x_hat)), **self._penalties(parts)}
        loss = tf.add_n(list(terms.values()))
        if not self.adversarial:
            all_labels = distribute.gather(labels)
            terms["regularizer"] = tf.add_n([
                matcher(distribute.gather(parts[slot.name]), all_labels, seed=self._seed(step, 20 + i))
                if slot.conditional else matcher(distribute.gather(parts[slot.name]), seed=self._seed(step, 20 + i))
                for i, (slot, matcher) in enumerate(zip(self.slots, self.matchers))
            ])
            loss += self.weight * terms["regularizer"]
        terms["loss"] = loss
        return terms, parts

    def _adversarial_terms(self, parts, labels, step):
        """Discriminator loss and accuracy (prior samples real, codes fake) and the generator
        loss, summed (accuracy: averaged) over the slots."""
        local = tf.shape(labels)[0]
        d_loss, accuracy, g_loss = 0.0, 0.0, 0.0
        for i, (slot, discriminator) in enumerate(zip(self.slots, self.discriminators)):
            real = self._prior_samples(slot, labels, local, step, 30 + 2 * i)
            real_logits = discriminator(self._condition(slot, real, labels), training=True)
            fake_logits = self._fake_logits(slot, discriminator, parts, labels)
            loss, acc = AdversarialAutoencoder._discriminator_loss(real_logits, fake_logits)
            d_loss, accuracy, g_loss = d_loss + loss, accuracy + acc / len(self.slots), g_loss + _bce(1.0, fake_logits)
        return {"discriminator_loss": d_loss, "discriminator_accuracy": accuracy, "generator_loss": g_loss}

    def _generator_loss(self, parts, labels):
        """The generator phase's loss: codes labeled real, summed over the slots (no prior samples)."""
        return tf.add_n([_bce(1.0, self._fake_logits(slot, d, parts, labels)) for slot, d in zip(self.slots, self.discriminators)])

    def _fake_logits(self, slot, discriminator, parts, labels):
        return discriminator(self._condition(slot, parts[slot.name], labels), training=True)

    def _classification_terms(self, parts, labels):
        """Cross-entropy and accuracy over the labeled examples (label >= 0) of the global batch."""
        labeled = labels >= 0
        safe = tf.where(labeled, labels, 0)
        cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=safe, logits=parts["logits"])
        correct = tf.cast(tf.equal(tf.argmax(parts["logits"], -1, output_type=tf.int32), safe), tf.float32)
        return {
            "classification_loss": _labeled_mean(cross_entropy, labeled),
            "classification_accuracy": _labeled_mean(correct, labeled),
        }

    def _prior_samples(self, slot, labels, local, step, tag):
        """This replica's prior samples; for a conditional slot, from the component of each label
        (unlabeled: from the whole mixture)."""
        components = distribute.gather(labels) if slot.conditional else None  # -1: from the whole mixture
        samples = slot.prior.sample(distribute.global_size(local), seed=self._seed(step, tag), components=components)
        return distribute.replica_slice(tf.cast(samples, tf.float32), local)

    def _condition(self, slot, codes, labels):
        """A conditional slot's discriminator input: codes and the one-hot label (slot K: unlabeled)."""
        if not slot.conditional:
            return codes
        one_hot = tf.one_hot(tf.where(labels < 0, self.num_classes, labels), self.num_classes + 1)
        return tf.concat([codes, one_hot], axis=-1)

    def _discriminator_width(self, slot):
        return priors.event_size(slot.prior) + (self.num_classes + 1 if slot.conditional else 0)

    def _matcher(self, slot):
        if not slot.conditional:
            return regularizers.get(self.regularizer, slot.prior)
        if self.regularizer != "mmd":
            raise ValueError(
                f'A label-conditioned prior is matched with regularizer="mmd" (per-class closed form) or '
                f'"adversarial", not {self.regularizer!r}.'
            )
        return regularizers.ConditionalMMD(slot.prior)

    # ------------------------------------------------------------------------------- labels
    def _inputs(self, data, training=True):
        """(x, labels) from a batch; labels int32 [n], -1 where missing; checked in the graph
        (integers, in range) before any use."""
        x = self._features(data, training=training)
        _, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        if y is None:
            if self.labels == "required":
                raise ValueError(f"{type(self).__name__} trains on labeled data: call fit(x, y).")
            return x, tf.fill([tf.shape(x)[0]], -1)
        y = tf.reshape(y, [-1])
        if not (y.dtype.is_integer or y.dtype.is_floating or y.dtype.is_bool):
            raise ValueError(f"Labels must be integer classes, got a tensor of dtype {y.dtype.name}; map them to 0..{self.num_classes - 1}.")
        phase = "train" if training else "test"
        checks = []
        if y.dtype.is_floating:
            checks.append(tf.debugging.Assert(tf.reduce_all(tf.equal(y, tf.round(y))), [f"aae_keras[{phase}]: non_integer_labels"]))
        with tf.control_dependencies(checks):
            labels = tf.cast(y, tf.int32)
        low = 0 if self.labels == "required" else -1
        in_range = tf.logical_and(labels >= low, labels < self.num_classes)
        with tf.control_dependencies([tf.debugging.Assert(tf.reduce_all(in_range), [f"aae_keras[{phase}]: labels_out_of_range"])]):
            return x, tf.identity(labels)  # every use of the labels waits for the checks

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
        numeric = np.issubdtype(y.dtype, np.integer) or (np.issubdtype(y.dtype, np.floating) and np.all(y == np.round(y)))
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
                from aae_keras import data as data_lib

                self._check_data(x, "training data")
                x, y, kwargs = _split_validation(x, y, kwargs)
                batch_size = batch_size or 32
                epochs = kwargs.get("epochs", 1)
                initial_epoch = _restored_epoch(kwargs.get("callbacks"), kwargs.get("initial_epoch", 0))
                x = data_lib.labeled_batches(x, y, batch_size, labeled_batch_size, self.seed, epochs, initial_epoch)
                kwargs.update(shuffle=False, steps_per_epoch=len(y) // batch_size)  # the pipeline shuffles
                y = batch_size = None
        return super().fit(x, y, batch_size=batch_size, **kwargs)

    def _check_networks(self):
        encoder_outputs, decoder_inputs = self._network_sizes(self.num_classes, self.latent_dim)
        for network, what, expected, got in (
            (self.encoder, "an encoder with {} outputs", encoder_outputs, lambda n: n.output_shape[-1]),
            (self.decoder, "a decoder with {} inputs", decoder_inputs, lambda n: n.input_shape[-1]),
        ):
            if network.built and got(network) != expected:
                raise ValueError(
                    f"{type(self).__name__} with {self.count_name}={self.num_classes} and a {self.latent_dim}-D "
                    f"prior needs {what.format(expected)}, got {got(network)}; "
                    f"{type(self).__name__}.create builds matching networks."
                )

    def _check_sizes(self):  # the variants check their networks in _check_networks
        pass

    def call(self, inputs, training=False):
        """Reconstruction of x, or of (x, y) with labels (needed by SupervisedAutoencoder)."""
        x, labels = inputs if isinstance(inputs, (tuple, list)) else (inputs, None)
        labels = tf.fill([tf.shape(x)[0]], -1) if labels is None else tf.cast(labels, tf.int32)
        return self.decoder(self._decoder_input(self._parts(x, training), labels), training=training)

    # ------------------------------------------------------------------------ serialization
    def get_config(self):
        config = {
            **super().get_config(),
            self.count_name: self.num_classes,
            "regularizer": self.regularizer,
            "weight": self.weight,
            "discriminator_hidden": list(self.discriminator_hidden),
        }
        if self.adversarial:
            config["discriminators"] = [keras.saving.serialize_keras_object(d) for d in self.discriminators]
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "discriminators" in config:
            config["discriminators"] = [keras.saving.deserialize_keras_object(d) for d in config["discriminators"]]
        return super().from_config(config)


def _labeled_mean(values, labeled):
    """Mean of `values` over the labeled examples of the global batch, as a per-replica value
    whose mean over replicas is that global mean (0 when nothing is labeled)."""
    mask = tf.cast(labeled, tf.float32)
    count = tf.reduce_sum(distribute.gather(tf.reshape(tf.reduce_sum(mask), [1])))
    return distribute.num_replicas() * tf.reduce_sum(values * mask) / tf.maximum(count, 1.0)


def _split_validation(x, y, kwargs):
    """Keras's `validation_split` done by hand: the last fraction of (x, y) becomes
    `validation_data` (fit then builds labeled batches from the rest)."""
    split = kwargs.pop("validation_split", None)
    if not split:
        return x, y, kwargs
    if kwargs.get("validation_data") is not None:
        raise ValueError("Pass validation_split or validation_data, not both.")
    if not 0 < split < 1:
        raise ValueError(f"validation_split must lie strictly between 0 and 1, got {split}.")
    keep = int(len(x) * (1 - split))
    if keep < 1 or keep == len(x):
        raise ValueError(f"validation_split={split} leaves no training or no validation examples of {len(x)}.")
    if not (y[:keep] >= 0).any():
        raise ValueError(f"validation_split={split} leaves no labeled example to train on; lower it.")
    return x[:keep], y[:keep], {**kwargs, "validation_data": (x[keep:], y[keep:])}


def _restored_epoch(callbacks, initial_epoch):
    """The epoch a `keras.callbacks.BackupAndRestore` among `callbacks` will resume from (it
    restores the model in on_train_begin, after fit has built its batches), else `initial_epoch`."""
    for callback in callbacks or []:
        if isinstance(callback, keras.callbacks.BackupAndRestore):
            path = os.path.join(callback.backup_dir, "training_metadata.json")
            try:
                with open(path) as f:
                    return int(json.load(f)["epoch"])
            except (OSError, ValueError, KeyError, TypeError):
                return initial_epoch
    return initial_epoch
