"""The training pipeline shared by `aae-keras train` and `aae-keras zoo build`.

`TrainSettings` holds what a run takes, one field per `aae-keras train` flag; a zoo recipe's
`"train"` list is those flags (`TrainSettings.from_argv`). `train(settings)` is all of
`aae-keras train`: check the settings, load the data and labels, build the model, fit it
(stopping with `callbacks.NonFiniteError` once the loss or a weight turns NaN or inf),
evaluate it, and write model.keras, metrics.json and the figures into the run directory.
`zoo build` uses the same steps (`TrainSettings.checked`, `prepare_training`,
`fit_and_evaluate`) and writes a preset instead.

Only modules that load without TensorFlow are imported at the top, so settings that do not
fit together, and a run directory that cannot be written, are refused at once.

Example:
    >>> from aae_keras import runs
    >>> settings = runs.TrainSettings(model="clustering").checked()
    >>> settings.prior, settings.regularizer, settings.epochs, settings.directory()
    ('gaussian', 'mmd', 200, 'aae_runs/clustering_mmd_digits')
    >>> runs.TrainSettings.from_argv(["--model", "supervised", "--clusters", "3"]).checked()
    Traceback (most recent call last):
    ...
    aae_keras.runs.UsageError: --clusters applies to clustering and dim_reduction, not supervised.
"""

import argparse
import contextlib
import dataclasses
import json
import math
import os
import shutil
import sys
import tempfile
import time
from typing import NamedTuple, Optional, Tuple

import numpy as np

from aae_keras import data, distribute, files

__all__ = [
    "TrainSettings",
    "Run",
    "UsageError",
    "train",
    "prepare_training",
    "fit_and_evaluate",
    "make_prior",
    "make_model",
    "training_labels",
    "code_metrics",
    "evaluate",
    "write_plots",
    "sample_seed",
    "hardware",
    "check_writable",
    "backed_up",
    "unfinished_command",
    "train_parser",
    "add_train_arguments",
    "add_data_arguments",
    "positive_int",
]

MODELS = ("mmd", "sample_mmd", "imq_mmd", "adversarial")
VARIANTS = {  # --model -> (class name in aae_keras.models, default --prior)
    "label_conditioned": ("LabelConditionedAutoencoder", "ring"),
    "supervised": ("SupervisedAutoencoder", "gaussian"),
    "semi_supervised": ("SemiSupervisedAutoencoder", "gaussian"),
    "clustering": ("ClusteringAutoencoder", "gaussian"),
    "dim_reduction": ("DimReductionAutoencoder", "gaussian"),
}
DEFAULT_CLUSTERS = {"clustering": 16, "dim_reduction": 20}
PRIORS = ("ring", "gaussian", "mixture", "uniform", "swiss_roll")
TWO_D_PRIORS = ("ring", "swiss_roll")
NETWORKS = ("mlp", "conv")
REGULARIZERS = ("mmd", "adversarial")  # of the paper's variants
SCHEDULES = ("joint", "paper")  # the adversarial models' (models.base.SCHEDULES; runs imports no Keras)
DEFAULT_EPOCHS = {"digits": 200, "mnist": 20, "fashion_mnist": 20}
VALIDATION_SIZE = 5000  # training images held out for --patience when --validation is not given
MODE_RADIUS = 1.5  # a test code "sits on a mode" when it is this close to a mixture mean
NUM_SAMPLES = 100  # decoded prior samples in samples.png
BACKUP_DIR = "backup"  # inside --out: the state of an unfinished run (callbacks.ResumeFromBackup)
COMMAND_FILE = "command.json"  # inside BACKUP_DIR: the settings of the run it belongs to
MMD_BATCH = 2000  # test codes used for the code-to-prior MMD (its cost is quadratic)
TASK_METRICS = ("classification_error", "cluster_accuracy", "nmi", "codes_on_class_component")


# --patience: the validation loss must fall by at least this much to count as an improvement
# (TensorFlow's evaluate of the same weights varies by about 1e-5 from one run to the next)
MIN_IMPROVEMENT = 1e-4


