"""The one training core of every autoencoder: encoder, decoder, latent slots and matchers.

A model splits its encoder's output into latent *slots* (the code z; in the paper's variants
also the class y), and each slot has a *matcher* (`aae_keras.matchers`) that pulls it to its
prior: an MMD estimate added to the reconstruction loss, or an adversary. The training phases
are written once, here, for every model, each as `backend.phase(loss_fn, variables, optimizer)`:

1. reconstruction (+ penalties + weight x MMD): encoder, decoder (+ extra weights), `optimizer`;
2. generator (codes labeled real): the encoder, `generator_optimizer`; inside it, on the codes of
   its forward pass (stopped), the discriminator updates, `discriminator_steps` times: the
   adversaries, `discriminator_optimizer` (one encoder pass serves both);
3. classification (semi-supervised models, labeled examples): the encoder, `classifier_optimizer`.

That is the adversarial models' `schedule="paper"` (the paper's variants' default).
`schedule="joint"` (AdversarialAutoencoder's default) makes phases 1 and 2 one forward pass and
two updates taken from it (`backend.current().phases`): encoder and decoder on reconstruction +
generator_weight x generator loss, the adversaries on their loss.

Example:
    >>> from aae_keras import models, networks, priors
    >>> enc, dec, _ = networks.build("mlp", (8, 8), 2, hidden=(64,))
    >>> model = models.MMDAutoencoder(enc, dec, priors.gaussian(2))
    >>> [slot.name for slot in model.slots], [type(m).__name__ for m in model.matchers]
    (['z'], ['MMDMatcher'])
    >>> model.sample(4).shape
    (4, 8, 8)
"""

import contextlib
import re
from typing import NamedTuple

import keras
import numpy as np
from keras import ops

from aae_keras import backend, matchers, networks, priors, regularizers
from aae_keras import data as data_lib
from aae_keras.models.saving import AtomicSaving, image_signature

__all__ = ["LatentAutoencoder", "OPTIMIZER_DEFAULTS", "RECONSTRUCTIONS", "REGULARIZERS", "SCHEDULES", "Slot"]

RECONSTRUCTIONS = ("bce", "mse")
REGULARIZERS = ("mmd", "sample_mmd", "imq_mmd", "adversarial")
SCHEDULES = ("joint", "paper")

# compile's optimizers: name -> (Adam learning rate, beta_1) of its "auto" default
OPTIMIZER_DEFAULTS = {
    "optimizer": (1e-3, 0.9),  # reconstruction (and MMD) phase; also model.optimizer
    "discriminator_optimizer": (5e-4, 0.5),
    "generator_optimizer": (5e-4, 0.5),
    "classifier_optimizer": (1e-3, 0.9),  # the semi-supervised classification phase
}
# In-graph checks fail with "aae_keras[<phase>]: <problem>"; fit and evaluate turn that into a
# ValueError with the message of data.PROBLEMS (phase "train": the training data, "test": the
# validation or evaluation data).
_DATA_CHECK = re.compile(r"aae_keras\[(train|test)\]: ([a-z_]+)")


class Slot(NamedTuple):
    """A latent part: its name, its prior, and whether it is matched per class (label-conditioned)."""

    name: str
    prior: object
    conditional: bool = False


