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

import contextlib
import re

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from aae_keras import data as data_lib
from aae_keras import distribute, priors

__all__ = ["LatentAutoencoder", "OPTIMIZER_DEFAULTS", "RECONSTRUCTIONS"]

RECONSTRUCTIONS = ("bce", "mse")
# compile's optimizers: name -> (Adam learning rate, beta_1) of its "auto" default
OPTIMIZER_DEFAULTS = {
    "optimizer": (1e-3, 0.9),  # reconstruction (and MMD) phase; also model.optimizer
    "discriminator_optimizer": (5e-4, 0.5),
    "generator_optimizer": (5e-4, 0.5),
    "classifier_optimizer": (1e-3, 0.9),  # the semi-supervised classification phase
}
# In-graph checks fail with "aae_keras[<phase>]: <problem>"; fit and evaluate turn that into a
# ValueError with the message below (phase "train": the training data, "test": the validation
# or evaluation data).
_DATA_CHECK = re.compile(r"aae_keras\[(train|test)\]: ([a-z_]+)")
_DATA_PROBLEMS = {
    "non_finite": "{what} contains non-finite values (NaN or inf); clean or drop them "
    "(aae_keras.data.check_finite finds them).",
    "outside_unit_range": "{what} holds values outside [0, 1], which the binary cross-entropy "
    'reconstruction cannot fit; scale the images to [0, 1] (e.g. x / 255 for uint8 images, as '
    'aae_keras.data.from_arrays does) or build the model with reconstruction="mse".',
}