class UsageError(ValueError):
    """Settings that do not fit together, or a place that cannot be written (the command
    line reports it like an argparse error, exit code 2)."""


@dataclasses.dataclass
class TrainSettings:
    """What a training run takes: one field per `aae-keras train` flag, with its default.

    None means "the default for the other settings": `checked()` fills in `regularizer`,
    `prior` and `epochs`; `directory()` is `out` or aae_runs/<model>_<prior or
    regularizer>_<dataset>.
    """

    model: str = "mmd"
    regularizer: Optional[str] = None
    labels: Optional[int] = None
    clusters: Optional[int] = None
    prior: Optional[str] = None
    dataset: str = "digits"
    data_dir: Optional[str] = None
    latent_dim: int = 2
    epochs: Optional[int] = None
    batch_size: int = 100
    network: str = "mlp"
    hidden: Tuple[int, ...] = (256, 256)
    weight: float = 100.0
    schedule: Optional[str] = None
    patience: Optional[int] = None
    min_epochs: int = 0
    validation: Optional[int] = None
    lr: Optional[float] = None
    input_noise: Optional[float] = None
    strategy: str = "auto"
    seed: int = 0
    out: Optional[str] = None
    overwrite: bool = False
    verbose: Optional[int] = None

    @classmethod
    def from_argv(cls, argv):
        """Settings from `aae-keras train` arguments (a recipe's "train" list); a bad flag
        exits with argparse's usage error."""
        return cls.from_namespace(train_parser().parse_args(list(argv)))

    @classmethod
    def from_namespace(cls, namespace):
        """Settings from parsed `aae-keras train` arguments (other attributes are ignored)."""
        return cls(**{field.name: getattr(namespace, field.name) for field in dataclasses.fields(cls)})

    def checked(self):
        """A copy with the defaults that depend on other settings filled in; raises UsageError
        for settings that do not apply together. Needs neither TensorFlow nor the data."""
        choices = {
            "model": MODELS + tuple(VARIANTS),
            "regularizer": (None, *REGULARIZERS),
            "prior": (None, *PRIORS),
            "dataset": data.KNOWN_DATASETS,
            "network": NETWORKS,
            "strategy": distribute.STRATEGIES,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise UsageError(
                    f"{name} {getattr(self, name)!r} is not one of: "
                    f"{', '.join(str(a) for a in allowed if a is not None)}."
                )
        variant = self.model in VARIANTS
        if not variant and (self.regularizer or self.labels or self.clusters):
            raise UsageError(
                f"--regularizer, --labels and --clusters apply to the paper's variants ({', '.join(VARIANTS)}); "
                "for the core models pick the regularizer with --model."
            )
        if self.clusters and self.model not in DEFAULT_CLUSTERS:
            raise UsageError(f"--clusters applies to {' and '.join(DEFAULT_CLUSTERS)}, not {self.model}.")
        if self.labels and self.model in ("supervised", "clustering"):
            raise UsageError(
                f"--labels does not apply to {self.model}: supervised uses every label and clustering none; "
                "use --model semi_supervised."
            )
        regularizer = self.regularizer or ("mmd" if variant else None)
        if self.input_noise is not None and not (math.isfinite(self.input_noise) and self.input_noise >= 0):
            raise UsageError(f"--input-noise must be a number >= 0 (a standard deviation), got {self.input_noise}.")
        if self.schedule is not None and "adversarial" not in (self.model, regularizer):
            raise UsageError(
                "--schedule applies to adversarial models (--model adversarial, or a variant with "
                "--regularizer adversarial)."
            )
        prior = self.prior or (VARIANTS[self.model][1] if variant else "ring")
        if self.model == "label_conditioned" and prior not in ("ring", "mixture"):
            raise UsageError("--model label_conditioned needs a mixture prior: --prior ring or mixture.")
        if variant and prior == "swiss_roll" and regularizer == "mmd":
            raise UsageError("the swiss roll prior has no closed-form MMD; use --regularizer adversarial.")
        if self.model == "mmd" and prior == "swiss_roll":
            raise UsageError(
                "--model mmd uses the closed-form MMD, which the swiss roll prior does not have; "
                "use --model sample_mmd, imq_mmd or adversarial."
            )
        if prior in TWO_D_PRIORS and self.latent_dim != 2:
            raise UsageError(
                f"--prior {prior} is 2-D, so it needs --latent-dim 2 (got {self.latent_dim}); use "
                "--prior mixture for 10 Gaussian modes in any dimension."
            )
        epochs = self.epochs or DEFAULT_EPOCHS[self.dataset]
        if self.min_epochs > epochs:
            raise UsageError(
                f"--min-epochs {self.min_epochs} is more than --epochs {epochs}; --epochs is the most "
                "an early-stopped run trains."
            )
        validation = self.validation if self.validation is not None else (VALIDATION_SIZE if self.patience else 0)
        if self.patience and not validation:
            raise UsageError(
                "--patience watches the validation loss, so it needs held-out images: drop "
                f"--validation 0 (default with --patience: {VALIDATION_SIZE})."
            )
        return dataclasses.replace(self, regularizer=regularizer, prior=prior, epochs=epochs, validation=validation)

    def directory(self):
        """The run directory: `out`, else aae_runs/<model>_<prior, or regularizer for the
        paper's variants>_<dataset> (call on checked settings)."""
        setting = self.regularizer if self.model in VARIANTS else self.prior
        return self.out or os.path.join("aae_runs", f"{self.model}_{setting}_{self.dataset}")


class Run(NamedTuple):
    """What `train` made: the fitted model, its results (as in metrics.json), the run
    directory and the names of the files written there."""

    model: object
    results: dict
    directory: str
    files: list


# ------------------------------------------------------------------------------- pipeline
def train(settings):
    """Check `settings`, train, evaluate, and write model.keras, metrics.json and the figures
    (`write_plots`) into `settings.directory()`; returns a `Run`.

    The run directory is checked before TensorFlow and the data load: it must be empty (or
    `overwrite` set) and writable. A run that diverges writes nothing.
    """
    start = time.perf_counter()
    settings = settings.checked()
    out = settings.directory()
    command = _command(settings)
    resuming = _check_out_dir(out, settings.overwrite, command)
    prior, dataset, labels = prepare_training(settings)
    print(
        f"{'Resuming' if resuming else 'Training'} {settings.model} autoencoder with the {settings.prior} prior on "
        f"{settings.dataset} ({len(dataset.x_train)} images, {settings.epochs} epochs) -> {out}"
    )
    with backed_up(out, command, fresh=not resuming) as backup:
        model, results = fit_and_evaluate(settings, prior, dataset, labels, backup=backup)
        model.save(os.path.join(out, "model.keras"))
        written = ["model.keras", "metrics.json", *write_plots(model, dataset, out, settings.seed)]
        results["seconds"] = time.perf_counter() - start
        results["dataset"] = data.provenance(dataset)
        results["args"] = dataclasses.asdict(settings)
        results["hardware"] = hardware()
        with files.atomic_path(os.path.join(out, "metrics.json")) as tmp, open(tmp, "w") as f:
            json.dump(results, f, indent=2, allow_nan=False)
            f.write("\n")
    return Run(model, results, out, written)


@contextlib.contextmanager
def backed_up(out, command, fresh=True):
    """The backup folder (`BACKUP_DIR`) of a run writing into `out`, for the block that trains
    and writes the outputs, with `command` (what makes a run the same one) recorded in it.

    `fresh` discards the state of an earlier run there first. The folder is removed when the
    block ends, and after a divergence (`callbacks.NonFiniteError`: resuming would diverge
    again) or an error before the first epoch completed, with `out` itself if nothing else is
    in it; an interruption after that (Ctrl-C, a kill, any other error) keeps it, so the same
    command resumes from the last completed epoch."""
    from aae_keras.callbacks import NonFiniteError

    backup = os.path.join(out, BACKUP_DIR)
    created = not os.path.exists(out)
    if fresh:
        shutil.rmtree(backup, ignore_errors=True)
    os.makedirs(backup, exist_ok=True)
    with files.atomic_path(os.path.join(backup, COMMAND_FILE)) as tmp, open(tmp, "w") as f:
        json.dump(command, f, indent=1)
    try:
        yield backup
    except BaseException as error:
        if isinstance(error, NonFiniteError) or os.listdir(backup) == [COMMAND_FILE]:  # nothing worth resuming
            shutil.rmtree(backup, ignore_errors=True)
            if created and not os.listdir(out):
                os.rmdir(out)
        raise
    shutil.rmtree(backup, ignore_errors=True)


def unfinished_command(out):
    """The command of an unfinished run in `out` (what `start_backup` recorded), or None."""
    try:
        with open(os.path.join(out, BACKUP_DIR, COMMAND_FILE)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _command(settings):
    """What makes a training run the same one, as JSON data: every setting but the verbosity,
    --overwrite and --out."""
    fields = dataclasses.asdict(settings)
    for name in ("verbose", "overwrite", "out"):
        fields.pop(name)
    return json.loads(json.dumps({"train": fields}))


def prepare_training(settings):
    """The prior, the data and the labels fit gets for checked settings: (prior, dataset, labels)."""
    dataset = data.load(settings.dataset, data_dir=settings.data_dir)
    if settings.validation >= len(dataset.x_train):
        raise UsageError(
            f"--validation {settings.validation} holds out every one of the {len(dataset.x_train)} "
            f"training images of {dataset.name}; hold out fewer."
        )
    return make_prior(settings.prior, settings.latent_dim), dataset, training_labels(settings, dataset)


def fit_and_evaluate(settings, prior, dataset, labels, backup=None):
    """Build the model the checked settings describe, fit it, evaluate it: (model, results).

    results: "train" and "test" (`evaluate` on each split), `code_metrics` on the test split,
    "epochs" (trained) and "fit_seconds". With `validation`, the last that many training
    images are held out (fit never trains on them) and "validation" holds their metrics; with
    `patience`, fit stops once the validation loss has not improved for that many epochs
    (not before `min_epochs`) and keeps the best epoch's weights ("best_epoch"). Training
    stops with `callbacks.NonFiniteError` if the loss or a weight turns NaN or inf. With
    `backup` (a folder), the training state is backed up there after every epoch and a run
    that finds one resumes from it (`callbacks.ResumeFromBackup`): the same weights and
    results as an uninterrupted run, "epochs" and "fit_seconds" counting every part.
    """
    import keras

    from aae_keras import callbacks

    verbose = settings.verbose if settings.verbose is not None else (1 if sys.stdout.isatty() else 2)
    keep = len(dataset.x_train) - settings.validation
    x, y = dataset.x_train[:keep], None if labels is None else labels[:keep]
    held_out = (dataset.x_train[keep:], None if labels is None else labels[keep:])
    stopper = (
        keras.callbacks.EarlyStopping(  # a change below MIN_IMPROVEMENT is evaluate's float noise, not progress
            "val_loss",
            patience=settings.patience,
            min_delta=MIN_IMPROVEMENT,
            restore_best_weights=True,
            start_from_epoch=settings.min_epochs,
        )
        if settings.patience
        else None
    )
    resume = None if backup is None else callbacks.ResumeFromBackup(backup, settings.seed, early_stopping=stopper)
    watch = [c for c in (callbacks.StopOnNonFinite(), stopper, resume) if c is not None]
    keras.utils.set_random_seed(settings.seed)
    with distribute.get_strategy(settings.strategy).scope():  # on JAX a DataParallel must hold during fit too
        model = make_model(settings, dataset.image_shape, prior, dataset.num_classes)
        fit_start = time.perf_counter()
        history = model.fit(
            x,
            y,
            epochs=settings.epochs,
            batch_size=settings.batch_size,
            shuffle=True,
            verbose=verbose,
            callbacks=watch,
            validation_data=held_out if settings.validation else None,
        )
        fit_seconds = time.perf_counter() - fit_start if resume is None else resume.fit_seconds
        epochs = len(history.epoch) if resume is None else resume.epochs_done
        results = {
            "train": evaluate(model, x, y, settings.batch_size),
            **({"validation": evaluate(model, *held_out, settings.batch_size)} if settings.validation else {}),
            "test": evaluate(model, dataset.x_test, dataset.y_test, settings.batch_size),
            **code_metrics(model, dataset.x_test, dataset.y_test),
            "epochs": epochs,
            "fit_seconds": fit_seconds,
        }
        if settings.patience:
            results["best_epoch"] = stopper.best_epoch + 1
    return model, results


def make_prior(name, latent_dim):
    """The prior for a --prior name and --latent-dim (checked by `TrainSettings.checked`)."""
    from aae_keras import priors

    makers = {
        "ring": lambda: priors.gaussian_mixture(10, 2, radius=4.0, scale=0.5),
        "gaussian": lambda: priors.gaussian(latent_dim),
        "mixture": lambda: priors.gaussian_mixture(10, latent_dim),
        "uniform": lambda: priors.uniform(latent_dim),
        "swiss_roll": priors.swiss_roll,
    }
    return makers[name]()


def make_model(settings, image_shape, prior, num_classes=10):
    """Build and compile the model the checked settings describe (call inside strategy.scope())."""
    import keras

    from aae_keras import models, networks

    options = {"schedule": settings.schedule} if settings.schedule else {}
    if settings.input_noise is not None:
        options["input_noise"] = settings.input_noise
    if settings.model in VARIANTS:
        unlabeled = settings.model in DEFAULT_CLUSTERS and not settings.labels
        count = settings.clusters or (DEFAULT_CLUSTERS[settings.model] if unlabeled else num_classes)
        kwargs = {"semi_supervised": True} if settings.model == "dim_reduction" and settings.labels else {}
        model = getattr(models, VARIANTS[settings.model][0]).create(
            image_shape,
            prior,
            count,
            network=settings.network,
            hidden=settings.hidden,
            regularizer=settings.regularizer,
            weight=settings.weight,
            discriminator_hidden=settings.hidden,
            seed=settings.seed,
            **kwargs,
            **options,
        )
    else:
        encoder, decoder, discriminator = networks.build(
            settings.network, image_shape, settings.latent_dim, hidden=settings.hidden
        )
        if settings.model == "adversarial":
            model = models.AdversarialAutoencoder(encoder, decoder, discriminator, prior, seed=settings.seed, **options)
        else:
            model = models.MMDAutoencoder(
                encoder,
                decoder,
                prior,
                regularizer=settings.model,
                weight=settings.weight,
                seed=settings.seed,
                **options,
            )
    # --lr sets the phases that are not adversarial (reconstruction, and classification where the
    # model has it); the adversaries, and every phase without --lr, keep the model's defaults
    rates = {} if settings.lr is None else {"optimizer": keras.optimizers.Adam(settings.lr)}
    if rates and model.classifies:
        rates["classifier_optimizer"] = keras.optimizers.Adam(settings.lr)
    model.compile(**rates)
    return model


def training_labels(settings, dataset):
    """The labels fit gets: all, --labels N of them (the rest -1), or None."""
    uses = {"supervised": "all", "semi_supervised": "all", "label_conditioned": "all"}.get(settings.model)
    if settings.model == "dim_reduction" and settings.labels:
        uses = "all"
    if uses is None:
        return None
    if settings.labels is None:
        return dataset.y_train
    pool = len(dataset.y_train) - settings.validation  # the held-out images lend no labels
    if settings.labels > pool:
        raise UsageError(
            f"--labels {settings.labels} is more than the {pool} training examples of "
            f"{dataset.name}; choose at most that."
        )
    kept = data.keep_labels(dataset.y_train[:pool], settings.labels, seed=settings.seed)
    return np.concatenate([kept, np.full(settings.validation, -1, kept.dtype)])


# ------------------------------------------------------------------------------ evaluation
def evaluate(model, x, y, batch_size):
    """Keras evaluate as a dict (None for a non-finite value); labels y only reach the models
    that use them (`model.uses_labels`)."""
    results = model.evaluate(x, y if model.uses_labels else None, batch_size=batch_size, verbose=0, return_dict=True)
    return {name: _finite_or_none(value) for name, value in results.items()}


def code_metrics(model, x, y=None):
    """How well the codes of x match the prior, and the model's task metrics on labels y.

    `code_mmd2` is the closed-form MMD^2 of the codes (the style, for the variants) when
    the prior has one, else the sample-based estimate (`code_mmd2_method` says which); both
    use up to MMD_BATCH codes. `codes_near_mode` is the fraction of codes within MODE_RADIUS
    of their nearest mean. Neither is computed where `encode` gives something else than the
    codes matched to the prior (`model.codes_match_prior`: the dimensionality-reduction map).
    With labels: `model.task_metrics(x, y)`.
    """
    from aae_keras import metrics, priors

    result = {}
    if model.codes_match_prior:
        codes = model.encode(x)
        value, method = metrics.mmd_to_prior(codes, model.prior, max_codes=MMD_BATCH)
        result = {"code_mmd2": value, "code_mmd2_method": method}
        info = priors.describe(model.prior)
        if info["kind"] == "mixture" and len(info["weights"]) > 1:
            result["codes_near_mode"] = metrics.near_mode_fraction(codes, model.prior, MODE_RADIUS)
    if y is not None:
        result.update(model.task_metrics(x, y))
    return result


def write_plots(model, dataset, out, seed):
    """Draw `model.figures` from the test split into `out`; returns the file names.

    latent.png: test codes (the 2-D map for dim_reduction) over the prior, coloured by label
    (skipped for a 1-D latent space); samples.png: decoded prior samples; style_grid.png
    (decoders that take a class): one style per row, one class per column; clusters.png: test
    images of each cluster per row.
    """
    from aae_keras import plots

    x, y = dataset.x_test, dataset.y_test
    draw = {
        "latent": lambda path: plots.latent_scatter(codes, y, model.prior, path),
        "samples": lambda path: plots.sample_grid(
            model.sample(NUM_SAMPLES, seed=sample_seed(seed)), path, rows=math.isqrt(NUM_SAMPLES)
        ),
        "style_grid": lambda path: plots.sample_grid(model.style_grid(styles=10, seed=seed), path, rows=10),
        "clusters": lambda path: plots.cluster_grid(x, model.cluster(x), path, num_clusters=model.num_classes),
    }
    figures = list(model.figures)
    codes = model.encode(x)
    if codes.shape[1] < 2 and "latent" in figures:
        figures.remove("latent")
        print("latent.png skipped: the latent space is 1-D.")
    for figure in figures:
        draw[figure](os.path.join(out, f"{figure}.png"))
    return [f"{figure}.png" for figure in figures]


def hardware():
    """The Keras backend and the device a run trains on (recorded in metrics.json).

    >>> sorted(hardware())
    ['backend', 'device']
    """
    import keras

    from aae_keras import backend

    device = backend.current().device_name()
    if device == "cpu":
        device = f"cpu ({len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()} cores)"
    return {"backend": keras.backend.backend(), "device": device}


def sample_seed(seed):
    """A [2] seed for stateless prior sampling, so a --seed gives the same samples every run."""
    from aae_keras import backend

    return backend.to_seed(seed)


def _finite_or_none(value):
    value = float(value)
    return value if math.isfinite(value) else None


# ------------------------------------------------------------------ places a run writes to
def _check_out_dir(out, overwrite, command):
    """Whether the run resumes the unfinished run in `out` (same `command`); raises UsageError
    for an `out` that holds something else (without `overwrite`) or cannot be written."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"--out {out!r} exists and is not a directory.")
    check_writable(out, "--out", missing_ok=True)
    unfinished = unfinished_command(out)
    if unfinished is not None and not overwrite:
        if unfinished != command:
            raise UsageError(
                f"--out {out!r} holds an unfinished run of another command ({_differences(unfinished, command)}); "
                "rerun that command to resume it, pass --overwrite to discard it and start over, "
                "or choose another --out."
            )
        return True
    if os.path.isdir(out) and os.listdir(out) and not overwrite:
        raise UsageError(
            f"output directory {out!r} is not empty; pass --overwrite to write into it or choose another --out."
        )
    return False


def _differences(recorded, given):
    """The settings two commands (`_command`) differ in, in words."""
    if set(recorded) != set(given):
        return f"recorded by `{' '.join(recorded)}`, this is `{' '.join(given)}`".replace("_", " ")
    recorded, given = next(iter(recorded.values())), next(iter(given.values()))
    changed = [
        f"{k}: {recorded.get(k)!r} there, {given.get(k)!r} now"
        for k in sorted(set(recorded) | set(given))
        if recorded.get(k) != given.get(k)
    ]
    return "; ".join(changed) or "another kind of run"


def check_writable(directory, flag, path=None, missing_ok=False):
    """Raise UsageError unless a file can be created in `directory`; with `missing_ok`, a
    directory that does not exist yet passes if its nearest existing parent is writable.

    `flag` and `path` (default: `directory`) name what the user asked to write, for the message.
    A probe file is created and removed, so nothing is left: permission bits alone do not tell
    (root, read-only mounts, /proc).

    >>> check_writable("/proc", "--out")
    Traceback (most recent call last):
    ...
    aae_keras.runs.UsageError: cannot write --out '/proc': no file can be created in '/proc' (...); choose a location you can write to.
    """
    path = directory if path is None else path
    existing = os.path.abspath(directory)
    while missing_ok and not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise UsageError(
            f"cannot write {flag} {path!r}: {existing!r} is not an existing directory; "
            f"create it or choose another {flag}."
        )
    try:
        handle, probe = tempfile.mkstemp(prefix=".aae-keras-probe-", dir=existing)
    except OSError as error:
        raise UsageError(
            f"cannot write {flag} {path!r}: no file can be created in {existing!r} "
            f"({error.strerror or error}); choose a location you can write to."
        ) from None
    os.close(handle)
    os.remove(probe)


# ------------------------------------------------------- the train flags (CLI and recipes)
def train_parser():
    """An argparse parser of the `aae-keras train` flags alone (what a recipe's "train" holds)."""
    parser = argparse.ArgumentParser(prog="aae-keras train")
    add_train_arguments(parser)
    return parser


def add_train_arguments(parser):
    """Add the `aae-keras train` flags to `parser`; their defaults are `TrainSettings`'s."""
    default = TrainSettings()
    parser.add_argument(
        "--model",
        choices=MODELS + tuple(VARIANTS),
        default=default.model,
        help="mmd: closed-form MMD; sample_mmd / imq_mmd: MMD against prior samples "
        "(RBF / inverse multiquadric kernel); adversarial: AAE; the paper's variants "
        f"{', '.join(VARIANTS)} take --regularizer (default: %(default)s)",
    )
    parser.add_argument(
        "--regularizer",
        choices=REGULARIZERS,
        default=default.regularizer,
        help="latent matching of the paper's variants: closed-form MMD or a discriminator (default: mmd)",
    )
    parser.add_argument(
        "--labels",
        type=positive_int,
        default=default.labels,
        help="keep N training labels (balanced over classes), the rest unlabeled: "
        "semi_supervised, label_conditioned, dim_reduction (default: all labels; "
        "none for dim_reduction)",
    )
    parser.add_argument(
        "--clusters",
        type=positive_int,
        default=default.clusters,
        help="number of clusters: clustering (default 16), dim_reduction (default 20, "
        "or the number of classes with --labels)",
    )
    parser.add_argument(
        "--prior",
        choices=PRIORS,
        default=default.prior,
        help="ring: 10 Gaussians on a circle of radius 4 (2-D only); mixture: 10 "
        "Gaussians in --latent-dim dimensions; gaussian: N(0, I); uniform: [-1, 1]^d; "
        "swiss_roll: 2-D only, sample-based; for supervised, semi_supervised, "
        "clustering and dim_reduction it is the style prior (default: ring, or "
        "gaussian for those four)",
    )
    add_data_arguments(parser, default=default.dataset)
    parser.add_argument("--latent-dim", type=positive_int, default=default.latent_dim, help="(default: %(default)s)")
    parser.add_argument(
        "--epochs",
        type=positive_int,
        default=default.epochs,
        help=f"(default: {', '.join(f'{k} {v}' for k, v in DEFAULT_EPOCHS.items())})",
    )
    parser.add_argument("--batch-size", type=positive_int, default=default.batch_size, help="(default: %(default)s)")
    parser.add_argument("--network", choices=NETWORKS, default=default.network, help="(default: %(default)s)")
    parser.add_argument(
        "--hidden",
        type=_int_list,
        default=default.hidden,
        help="hidden layer sizes of the MLPs (and the AAE discriminator), e.g. "
        "1000,1000 for the paper's size (default: 256,256)",
    )
    parser.add_argument(
        "--weight",
        type=float,
        default=default.weight,
        help="weight of the MMD term (mmd models, and variants with --regularizer mmd; default: %(default)s)",
    )
    parser.add_argument(
        "--schedule",
        choices=SCHEDULES,
        default=default.schedule,
        help="adversarial models: joint (one encoder/decoder update on reconstruction + generator "
        "loss, one discriminator update; the default of --model adversarial) or paper (three "
        "phases; the default of the paper's variants)",
    )
    parser.add_argument(
        "--patience",
        type=positive_int,
        default=default.patience,
        help="stop once the validation loss has not improved for N epochs and keep the best "
        "epoch's weights (--epochs is then the most it trains; default: train every epoch)",
    )
    parser.add_argument(
        "--min-epochs",
        type=nonnegative_int,
        default=default.min_epochs,
        help="with --patience: never stop before this epoch (default: %(default)s)",
    )
    parser.add_argument(
        "--validation",
        type=nonnegative_int,
        default=default.validation,
        help=f"hold out the last N training images for validation (default: {VALIDATION_SIZE} "
        "with --patience, else 0); with --labels, their labels are not used",
    )
    parser.add_argument(
        "--lr",
        type=float,
        default=default.lr,
        help="Adam learning rate of the reconstruction phase and, for semi_supervised, of the "
        "classification phase; the discriminator and generator keep the model's defaults (default: the "
        "model's: 1e-3; 1e-4 for semi_supervised, whose every phase uses Adam(1e-4))",
    )
    parser.add_argument(
        "--input-noise",
        type=float,
        default=default.input_noise,
        help="std of the Gaussian noise added to the encoder's input while training (default: the "
        "model's: 0.3 for semi_supervised, else 0)",
    )
    parser.add_argument(
        "--strategy",
        choices=distribute.STRATEGIES,
        default=default.strategy,
        help="tf.distribute strategy, or on JAX: mirrored = keras.distribution.DataParallel (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=default.seed, help="(default: %(default)s)")
    parser.add_argument(
        "--out", default=default.out, help="output directory (default: aae_runs/<model>_<prior>_<dataset>)"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="write into --out even if it is not empty (an unfinished run's backup there is "
        "discarded; without it, the same command resumes that run)",
    )
    parser.add_argument(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        default=default.verbose,
        help="Keras fit verbosity (default: 1 on a terminal, else 2)",
    )


def add_data_arguments(parser, default):
    """Add --dataset (default `default`; None: the one the model was trained on) and --data-dir."""
    parser.add_argument(
        "--dataset",
        choices=data.KNOWN_DATASETS,
        default=default,
        help="digits ships with scikit-learn; mnist and fashion_mnist are read from --data-dir "
        "or downloaded"
        + (f" (default: {default})" if default else " (default: the one in metrics.json next to MODEL, else digits)"),
    )
    parser.add_argument(
        "--data-dir", default=None, help="directory with the four IDX files (train-images-idx3-ubyte.gz, ...)"
    )


def positive_int(text):
    """argparse type: a positive integer."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def nonnegative_int(text):
    """argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def _int_list(text):
    """'1000,1000' -> (1000, 1000)."""
    try:
        sizes = tuple(positive_int(part) for part in text.split(","))
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers such as 1000,1000, got {text!r}"
        ) from None
    return sizes