class LatentAutoencoder(AtomicSaving, keras.Model):
    """An encoder, a decoder and a prior; `call(x)` reconstructs x.

    reconstruction: "bce" (binary cross-entropy, for images in [0, 1]) or "mse" (squared
    error), summed over each example's features and averaged over the batch.
    posterior: "deterministic" (the encoder outputs the codes) or "gaussian" (means, then
    log-variances; codes are sampled with the reparameterization trick while training).
    input_noise: the std of Gaussian noise added to the encoder's input while training (in
    every phase; the reconstruction target stays clean), which keeps a semi-supervised
    classifier from memorising its few labels (the paper's variants default to 0.3).
    regularizer: "mmd" (closed form), "sample_mmd", "imq_mmd", "adversarial", or a
    `regularizers.LatentRegularizer` (one-slot models); weight: the MMD weight.
    The adversarial options: `discriminators` (one per slot; default MLPs with
    `discriminator_hidden` units), `instance_noise`, `label_smoothing`, `discriminator_steps`,
    `schedule` ("joint": one update of encoder and decoder on reconstruction +
    `generator_weight` x the generator loss and one discriminator update, from one forward pass,
    two optimizers; "paper": reconstruction, discriminator and generator updates, three
    optimizers, as in the paper; None: the class's `default_schedule`, "joint" for
    AdversarialAutoencoder and "paper" for the paper's variants) and `generator_weight`. A saved
    model without a schedule (from before it existed) loads with "paper", which it was trained
    with.
    """

    labels = "none"  # how fit uses labels: "required", "optional" or "none" (the paper's variants set it)
    default_schedule = "joint"  # of the adversarial models (the paper's variants keep "paper")
    classifies = False  # whether the classification phase runs on labeled examples
    optimizer_defaults = OPTIMIZER_DEFAULTS  # compile's "auto" optimizers: name -> (Adam rate, beta_1)
    penalties = ()  # names of extra losses from `_penalties`

    def __init__(
        self,
        encoder,
        decoder,
        prior,
        regularizer="mmd",
        weight=10.0,
        discriminators=None,
        discriminator_hidden=networks.PAPER_HIDDEN,
        instance_noise=0.0,
        label_smoothing=0.0,
        discriminator_steps=1,
        schedule=None,
        generator_weight=1.0,
        reconstruction="bce",
        posterior="deterministic",
        input_noise=0.0,
        seed=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if reconstruction not in RECONSTRUCTIONS:
            raise ValueError(f"reconstruction must be one of {RECONSTRUCTIONS}, got {reconstruction!r}.")
        if posterior not in ("deterministic", "gaussian"):
            raise ValueError(f'posterior must be "deterministic" or "gaussian", got {posterior!r}.')
        if isinstance(regularizer, str) and regularizer not in REGULARIZERS:
            raise ValueError(f"Unknown regularizer {regularizer!r}; choose one of {', '.join(REGULARIZERS)}.")
        self.encoder, self.decoder, self.prior = encoder, decoder, priors.as_prior(prior)
        self.latent_dim = self.prior.dim
        self.reconstruction, self.posterior, self.seed = reconstruction, posterior, int(seed)
        if not (np.isfinite(input_noise) and input_noise >= 0):
            raise ValueError(
                f"input_noise must be a number >= 0 (the std of the noise added to the encoder's "
                f"input while training), got {input_noise!r}."
            )
        self.input_noise = float(input_noise)
        self.regularizer, self.weight = regularizer, float(weight)
        if schedule is not None and schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}.")
        options = {
            "discriminators": discriminators,
            "instance_noise": instance_noise,
            "label_smoothing": label_smoothing,
            "discriminator_steps": discriminator_steps - 1,
            "schedule": schedule is not None,
            "generator_weight": generator_weight != 1.0,
        }
        schedule = schedule or self.default_schedule
        if not self.adversarial and any(options.values()):
            raise ValueError(
                f"{', '.join(name for name, value in options.items() if value)} apply to "
                f'regularizer="adversarial" only.'
            )
        if int(discriminator_steps) < 1:
            raise ValueError(f"discriminator_steps must be >= 1, got {discriminator_steps}.")
        if schedule == "joint" and int(discriminator_steps) != 1:
            raise ValueError(
                f'schedule="joint"{" (the default)" if self.default_schedule == "joint" else ""} makes '
                'one discriminator update per batch; pass schedule="paper" for discriminator_steps > 1.'
            )
        if not (np.isfinite(generator_weight) and generator_weight > 0):
            raise ValueError(f"generator_weight must be a positive number, got {generator_weight!r}.")
        self.schedule, self.generator_weight = schedule, float(generator_weight)
        self.discriminator_hidden, self.discriminator_steps = tuple(discriminator_hidden), int(discriminator_steps)
        self.instance_noise, self.label_smoothing = float(instance_noise), float(label_smoothing)
        self.slots = self._slots()
        self._check_networks()
        discriminators = list(discriminators or [None] * len(self.slots))
        if len(discriminators) != len(self.slots):
            raise ValueError(f"Pass one discriminator per slot ({len(self.slots)}), got {len(discriminators)}.")
        self.matchers = [self._matcher(slot, d) for slot, d in zip(self.slots, discriminators)]
        self.trackers = [keras.metrics.Mean(name=name) for name in self._log_names()]
        if encoder.built and decoder.built:
            self.built = True

    @property
    def adversarial(self):
        """Whether the slots are matched by adversaries (else by MMD)."""
        return isinstance(self.regularizer, str) and self.regularizer == "adversarial"

    @property
    def discriminators(self):
        """The adversaries' discriminators, one per slot ([] for MMD)."""
        return [matcher.discriminator for matcher in self.matchers if matcher.adversarial]

    @property
    def metrics(self):
        return self.trackers

    # ----------------------------------------------------------------- user-facing numpy API
    def encode(self, x, batch_size=256):
        """Codes for images x (numpy in, numpy out); the posterior mean for a Gaussian one."""
        return self._encoder_outputs(x, batch_size)[:, : self.latent_dim]

    def decode(self, z, batch_size=256):
        """Images for codes z [n, d] (numpy in, numpy out)."""
        z = data_lib.numeric(z, "decode: the codes").astype(np.float32)
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"decode expects codes of shape (n, {self.latent_dim}), got {z.shape}.")
        return self._predict(self.decoder, z, batch_size, "decode")

    def sample(self, n, seed=None):
        """n images decoded from prior samples."""
        z = self.prior.sample(int(n), seed=seed)
        return self.decode(np.asarray(z, np.float32))

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
    def samples_by_class(self):
        """Whether `sample(n, y=c)` draws images of class c, the class of the labels fit used
        (the supervised, semi-supervised and label-conditioned models; not cluster indices)."""
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
            if not isinstance(validation, (tuple, list)):
                kwargs["validation_data"] = backend.current().check_batches(validation, self, False)
        with self._clear_data_errors("validation data"), backend.current().kept_state(self):
            return super().fit(backend.current().check_batches(x, self, True), y, *args, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        """`keras.Model.evaluate`, with the data checked first."""
        _refuse_sample_weights(kwargs)
        # fit runs its validation through evaluate with a private flag, every epoch, on data it
        # has checked already: name that data so, and check it only once
        validating = bool(kwargs.get("_use_cached_eval_dataset"))
        what = "validation data" if validating else "evaluation data"
        if not validating:
            self._check_data(x, what)
            if y is not None and self.uses_labels and isinstance(x, np.ndarray):
                self._check_labels(y, len(x))
            x = backend.current().check_batches(x, self, False)
        with self._clear_data_errors(what), backend.current().kept_state(self):
            return super().evaluate(x, y, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        """`keras.Model.predict` (reconstructions); numpy images holding NaN or inf are refused
        with the index of the first bad value, as `fit`, `encode` and `decode` refuse them."""
        if isinstance(x, np.ndarray):
            data_lib.check_finite(x, what="predict: the images")
        return super().predict(x, *args, **kwargs)

    def _check_data(self, x, what):
        """Check numpy images before Keras sees them (`data.check_images`, then their shape);
        datasets are checked batch by batch in the train step."""
        if isinstance(x, np.ndarray):
            self._check_images(data_lib.check_images(x, what, unit_range=self.reconstruction == "bce"))
        elif isinstance(x, keras.utils.PyDataset) and x.num_batches == 0:  # each backend fails its own way
            raise ValueError(
                f"The {what} is an empty keras.utils.PyDataset (its length is 0): it yields no "
                "batch to train or evaluate on; check its __len__, or pass at least one batch."
            )

    @contextlib.contextmanager
    def _clear_data_errors(self, test_data):
        """Turn the train and test steps' failed data checks into one-line ValueErrors;
        `test_data` names what the test step sees ("validation data" during fit)."""
        try:
            yield
        except Exception as error:  # the backend's error for a failed in-graph check
            found = _DATA_CHECK.search(str(error))
            if not found:
                raise
            what = "The training data" if found.group(1) == "train" else f"The {test_data}"
            raise ValueError(self._data_problems()[found.group(2)].format(what=what)) from None

    def _data_problems(self):
        """{problem: message template} of the in-graph data checks ({what}: which data)."""
        return dict(data_lib.PROBLEMS)

    def _features(self, data, training=True):
        """The images of a batch as float32, checked (see `_inputs`)."""
        return self._inputs(data, training)[0]

    def _image_checks(self, x, xp, where):
        """(condition, message) pairs a batch of images must pass, with `xp` = keras.ops (in the
        step) or numpy (on the host, see `_check_batch`): finite, and in [0, 1] for BCE."""
        checks = [(xp.all(xp.isfinite(x)), f"{where}: non_finite")]
        if self.reconstruction == "bce":
            checks.append((xp.logical_and(xp.min(x) >= 0.0, xp.max(x) <= 1.0), f"{where}: outside_unit_range"))
        return checks

    def _label_checks(self, y, labels, xp, where):
        """(condition, message) pairs of a batch's labels (raw `y`, and `labels` as integers):
        none here (the paper's variants read labels)."""
        return []

    def _check_batch(self, batch, training):
        """The step's data checks run on the host, on a numpy batch (JAX: an error raised inside
        a jitted step would lose the trainer's donated state); raises the in-graph checks' error
        (`_clear_data_errors` words it)."""
        x, y, _ = keras.utils.unpack_x_y_sample_weight(batch)
        where = _where(training)
        checks = self._image_checks(np.asarray(x, np.float32), np, where)
        if y is not None and self.uses_labels:
            y = np.asarray(y).reshape(-1)
            if y.dtype.kind in "iufb":
                checks += self._label_checks(y, y.astype(np.int64), np, where)
        for condition, message in checks:
            if not condition:
                raise ValueError(message)

    # ------------------------------------------------------------------------ compile
    def compile(
        self,
        optimizer="auto",
        discriminator_optimizer="auto",
        generator_optimizer="auto",
        classifier_optimizer="auto",
        ae_optimizer=None,
        **kwargs,
    ):
        """One signature for every model: an optimizer per training phase.

        "auto" (or None) is the class's default (`optimizer_defaults`): Adam(1e-3) for
        `optimizer` (reconstruction and MMD, also `model.optimizer`, so learning-rate callbacks
        act on it), Adam(5e-4, beta_1=0.5) for `discriminator_optimizer` and
        `generator_optimizer`; the semi-supervised and clustering models take Adam(1e-4) for
        every phase (beta_1=0.5 for the adversarial ones). A name such as "adam" or an
        optimizer object is used as given.
        Passing an optimizer for a phase the model does not have is an error;
        `ae_optimizer` is an alias of `optimizer`. Other keywords go to `keras.Model.compile`;
        its `jit_compile="auto"` means XLA on TensorFlow, on CPUs too (Keras's own default turns
        it off there), except under a tf.distribute strategy.

        >>> from aae_keras import models, networks, priors
        >>> enc, dec, _ = networks.build("mlp", (8, 8), 2, hidden=(16,))
        >>> model = models.MMDAutoencoder(enc, dec, priors.gaussian(2))
        >>> model.compile(discriminator_optimizer="adam")
        Traceback (most recent call last):
        ...
        ValueError: MMDAutoencoder has no discriminator_optimizer: it trains with optimizer only; drop that argument.
        """
        given = {
            "optimizer": optimizer,
            "discriminator_optimizer": discriminator_optimizer,
            "generator_optimizer": generator_optimizer,
            "classifier_optimizer": classifier_optimizer,
        }
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
        self._jit_auto = _is_auto(kwargs.get("jit_compile", "auto")) and not kwargs.get("run_eagerly")
        if self._jit_auto:
            kwargs["jit_compile"] = backend.current().jit_default(self)
        made = {name: _optimizer(name, given[name], self.optimizer_defaults) for name in groups}
        for name in OPTIMIZER_DEFAULTS:
            if name != "optimizer":
                setattr(self, name, self._loss_scaled(made[name]) if name in made else None)
        super().compile(optimizer=made["optimizer"], **kwargs)
        phases = {name: self.optimizer if name == "optimizer" else getattr(self, name) for name in groups}
        self.optimizer = backend.current().group_optimizers(self.optimizer, phases, self._optimizer_groups)
        if self.built:  # build every optimizer now (needed under tf.distribute, and to restore)
            for name, variables in groups.items():
                self.phase_optimizer(name).build(variables)

    def phase_optimizer(self, name):
        """The optimizer of phase `name` ("optimizer", "discriminator_optimizer", ...): on JAX
        `model.optimizer` groups them all, and "optimizer" is the reconstruction one inside."""
        if name == "optimizer":
            return getattr(self.optimizer, "primary", self.optimizer)
        return getattr(self, name)

    def get_compile_config(self):
        if not self.compiled:  # saved before compile: loads uncompiled, as Keras's own models do
            return None
        config = dict(super().get_compile_config() or {})
        if getattr(self, "_jit_auto", False):  # the default, resolved again where the model loads
            config["jit_compile"] = "auto"
        config.update(
            {name: keras.saving.serialize_keras_object(self.phase_optimizer(name)) for name in self._optimizer_groups()}
        )
        return config

    def compile_from_config(self, config):
        """Recompile on load (any model's compile config, including the older `ae_optimizer` key),
        building every optimizer so its saved state can be restored."""
        config = dict(config)
        optimizers = {
            name: keras.optimizers.deserialize(config.pop(name))
            for name in (*OPTIMIZER_DEFAULTS, "ae_optimizer")
            if config.get(name) is not None
        }
        rest = {key: value for key, value in keras.saving.deserialize_keras_object(config).items() if value is not None}
        self.compile(**optimizers, **rest)

    # ------------------------------------------------------------- slots (the variants override)
    def _slots(self):
        """The latent slots: here one, the code "z" matched to `prior`."""
        return [Slot("z", self.prior)]

    def _parts(self, x, training=False, seed=None):
        """The latent parts of a batch: a dict with one entry per slot name (and any extras)."""
        return {"z": self._posterior_codes(self._encode_batch(x, training=training, seed=seed), seed)}

    def _decoder_input(self, parts, labels):
        return parts["z"]

    def _penalties(self, parts):
        """Extra losses of the reconstruction phase, by name (see `penalties`)."""
        return {}

    def _extra_variables(self):
        """Trainable weights of the model itself, updated in the reconstruction phase."""
        return []

    def _labels(self, data, x):
        """(the batch's labels as int32 [n], -1 where missing; the raw labels y to check, or None):
        here all missing (the variants read y)."""
        return ops.full([ops.shape(x)[0]], -1, "int32"), None

    def _network_sizes(self):
        """(encoder outputs, decoder inputs) this model needs."""
        return self._code_outputs(), self.latent_dim

    def _output_layout(self):
        """What the encoder outputs, in words (for size errors)."""
        d = self.latent_dim
        return f"{d} means then {d} log-variances" if self.posterior == "gaussian" else f"{d} codes"

    def _matcher(self, slot, discriminator=None):
        """The matcher of `slot`: an `Adversary` or an `MMDMatcher` of the model's regularizer."""
        classes = self.num_classes if slot.conditional else None
        if self.adversarial:
            width = slot.prior.dim + (classes + 1 if classes else 0)
            discriminator = discriminator or networks.mlp_discriminator(
                width, self.discriminator_hidden, f"discriminator_{slot.name}"
            )
            return matchers.Adversary(
                slot.prior,
                discriminator,
                self.instance_noise,
                self.label_smoothing,
                classes,
                name=f"adversary_{slot.name}",
            )
        if isinstance(self.regularizer, regularizers.LatentRegularizer):
            estimate = self.regularizer
            if estimate.dim != slot.prior.dim:
                raise ValueError(
                    f"The regularizer's prior has event size {estimate.dim} but the model's prior has {slot.prior.dim}."
                )
        elif slot.conditional:
            if self.regularizer != "mmd":
                raise ValueError(
                    f'A label-conditioned prior is matched with regularizer="mmd" (per-class closed '
                    f'form) or "adversarial", not {self.regularizer!r}.'
                )
            estimate = regularizers.ConditionalMMD(slot.prior)
        else:
            estimate = regularizers.get(self.regularizer, slot.prior)
        return matchers.MMDMatcher(estimate, name=f"mmd_{slot.name}")

    # ------------------------------------------------------------------------------ training
    def train_step(self, *args):
        """The phases on one batch: `train_step(data)`, or `train_step(state, data)` on JAX."""
        return backend.current().run_step(self, self._train_phases, *args)

    def test_step(self, *args):
        """The held-out logs of one batch: `test_step(data)`, or `test_step(state, data)` on JAX."""
        return backend.current().run_step(self, self._test_logs, *args)

    def make_train_function(self, force=False):
        """Keras's train function; on JAX with `steps_per_execution` > 1, one jitted call per K steps."""
        super().make_train_function(force)
        backend.current().fuse_steps(self)

    def _train_phases(self, data):
        x, labels = self._inputs(data)
        step, groups = self.optimizer.iterations, self._optimizer_groups()
        if self.adversarial and self.schedule == "joint":
            logs = backend.current().phases(
                lambda: self._joint_terms(x, labels, step),
                [
                    (groups["optimizer"], self.phase_optimizer("optimizer")),
                    (groups["discriminator_optimizer"], self.discriminator_optimizer),
                ],
            )
        else:
            logs = backend.phase(
                lambda: self._objective(x, labels, step, training=True)[:2],
                groups["optimizer"],
                self.phase_optimizer("optimizer"),
            )
        if self.adversarial and self.schedule == "paper":
            logs.update(
                backend.phase(
                    lambda: self._adversarial_terms(x, labels, step, groups),
                    groups["generator_optimizer"],
                    self.generator_optimizer,
                )
            )
            logs["loss"] = logs["loss"] + self.generator_weight * logs["generator_loss"]
        if self.classifies:
            logs.update(
                backend.phase(
                    lambda: self._classification_terms(self._parts(x, training=True, seed=self._seed(step, 4)), labels),
                    groups["classifier_optimizer"],
                    self.classifier_optimizer,
                )
            )
        return self._record(logs)

    def _test_logs(self, data):
        x, labels = self._inputs(data, training=False)
        step = self.optimizer.iterations
        _, logs, parts = self._objective(x, labels, step, training=False)
        if self.adversarial:
            logs.update(self._evaluation_terms(parts, labels, step))
            logs["loss"] = logs["loss"] + self.generator_weight * logs["generator_loss"]
        if self.classifies:
            logs.update(self._classification_terms(parts, labels)[1])
        return self._record(logs)

    def _objective(self, x, labels, step, training):
        """(loss, logs, parts) of the reconstruction phase: reconstruction, penalties and, for MMD
        matchers, weight x the summed estimates (logged as "regularizer")."""
        parts = self._parts(x, training=training, seed=self._seed(step, 1) if training else None)
        x_hat = self.decoder(self._decoder_input(parts, labels), training=training)
        logs = {"reconstruction": ops.mean(self.reconstruction_loss(x, x_hat)), **self._penalties(parts)}
        loss = sum(logs.values())
        if not self.adversarial:
            logs["regularizer"] = sum(
                matcher(parts[slot.name], labels, seed=self._seed(step, 2, i))
                for i, (slot, matcher) in enumerate(zip(self.slots, self.matchers))
            )
            loss = loss + self.weight * logs["regularizer"]
        logs["loss"] = loss
        return loss, logs, parts

    def _discriminator_terms(self, parts, labels, step, k):
        """(loss, logs) of discriminator update k: losses summed over the slots, accuracy averaged."""
        loss, accuracy = 0.0, 0.0
        for i, (slot, adversary) in enumerate(zip(self.slots, self.matchers)):
            tag, stream = 9 + 4 * (k % 13), i + 64 * (k // 13)
            seeds = [self._seed(step, tag + j, stream) for j in range(3)]
            slot_loss, slot_accuracy = adversary.discriminator_terms(parts[slot.name], labels, seeds)
            loss, accuracy = loss + slot_loss, accuracy + slot_accuracy / len(self.slots)
        return loss, {"discriminator_loss": loss, "discriminator_accuracy": accuracy}

    def _adversarial_terms(self, x, labels, step, groups):
        """(loss, logs) of the paper schedule's generator update: one encoder pass; on its codes,
        stopped, the `discriminator_steps` discriminator updates; then the generator loss of
        the codes against the updated discriminators."""
        parts = self._parts(x, training=True, seed=self._seed(step, 2))
        stopped = {name: ops.stop_gradient(value) for name, value in parts.items()}
        logs = {}
        for k in range(self.discriminator_steps):
            logs.update(
                backend.phase(
                    lambda: self._discriminator_terms(stopped, labels, step, k),
                    groups["discriminator_optimizer"],
                    self.discriminator_optimizer,
                )
            )
        loss, generator_logs = self._generator_terms(parts, labels, step)
        return loss, {**logs, **generator_logs}

    def _joint_terms(self, x, labels, step):
        """([encoder and decoder loss, discriminator loss], logs) of the joint schedule, from one
        forward pass: reconstruction + generator_weight x generator loss, and the
        discriminators' loss on the codes (stopped)."""
        loss, logs, parts = self._objective(x, labels, step, training=True)
        generator_loss, generator_logs = self._generator_terms(parts, labels, step)
        stopped = {name: ops.stop_gradient(value) for name, value in parts.items()}
        discriminator_loss, discriminator_logs = self._discriminator_terms(stopped, labels, step, 0)
        loss = loss + generator_loss
        return [loss, discriminator_loss], {**logs, **generator_logs, **discriminator_logs, "loss": loss}

    def _generator_terms(self, parts, labels, step):
        """(loss, logs) of the generator: the codes labeled real, summed over the slots (the
        loss is weighted by `generator_weight`, the log is not)."""
        loss = sum(
            adversary.generator_loss(parts[slot.name], labels, self._seed(step, 3, i))
            for i, (slot, adversary) in enumerate(zip(self.slots, self.matchers))
        )
        return self.generator_weight * loss, {"generator_loss": loss}

    def _evaluation_terms(self, parts, labels, step):
        """The adversaries' logs on held-out codes (no noise, no smoothing)."""
        terms = [
            adversary.evaluation_terms(parts[slot.name], labels, self._seed(step, 5, i))
            for i, (slot, adversary) in enumerate(zip(self.slots, self.matchers))
        ]
        return {
            "discriminator_loss": sum(t[0] for t in terms),
            "discriminator_accuracy": sum(t[1] for t in terms) / len(terms),
            "generator_loss": sum(t[2] for t in terms),
        }

    def _classification_terms(self, parts, labels):
        """(loss, logs): cross-entropy and accuracy over the labeled examples (label >= 0)."""
        labeled = labels >= 0
        safe = ops.where(labeled, labels, 0)
        cross_entropy = ops.sparse_categorical_crossentropy(safe, parts["logits"], from_logits=True)
        correct = ops.cast(ops.equal(ops.cast(ops.argmax(parts["logits"], axis=-1), "int32"), safe), "float32")
        loss = _labeled_mean(cross_entropy, labeled)
        return loss, {"classification_loss": loss, "classification_accuracy": _labeled_mean(correct, labeled)}

    def _log_names(self):
        names = ["loss", "reconstruction", *self.penalties]
        names += (
            ["discriminator_loss", "discriminator_accuracy", "generator_loss"] if self.adversarial else ["regularizer"]
        )
        return names + (["classification_loss", "classification_accuracy"] if self.classifies else [])

    def _optimizer_groups(self):
        """{optimizer name: the variables it updates}, for every phase this model trains."""
        encoder = self.encoder.trainable_variables
        groups = {"optimizer": encoder + self.decoder.trainable_variables + self._extra_variables()}
        if self.adversarial:
            groups["discriminator_optimizer"] = [v for d in self.discriminators for v in d.trainable_variables]
            if self.schedule == "paper":
                groups["generator_optimizer"] = encoder
        if self.classifies:
            groups["classifier_optimizer"] = encoder
        return groups

    def _inputs(self, data, training=True):
        """(x, labels) of a batch as float32 images and int32 labels (-1: none), checked together
        before any use, so no phase runs on a batch that fails a check (`_batch_checks`): in the
        step, or before it where the step cannot check (`backend.checks_in_step`: XLA, JAX).
        Sample weights are refused (the latent terms are batch statistics)."""
        x, labels, checks = self._batch_checks(data, training)
        if backend.current().checks_in_step(self):
            return backend.current().checked((x, labels), checks)
        return x, labels

    def _batch_checks(self, data, training):
        """(x as float32, labels as int32, the (condition, message) checks of both) of a batch:
        the images are finite (and in [0, 1] for BCE), the labels in range."""
        x, _, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        _refuse_sample_weights({"sample_weight": sample_weight})
        x = ops.cast(x, "float32")
        labels, y = self._labels(data, x)
        where = _where(training)
        checks = self._image_checks(x, ops, where) + ([] if y is None else self._label_checks(y, labels, ops, where))
        return x, labels, checks

    def _checked_batch(self, batch, training):
        """`batch` once it passes the step's checks, in a TensorFlow graph outside the step (a
        tf.data `map` before an XLA-compiled step)."""
        return backend.current().checked(batch, self._batch_checks(batch, training)[2])

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

    def _encode_batch(self, x, training=False, seed=None):
        """The encoder's raw output for a batch, in float32 (whatever the dtype policy); while
        training with a `seed`, the encoder sees x plus `input_noise` x standard normal noise."""
        if training and self.input_noise and seed is not None:
            n, shape = ops.shape(x)[0], ops.shape(x)
            features = int(np.prod(x.shape[1:]))
            noise_seed = ops.stack([ops.mod(seed[0] + 500_009, 2**31 - 1), seed[1]])  # not a slot's stream
            x = x + self.input_noise * ops.reshape(backend.replica_normal(n, features, noise_seed), shape)
        return ops.cast(self.encoder(x, training=training), "float32")

    def _posterior_codes(self, outputs, seed=None):
        """Codes from the encoder's code outputs: the outputs themselves (deterministic) or, for a
        Gaussian posterior (means, then log-variances), the means, or a reparameterized sample
        when `seed` is given."""
        if self.posterior == "deterministic":
            return outputs
        d = self.latent_dim
        mean, log_var = outputs[:, :d], outputs[:, d:]
        if seed is None:
            return mean
        return mean + ops.exp(0.5 * log_var) * backend.replica_normal(ops.shape(outputs)[0], d, seed)

    def _code_outputs(self):
        """How many encoder outputs the code takes: d, or 2d for a Gaussian posterior."""
        return self.latent_dim * (2 if self.posterior == "gaussian" else 1)

    def _codes(self, x, training=False, seed=None):
        """The codes z of a batch (the means for a Gaussian posterior unless `seed` is given)."""
        return self._parts(x, training=training, seed=seed)["z"]

    def call(self, inputs, training=False):
        """Reconstruction of x, or of (x, labels) (needed by SupervisedAutoencoder)."""
        x, labels = inputs if isinstance(inputs, (tuple, list)) else (inputs, None)
        labels = ops.full([ops.shape(x)[0]], -1, "int32") if labels is None else ops.cast(labels, "int32")
        return self.decoder(self._decoder_input(self._parts(x, training=training), labels), training=training)

    def _loss_scaled(self, optimizer):
        """`optimizer` wrapped in a LossScaleOptimizer under the mixed_float16 policy (as Keras's
        compile does for `model.optimizer`), so float16 gradients do not underflow."""
        if self.dtype_policy.name == "mixed_float16" and not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            return keras.optimizers.LossScaleOptimizer(optimizer)
        return optimizer

    def _seed(self, step, tag, stream=0):
        """A stateless [2] seed for this step, purpose (`tag` < 64) and stream (a slot), the same
        on every replica."""
        counter = ops.mod(ops.cast(step, "int32") * 64 + tag, 2**31 - 1)  # int32: JAX's default integers
        first = (self.seed + 1_000_003 * stream) % (2**31 - 1)
        return ops.stack([ops.convert_to_tensor(first, "int32"), counter])

    def _record(self, logs):
        """Update the metric trackers named in `logs`; return the results for Keras."""
        trackers = {m.name: m for m in self.metrics}
        for name, value in logs.items():
            trackers[name].update_state(value)
        return backend.current().step_logs({m.name: m.result() for m in self.metrics})

    def _encoder_outputs(self, x, batch_size):
        """The encoder's outputs for numpy images x (checked), float32."""
        x = self._check_images(data_lib.numeric(x, "the images").astype(np.float32))
        return self._predict(self.encoder, x, batch_size, "encode")

    def _predict(self, network, inputs, batch_size, what):
        """network(inputs) in batches, numpy float32; a clear error for no inputs.

        The network is called directly rather than through `predict`: no per-call data
        pipeline (150 ms for a handful of images) and no traced function to retrace when
        the number of inputs changes."""
        if len(inputs) == 0:
            raise ValueError(f"{what} got no examples (an array of shape {inputs.shape}); pass at least one.")
        data_lib.check_finite(inputs, what=f"{what}: the input")  # refused, as fit does, not decoded to NaN
        batch_size = max(1, int(batch_size))
        outputs = [
            network(inputs[start : start + batch_size], training=False) for start in range(0, len(inputs), batch_size)
        ]
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

    def _check_networks(self):
        encoder_outputs, decoder_inputs = self._network_sizes()
        if self.encoder.built and self.encoder.output_shape[-1] != encoder_outputs:
            got = self.encoder.output_shape[-1]
            raise ValueError(
                f"{type(self).__name__} needs an encoder with {encoder_outputs} outputs, got {got}: the encoder "
                f"outputs {got} values per example but the prior has event size {self.latent_dim}, so it must output "
                f"{encoder_outputs} ({self._output_layout()}){self._how_to_build()}."
            )
        if self.decoder.built and self.decoder.input_shape[-1] != decoder_inputs:
            raise ValueError(
                f"{type(self).__name__} needs a decoder with {decoder_inputs} inputs: the decoder takes "
                f"{self.decoder.input_shape[-1]} inputs but the prior has event size {self.latent_dim}"
                f"{self._how_to_build()}."
            )

    def _how_to_build(self):
        return ""

    def serving_signature(self):
        """What Keras's `model.export` serves: the reconstruction of a float32 image batch `x`."""
        if not self.encoder.built:
            raise ValueError("The model's encoder is not built: train the model or call it on data before export.")
        return image_signature(self.encoder.input_shape[1:])

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
        config = {
            "name": self.name,
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "prior": priors.to_config(self.prior),
            "reconstruction": self.reconstruction,
            "posterior": self.posterior,
            "seed": self.seed,
            "regularizer": self.regularizer
            if isinstance(self.regularizer, str)
            else keras.saving.serialize_keras_object(self.regularizer),
            "weight": self.weight,
        }
        if self.input_noise:  # (absent when 0, and from files saved before it existed)
            config["input_noise"] = self.input_noise
        if self.adversarial:
            config.update(
                discriminators=[keras.saving.serialize_keras_object(d) for d in self.discriminators],
                discriminator_hidden=list(self.discriminator_hidden),
                instance_noise=self.instance_noise,
                label_smoothing=self.label_smoothing,
                discriminator_steps=self.discriminator_steps,
                schedule=self.schedule,
                generator_weight=self.generator_weight,
            )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("encoder", "decoder", "discriminator", "regularizer"):
            if isinstance(config.get(key), dict):
                config[key] = keras.saving.deserialize_keras_object(config[key])
        if "discriminators" in config:
            config["discriminators"] = [keras.saving.deserialize_keras_object(d) for d in config["discriminators"]]
        config["prior"] = priors.from_config(config["prior"])
        if "discriminators" in config or "discriminator" in config:
            config.setdefault("schedule", "paper")  # saved before schedules existed: trained so
        config.setdefault("input_noise", 0.0)  # written when nonzero; files from before it trained without
        return cls(**config)


def _where(training):
    """The tag of the in-graph checks' messages: "aae_keras[train]" or "aae_keras[test]"."""
    return f"aae_keras[{'train' if training else 'test'}]"


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


def _optimizer(name, value, defaults):
    """The optimizer compile makes for `name` from "auto"/None (`defaults[name]`: Adam's rate and
    beta_1), a name ("adam") or an object."""
    if _is_auto(value):
        rate, beta_1 = defaults[name]
        return keras.optimizers.Adam(rate, beta_1=beta_1)
    try:
        return keras.optimizers.get(value)
    except ValueError as error:
        raise ValueError(
            f'{name}={value!r} is not an optimizer: pass "auto", a name such as "adam" or a '
            f"keras.optimizers.Optimizer ({error})."
        ) from None


def _labeled_mean(values, labeled):
    """Mean of `values` over the labeled examples of the global batch, as a per-replica value
    whose mean over replicas is that global mean (0 when nothing is labeled)."""
    local = backend.current()
    mask = ops.cast(labeled, "float32")
    count = ops.sum(local.gather(ops.reshape(ops.sum(mask), [1])))
    return local.num_replicas() * ops.sum(values * mask) / ops.maximum(count, 1.0)