class LatentAutoencoder(keras.Model):
    """An encoder, a decoder and a prior; `call(x)` reconstructs x.

    reconstruction: "bce" (binary cross-entropy, for images in [0, 1]) or "mse" (squared
    error), summed over each example's features and averaged over the batch.
    posterior: "deterministic" (encoder outputs d codes) or "gaussian" (encoder outputs 2d:
    means, then log-variances; codes are sampled with the reparameterization trick).
    """

    labels = "none"  # how fit uses labels: "required", "optional" or "none" (the paper's variants set it)

    def __init__(
        self, encoder, decoder, prior, reconstruction="bce", posterior="deterministic", seed=0, **kwargs
    ):
        super().__init__(**kwargs)
        if reconstruction not in RECONSTRUCTIONS:
            raise ValueError(f"reconstruction must be one of {RECONSTRUCTIONS}, got {reconstruction!r}.")
        if posterior not in ("deterministic", "gaussian"):
            raise ValueError(f'posterior must be "deterministic" or "gaussian", got {posterior!r}.')
        self.encoder, self.decoder, self.prior = encoder, decoder, priors.as_prior(prior)
        self.latent_dim = self.prior.dim
        self.reconstruction, self.posterior, self.seed = reconstruction, posterior, int(seed)
        self._check_sizes()
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction")
        if encoder.built and decoder.built:
            self.built = True

    # ----------------------------------------------------------------- user-facing numpy API
    def encode(self, x, batch_size=256):
        """Codes for images x (numpy in, numpy out); the posterior mean for a Gaussian one."""
        return self._encoder_outputs(x, batch_size)[:, : self.latent_dim]

    def decode(self, z, batch_size=256):
        """Images for codes z [n, d] (numpy in, numpy out)."""
        z = _numeric(z, "decode: the codes").astype(np.float32)
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"decode expects codes of shape (n, {self.latent_dim}), got {z.shape}.")
        return self._predict(self.decoder, z, batch_size, "decode")

    def sample(self, n, seed=None):
        """n images decoded from prior samples."""
        z = self.prior.sample(int(n), seed=seed)
        return self.decode(np.asarray(z, np.float32))

    def call(self, x, training=False):
        return self.decoder(self._codes(x, training=training), training=training)

    # --------------------------------------------------------------------------- capabilities
    @property
    def uses_labels(self):
        """Whether `fit(x, y)` and `evaluate(x, y)` use labels y (False: they are ignored)."""
        return self.labels != "none"

    @property
    def codes_match_prior(self):
        """Whether `encode(x)` gives the codes matched to `prior`, to compare with it (False
        for the dimensionality-reduction map y W + z)."""
        return True

    @property
    def decoder_takes_class(self):
        """Whether the decoder takes [one-hot class, code]: `decode(z, y)` (False: `decode(z)`)."""
        return False

    @property
    def figures(self):
        """Names of the figures that show this model, as `aae-keras train` draws them:
        "latent" (codes over the prior) and "samples" (decoded prior samples), plus
        "style_grid" and "clusters" where the model has them."""
        return ("latent", "samples")

    def task_metrics(self, x, y):
        """Metrics of the model's task on images x with true labels y, as a dict of floats:
        none here; classification, clustering or class-component scores in the variants."""
        return {}

    def check_latents(self, n=4, seed=0):
        """Fixed decoder inputs for checking saved weights: (codes [n, d] float32, classes:
        n ints for a decoder that takes a class, else None). Presets store their outputs."""
        z = np.asarray(self.prior.sample(n, seed=np.array([seed, 11], np.int32)), np.float32)
        labels = (np.arange(n) % self.num_classes).tolist() if self.decoder_takes_class else None
        return z, labels

    def decoder_metadata(self):
        """What running the bare decoder needs besides the latent size and the prior (exports
        record it): {} here; the dimensionality-reduction model adds its cluster heads."""
        return {}

    # ------------------------------------------------------------------- fit and evaluate
    def fit(self, x=None, y=None, *args, **kwargs):
        """`keras.Model.fit`, with the data checked first (see `_check_data`)."""
        _refuse_sample_weights(kwargs)
        self._check_data(x, "training data")
        validation = kwargs.get("validation_data")
        if validation is not None:
            self._check_data(validation[0] if isinstance(validation, (tuple, list)) else validation, "validation data")
        with self._clear_data_errors("validation data"):
            return super().fit(x, y, *args, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        """`keras.Model.evaluate`, with the data checked first."""
        _refuse_sample_weights(kwargs)
        # fit runs its validation through evaluate with a private flag, every epoch, on data it
        # has checked already: name that data so, and check it only once
        validating = bool(kwargs.get("_use_cached_eval_dataset"))
        what = "validation data" if validating else "evaluation data"
        if not validating:
            self._check_data(x, what)
        with self._clear_data_errors(what):
            return super().evaluate(x, y, *args, **kwargs)

    def _check_data(self, x, what):
        """Check numpy images before Keras sees them: shape, non-empty, finite, and in [0, 1]
        for the BCE reconstruction (datasets are checked batch by batch in the train step)."""
        if not isinstance(x, np.ndarray):
            return
        x = self._check_images(_numeric(x, what))
        if len(x) == 0:
            raise ValueError(f"The {what} is empty (shape {x.shape}); pass at least one example.")
        data_lib.check_finite(x, what=f"The {what}")
        if self.reconstruction == "bce" and (x.min() < 0 or x.max() > 1):
            raise ValueError(
                _DATA_PROBLEMS["outside_unit_range"].format(what=f"The {what} (values {x.min()}..{x.max()})")
            )

    @contextlib.contextmanager
    def _clear_data_errors(self, test_data):
        """Turn the train and test steps' failed data checks into one-line ValueErrors;
        `test_data` names what the test step sees ("validation data" during fit)."""
        try:
            yield
        except tf.errors.InvalidArgumentError as error:
            found = _DATA_CHECK.search(str(error))
            if not found:
                raise
            what = "The training data" if found.group(1) == "train" else f"The {test_data}"
            raise ValueError(self._data_problems()[found.group(2)].format(what=what)) from None

    def _data_problems(self):
        """{problem: message template} of the in-graph data checks ({what}: which data)."""
        return dict(_DATA_PROBLEMS)

    def _features(self, data, training=True):
        """The images of a batch as float32, checked in the graph: finite, and in [0, 1] for the
        BCE reconstruction. Sample weights are refused (the latent terms are batch statistics)."""
        x, _, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        _refuse_sample_weights({"sample_weight": sample_weight})
        x = tf.cast(x, tf.float32)
        phase = "train" if training else "test"
        checks = [tf.debugging.assert_all_finite(x, f"aae_keras[{phase}]: non_finite")]
        if self.reconstruction == "bce":
            inside = tf.logical_and(tf.reduce_min(x) >= 0.0, tf.reduce_max(x) <= 1.0)
            checks.append(tf.debugging.Assert(inside, [f"aae_keras[{phase}]: outside_unit_range"]))
        with tf.control_dependencies(checks):
            return tf.identity(x)

    # ------------------------------------------------------------------------ compile
    def compile(self, optimizer="auto", discriminator_optimizer="auto", generator_optimizer="auto",
                classifier_optimizer="auto", ae_optimizer=None, **kwargs):
        """One signature for every model: an optimizer per training phase.

        "auto" (or None) is the default: Adam(1e-3) for `optimizer` (reconstruction and MMD,
        also `model.optimizer`, so learning-rate callbacks act on it) and
        `classifier_optimizer`, Adam(5e-4, beta_1=0.5) for `discriminator_optimizer` and
        `generator_optimizer`. A name such as "adam" or an optimizer object is used as given.
        Passing an optimizer for a phase the model does not have is an error;
        `ae_optimizer` is an alias of `optimizer`. Other keywords go to `keras.Model.compile`.

        >>> from aae_keras import models, networks, priors
        >>> enc, dec, _ = networks.build("mlp", (8, 8), 2, hidden=(16,))
        >>> model = models.MMDAutoencoder(enc, dec, priors.gaussian(2))
        >>> model.compile(discriminator_optimizer="adam")
        Traceback (most recent call last):
        ...
        ValueError: MMDAutoencoder has no discriminator_optimizer: it trains with optimizer only; drop that argument.
        """
        given = {"optimizer": optimizer, "discriminator_optimizer": discriminator_optimizer,
                 "generator_optimizer": generator_optimizer, "classifier_optimizer": classifier_optimizer}
        if ae_optimizer is not None:
            if not _is_auto(optimizer):
                raise ValueError("Pass optimizer= or its alias ae_optimizer=, not both.")
            given["optimizer"] = ae_optimizer
        groups = self._optimizer_groups()
        unused = [name for name, value in given.items() if name not in groups and not _is_auto(value)]
        if unused:
            raise ValueError(
                f"{type(self).__name__} has no {' or '.join(unused)}: it trains with {', '.join(groups)} only; "
                "drop that argument."
            )
        made = {name: _optimizer(name, given[name]) for name in groups}
        for name in OPTIMIZER_DEFAULTS:
            if name != "optimizer":
                setattr(self, name, self._loss_scaled(made[name]) if name in made else None)
        super().compile(optimizer=made["optimizer"], **kwargs)
        if self.built:  # build every optimizer now (needed under tf.distribute, and to restore)
            for name, variables in groups.items():
                getattr(self, name).build(variables)

    def get_compile_config(self):
        config = dict(super().get_compile_config() or {})
        config.update({name: keras.saving.serialize_keras_object(getattr(self, name)) for name in self._optimizer_groups()})
        return config

    def compile_from_config(self, config):
        """Recompile on load (any model's compile config, including the older `ae_optimizer` key),
        building every optimizer so its saved state can be restored."""
        config = dict(config)
        optimizers = {name: keras.optimizers.deserialize(config.pop(name))
                      for name in (*OPTIMIZER_DEFAULTS, "ae_optimizer") if config.get(name) is not None}
        rest = {key: value for key, value in keras.saving.deserialize_keras_object(config).items() if value is not None}
        self.compile(**optimizers, **rest)

    def _optimizer_groups(self):
        """{optimizer name: the variables it updates}, for every phase this model trains."""
        return {"optimizer": self._autoencoder_variables()}

    def _autoencoder_variables(self):
        return self.encoder.trainable_variables + self.decoder.trainable_variables

    # ------------------------------------------------------------------------ training pieces
    def reconstruction_loss(self, x, x_hat):
        """Per-example reconstruction loss [n] in float32: features summed."""
        x, x_hat = ops.cast(x, "float32"), ops.cast(x_hat, "float32")
        if self.reconstruction == "bce":
            x_hat = ops.clip(x_hat, 1e-7, 1.0 - 1e-7)
            per_feature = -(x * ops.log(x_hat) + (1.0 - x) * ops.log(1.0 - x_hat))
        else:
            per_feature = ops.square(x - x_hat)
        return ops.sum(ops.reshape(per_feature, (ops.shape(x)[0], -1)), axis=1)

    def _encode_batch(self, x, training=False):
        """The encoder's raw output for a batch, in float32 (whatever the dtype policy)."""
        return ops.cast(self.encoder(x, training=training), "float32")

    def _codes(self, x, training=False, seed=None):
        """Codes from the encoder; for a Gaussian posterior, sampled when `seed` is given."""
        out = self._encode_batch(x, training=training)
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

    @staticmethod
    def _scaled(optimizer, loss):
        """The loss a phase differentiates: divided by the replica count (gradients are summed
        across replicas) and scaled by `optimizer`'s loss scale (mixed_float16)."""
        return optimizer.scale_loss(distribute.scale_loss(loss))

    def _loss_scaled(self, optimizer):
        """`optimizer` wrapped in a LossScaleOptimizer under the mixed_float16 policy (as Keras's
        compile does for `model.optimizer`), so float16 gradients do not underflow."""
        if self.dtype_policy.name == "mixed_float16" and not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            return keras.optimizers.LossScaleOptimizer(optimizer)
        return optimizer

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

    def _encoder_outputs(self, x, batch_size):
        """The encoder's outputs for numpy images x (checked), float32."""
        x = self._check_images(_numeric(x, "the images").astype(np.float32))
        return self._predict(self.encoder, x, batch_size, "encode")

    def _predict(self, network, inputs, batch_size, what):
        """network(inputs) in batches, numpy float32; a clear error for no inputs.

        The network is called directly rather than through `predict`: no per-call data
        pipeline (150 ms for a handful of images) and no traced function to retrace when
        the number of inputs changes."""
        if len(inputs) == 0:
            raise ValueError(f"{what} got no examples (an array of shape {inputs.shape}); pass at least one.")
        batch_size = max(1, int(batch_size))
        outputs = [network(inputs[start : start + batch_size], training=False) for start in range(0, len(inputs), batch_size)]
        return np.concatenate([np.asarray(ops.convert_to_numpy(out), np.float32) for out in outputs], axis=0)

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


def _numeric(x, what):
    """`x` as a numpy array, or a clear error for non-numeric input."""
    x = np.asarray(x)
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise ValueError(f"{what} must be numeric, got an array of dtype {x.dtype}.")
    return x


def _refuse_sample_weights(kwargs):
    """aae-keras models have no per-example weighting: refuse sample_weight / class_weight."""
    given = [name for name in ("sample_weight", "class_weight") if kwargs.get(name) is not None]
    if given:
        raise ValueError(
            f"aae-keras models do not support {' or '.join(given)}: the MMD and adversarial terms "
            "are statistics of the whole batch, so examples cannot be weighted one by one. Drop it, "
            "or repeat (or subsample) examples to change their weight."
        )


def _is_auto(value):
    return value is None or (isinstance(value, str) and value == "auto")


def _optimizer(name, value):
    """The optimizer compile makes for `name` from "auto"/None, a name ("adam") or an object."""
    if _is_auto(value):
        rate, beta_1 = OPTIMIZER_DEFAULTS[name]
        return keras.optimizers.Adam(rate, beta_1=beta_1)
    try:
        return keras.optimizers.get(value)
    except ValueError as error:
        raise ValueError(f"{name}={value!r} is not an optimizer: pass \"auto\", a name such as \"adam\" or a "
                         f"keras.optimizers.Optimizer ({error}).") from None
