"""Command line: `aae-keras train | evaluate | sample | export | zoo list|info|download|build`.

`aae-keras train` with no arguments trains the default model (an MMDAutoencoder with the
closed-form MMD to the paper's ring of 10 2-D Gaussians, on scikit-learn digits) and writes
model.keras, metrics.json, latent.png and samples.png into aae_runs/mmd_ring_digits.

Example:
    $ aae-keras train                                  # default model, about 20 s on 2 cores
    $ aae-keras train --model adversarial --prior swiss_roll --epochs 50
    $ aae-keras train --dataset fashion_mnist --data-dir DIR --prior mixture --latent-dim 8
    $ aae-keras train --model semi_supervised --labels 100 --regularizer adversarial
    $ aae-keras train --model clustering --clusters 16
    $ aae-keras evaluate aae_runs/mmd_ring_digits/model.keras
    $ aae-keras sample aae_runs/mmd_ring_digits/model.keras --n 64 --out samples.png
    $ aae-keras export aae_runs/mmd_ring_digits/model.keras --part decoder --out decoder.onnx
"""

import argparse
import json
import math
import os
import sys
import tempfile
import time
import zipfile

import numpy as np

# Only modules that load without TensorFlow at the top: the arguments are parsed first, so
# `--help` and usage errors answer at once; the commands import keras, TensorFlow and the
# models when they run.
from aae_keras import data, distribute, files

__all__ = ["build_parser", "main"]

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
DEFAULT_EPOCHS = {"digits": 200, "mnist": 20, "fashion_mnist": 20}
MODE_RADIUS = 1.5  # a test code "sits on a mode" when it is this close to a mixture mean
NUM_SAMPLES = 100  # decoded prior samples in samples.png
MODEL_HELP = "a .keras file written by train, or a preset: zoo name, preset directory or archive URL"
MMD_BATCH = 2000  # test codes used for the code-to-prior MMD (its cost is quadratic)


class UsageError(ValueError):
    """An invalid combination of arguments (reported like an argparse error, exit code 2)."""


def main(argv=None):
    """Run the command line; returns 0 on success, exits with code 2 on a usage or data error."""
    args = build_parser().parse_args(argv)
    try:
        args.command(args)
    except (ValueError, OSError, RuntimeError) as error:
        print(f"aae-keras: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print("aae-keras: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    return 0


def build_parser():
    """The argparse parser with the train, evaluate and sample sub-commands."""
    parser = argparse.ArgumentParser(
        prog="aae-keras", description="Autoencoders whose latent space matches a prior."
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    train = commands.add_parser(
        "train", help="train a model and write model.keras, metrics.json, latent.png, samples.png",
        description="Train an autoencoder; with no arguments, the default closed-form-MMD model "
        "on digits with the ring-of-10 prior.",
    )
    train.set_defaults(command=train_command)
    train.add_argument("--model", choices=MODELS + tuple(VARIANTS), default="mmd",
                       help="mmd: closed-form MMD; sample_mmd / imq_mmd: MMD against prior samples "
                       "(RBF / inverse multiquadric kernel); adversarial: AAE; the paper's variants "
                       f"{', '.join(VARIANTS)} take --regularizer (default: %(default)s)")
    train.add_argument("--regularizer", choices=("mmd", "adversarial"), default=None,
                       help="latent matching of the paper's variants: closed-form MMD or a "
                       "discriminator (default: mmd)")
    train.add_argument("--labels", type=_positive_int, default=None,
                       help="keep N training labels (balanced over classes), the rest unlabeled: "
                       "semi_supervised, label_conditioned, dim_reduction (default: all labels; "
                       "none for dim_reduction)")
    train.add_argument("--clusters", type=_positive_int, default=None,
                       help="number of clusters: clustering (default 16), dim_reduction (default 20, "
                       "or the number of classes with --labels)")
    train.add_argument("--prior", choices=PRIORS, default=None,
                       help="ring: 10 Gaussians on a circle of radius 4 (2-D only); mixture: 10 "
                       "Gaussians in --latent-dim dimensions; gaussian: N(0, I); uniform: [-1, 1]^d; "
                       "swiss_roll: 2-D only, sample-based; for supervised, semi_supervised, "
                       "clustering and dim_reduction it is the style prior (default: ring, or "
                       "gaussian for those four)")
    _add_data_arguments(train, default="digits")
    train.add_argument("--latent-dim", type=_positive_int, default=2, help="(default: %(default)s)")
    train.add_argument("--epochs", type=_positive_int, default=None,
                       help=f"(default: {', '.join(f'{k} {v}' for k, v in DEFAULT_EPOCHS.items())})")
    train.add_argument("--batch-size", type=_positive_int, default=100, help="(default: %(default)s)")
    train.add_argument("--network", choices=NETWORKS, default="mlp", help="(default: %(default)s)")
    train.add_argument("--hidden", type=_int_list, default=(256, 256),
                       help="hidden layer sizes of the MLPs (and the AAE discriminator), e.g. "
                       "1000,1000 for the paper's size (default: 256,256)")
    train.add_argument("--weight", type=float, default=100.0,
                       help="weight of the MMD term (mmd models, and variants with --regularizer mmd; "
                       "default: %(default)s)")
    train.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate; for the AAE, of the reconstruction phase (its "
                       "discriminator and generator use Adam(5e-4, beta_1=0.5)) (default: %(default)s)")
    train.add_argument("--strategy", choices=distribute.STRATEGIES, default="auto",
                       help="tf.distribute strategy (default: %(default)s)")
    train.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")
    train.add_argument("--out", default=None,
                       help="output directory (default: aae_runs/<model>_<prior>_<dataset>)")
    train.add_argument("--overwrite", action="store_true",
                       help="write into --out even if it is not empty")
    train.add_argument("--verbose", type=int, choices=(0, 1, 2), default=None,
                       help="Keras fit verbosity (default: 1 on a terminal, else 2)")

    evaluate = commands.add_parser(
        "evaluate", help="print test metrics of a saved model as JSON",
        description="Evaluate a saved .keras model on a dataset's test split and print JSON.",
    )
    evaluate.set_defaults(command=evaluate_command)
    evaluate.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    _add_data_arguments(evaluate, default=None)

    sample = commands.add_parser(
        "sample", help="decode prior samples of a saved model into an image grid",
        description="Decode prior samples of a saved model; writes a PNG grid, or the raw "
        "images if --out ends in .npy.",
    )
    sample.set_defaults(command=sample_command)
    sample.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    sample.add_argument("--n", type=_positive_int, default=64, help="(default: %(default)s)")
    sample.add_argument("--out", default="samples.png", help="(default: %(default)s)")
    sample.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")

    exporter = commands.add_parser(
        "export", help="export a saved model's decoder or encoder to ONNX or a SavedModel",
        description="Export and verify (against Keras, on batches of 1, 5 and 17) a decoder or encoder.",
    )
    exporter.set_defaults(command=export_command)
    exporter.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    exporter.add_argument("--part", choices=("decoder", "encoder"), default="decoder", help="(default: %(default)s)")
    exporter.add_argument("--format", choices=("onnx", "saved_model"), default=None,
                          help="(default: onnx for an --out ending in .onnx, else saved_model)")
    exporter.add_argument("--out", required=True, help="a .onnx file or a SavedModel directory")
    exporter.add_argument("--opset", type=_positive_int, default=17, help="ONNX opset (default: %(default)s)")
    exporter.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    _add_zoo_parser(commands)
    return parser


def _add_zoo_parser(commands):
    zoo = commands.add_parser("zoo", help="list, inspect, download and build pretrained presets",
                              description="The preset zoo (zoo/manifest.json).")
    actions = zoo.add_subparsers(title="zoo commands", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="names, sizes and metrics of the presets")
    listing.add_argument("--markdown", action="store_true", help="as the README's Markdown table")
    listing.set_defaults(command=zoo_list_command)
    for action, helptext, command in (
        ("info", "a preset's manifest entry and recipe, as JSON", zoo_info_command),
        ("download", "fetch a preset's archive into the cache (AAE_KERAS_HOME), verified", zoo_download_command),
    ):
        sub = actions.add_parser(action, help=helptext)
        sub.add_argument("name", metavar="NAME")
        sub.set_defaults(command=command)
    build = actions.add_parser("build", help="train a preset from its recipe, evaluate it, record it in the manifest")
    build.add_argument("name", metavar="NAME")
    build.add_argument("--data-dir", default=None, help="directory with the dataset's IDX files (mnist, fashion_mnist)")
    build.add_argument("--out", default=None, help="preset directory (default: zoo/presets/NAME)")
    build.add_argument("--check", action="store_true",
                       help="only compare the metrics reached with the recorded ones (exit 1 if outside tolerance)")
    build.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2, help="(default: %(default)s)")
    build.set_defaults(command=zoo_build_command)


# ------------------------------------------------------------------------------- commands
def train_command(args):
    """`aae-keras train`: train, evaluate, and write the four outputs into the run directory."""
    start = time.perf_counter()
    check_training_arguments(args)
    setting = args.regularizer if args.model in VARIANTS else args.prior
    out = args.out or os.path.join("aae_runs", f"{args.model}_{setting}_{args.dataset}")
    _check_out_dir(out, args.overwrite)  # before TensorFlow and the data load: a bad --out fails at once
    prior, dataset, labels = prepare_training(args)
    os.makedirs(out, exist_ok=True)
    print(f"Training {args.model} autoencoder with the {args.prior} prior on {args.dataset} "
          f"({len(dataset.x_train)} images, {args.epochs} epochs) -> {out}")
    model, results = fit_and_evaluate(args, prior, dataset, labels)
    with files.atomic_path(os.path.join(out, "model.keras")) as tmp:
        model.save(tmp)
    written = ["model.keras", "metrics.json", *write_plots(model, dataset, out, args.seed)]
    results["seconds"] = time.perf_counter() - start
    results["args"] = {k: v for k, v in vars(args).items() if k != "command"}
    with files.atomic_path(os.path.join(out, "metrics.json")) as tmp:
        _write_json(results, tmp)
    shown = ("test", "code_mmd2", "codes_near_mode", *TASK_METRICS, "seconds")
    print(json.dumps({k: results[k] for k in shown if k in results}, indent=2))
    print(f"Wrote {', '.join(written)} to {out}")


def prepare_training(args):
    """The prior, the data and the labels fit gets for checked train arguments: (prior, dataset, labels)."""
    dataset = data.load(args.dataset, data_dir=args.data_dir)
    return make_prior(args.prior, args.latent_dim), dataset, training_labels(args, dataset)


def fit_and_evaluate(args, prior, dataset, labels):
    """Build the model the train arguments describe, fit it, evaluate it: (model, results).

    Training stops with `callbacks.NonFiniteError` if the loss or a weight turns NaN or inf.
    """
    import keras

    from aae_keras import callbacks

    verbose = args.verbose if args.verbose is not None else (1 if sys.stdout.isatty() else 2)
    keras.utils.set_random_seed(args.seed)
    with distribute.get_strategy(args.strategy).scope():
        model = make_model(args, dataset.image_shape, prior, dataset.num_classes)
    fit_start = time.perf_counter()
    model.fit(dataset.x_train, labels, epochs=args.epochs, batch_size=args.batch_size, shuffle=True, verbose=verbose,
              callbacks=[callbacks.StopOnNonFinite()])
    fit_seconds = time.perf_counter() - fit_start
    results = {
        "train": _evaluate(model, dataset.x_train, labels, args.batch_size),
        "test": _evaluate(model, dataset.x_test, dataset.y_test, args.batch_size),
        **code_metrics(model, dataset.x_test, dataset.y_test),
        "epochs": args.epochs,
        "fit_seconds": fit_seconds,
    }
    return model, results


def evaluate_command(args):
    """`aae-keras evaluate MODEL`: print test-split results and the codes' MMD as JSON."""
    model = load_model(args.model)
    name, data_dir = args.dataset, args.data_dir
    if name is None:  # the dataset the model was trained on: from its preset or train's metrics.json
        name, data_dir = _training_dataset(model, args.model, data_dir)
    x_test, y_test = data.load(name, data_dir=data_dir, split="test")
    expected = tuple(model.encoder.input_shape[1:])
    if tuple(x_test.shape[1:]) != expected:
        raise UsageError(
            f"the model takes images of shape {expected} but {name!r} has images of shape "
            f"{tuple(x_test.shape[1:])}; pass the --dataset the model was trained on."
        )
    results = {"model": args.model, "dataset": name,
               "test": _evaluate(model, x_test, y_test, 100),
               **code_metrics(model, x_test, y_test)}
    print(json.dumps(results, indent=2))


def sample_command(args):
    """`aae-keras sample MODEL`: decode --n prior samples into a grid image (or a .npy file)."""
    from aae_keras import plots

    check_writable(os.path.dirname(os.path.abspath(args.out)), "--out", args.out)
    model = load_model(args.model)
    images = model.sample(args.n, seed=_stateless_seed(args.seed))
    if args.out.lower().endswith(".npy"):
        with files.atomic_path(args.out) as tmp:
            np.save(tmp, images)
    else:
        plots.sample_grid(images, args.out)
    print(f"Wrote {args.n} samples to {args.out}")


def export_command(args):
    """`aae-keras export MODEL --part decoder --out decoder.onnx`: export and verify."""
    from aae_keras import export

    model = load_model(args.model)
    write = export.export_decoder if args.part == "decoder" else export.export_encoder
    info = write(model, args.out, format=args.format, opset=args.opset, overwrite=args.overwrite)
    print(f"Wrote {args.part} ({info['format']}, inputs {', '.join(info['inputs'])}) to {info['path']}; "
          f"largest difference from Keras {info['max_difference']:.2g}")


def zoo_list_command(args):
    """`aae-keras zoo list`: one row per preset: size, where it comes from, headline metrics."""
    from aae_keras import presets

    entries = presets.manifest()["presets"]
    if args.markdown:
        print(_zoo_markdown(entries))
        return
    print(f"{'name':32} {'model':28} {'size':>8}  {'source':10} metrics")
    for name, entry in entries.items():
        source = "shipped" if entry.get("shipped") else "download" if entry.get("archive") else "recipe"
        size = f"{entry['size'] / 1e6:.1f} MB" if "size" in entry else "-"
        shown = ", ".join(f"{k} {v:.4g}" for k, v in entry.get("metrics", {}).items())
        print(f"{name:32} {entry.get('model_class', '-'):28} {size:>8}  {source:10} {shown or '-'}")


def _zoo_markdown(entries):
    columns = ("test_reconstruction", "code_mmd2", "codes_near_mode", "classification_error", "cluster_accuracy", "nmi")
    lines = ["| preset | model | data | size | " + " | ".join(columns) + " |", "|---" * (4 + len(columns)) + "|"]
    for name, entry in entries.items():
        if "metrics" not in entry:
            continue
        values = [f"{entry['metrics'][c]:.4g}" if c in entry["metrics"] else "" for c in columns]
        lines.append(f"| `{name}` | {entry['model_class']} | {entry['dataset']} | {entry['size'] / 1e6:.1f} MB | "
                     + " | ".join(values) + " |")
    return "\n".join(lines)


def zoo_info_command(args):
    """`aae-keras zoo info NAME`: the manifest entry and the recipe."""
    from aae_keras import presets, recipes

    print(json.dumps({"name": args.name, **presets.info(args.name), "recipe": recipes.load_recipe(args.name)}, indent=2))


def zoo_download_command(args):
    """`aae-keras zoo download NAME`: fetch and verify the archive (with a progress bar)."""
    from aae_keras import presets

    print(f"Preset {args.name} is in {presets.download(args.name)}")


def zoo_build_command(args):
    """`aae-keras zoo build NAME`: train from the recipe; write the preset or --check it."""
    from aae_keras import recipes

    result = recipes.build(args.name, data_dir=args.data_dir, out=args.out, check=args.check, verbose=args.verbose)
    if not args.check:
        print(json.dumps(result["metrics"], indent=2))
        print(f"Wrote preset {args.name} to {result['directory']} and its archive {result['archive']['file']} "
              f"({result['archive']['size'] / 1e6:.1f} MB); updated zoo/manifest.json")
        return
    print(json.dumps(result["comparison"], indent=2))
    if not all(row["within"] for row in result["comparison"].values()):
        print(f"aae-keras: the rebuilt {args.name} is outside the recorded metrics' tolerance", file=sys.stderr)
        raise SystemExit(1)
    print(f"The rebuilt {args.name} reaches the recorded metrics within tolerance.")


# ------------------------------------------------------------------------- building blocks
def make_prior(name, latent_dim):
    """The prior for a --prior name and --latent-dim (checked by check_training_arguments)."""
    from aae_keras import priors

    makers = {
        "ring": lambda: priors.gaussian_mixture(10, 2, radius=4.0, scale=0.5),
        "gaussian": lambda: priors.gaussian(latent_dim),
        "mixture": lambda: priors.gaussian_mixture(10, latent_dim),
        "uniform": lambda: priors.uniform(latent_dim),
        "swiss_roll": priors.swiss_roll,
    }
    return makers[name]()


def make_model(args, image_shape, prior, num_classes=10):
    """Build and compile the model the train arguments describe (call inside strategy.scope())."""
    import keras

    from aae_keras import models, networks

    if args.model in VARIANTS:
        unlabeled = args.model in DEFAULT_CLUSTERS and not args.labels
        count = args.clusters or (DEFAULT_CLUSTERS[args.model] if unlabeled else num_classes)
        kwargs = {"semi_supervised": True} if args.model == "dim_reduction" and args.labels else {}
        model = getattr(models, VARIANTS[args.model][0]).create(
            image_shape, prior, count, network=args.network, hidden=args.hidden, regularizer=args.regularizer,
            weight=args.weight, discriminator_hidden=args.hidden, seed=args.seed, **kwargs,
        )
        model.compile(optimizer=keras.optimizers.Adam(args.lr))
        return model
    encoder, decoder, discriminator = networks.build(
        args.network, image_shape, args.latent_dim, hidden=args.hidden
    )
    if args.model == "adversarial":
        model = models.AdversarialAutoencoder(encoder, decoder, discriminator, prior, seed=args.seed)
        model.compile(ae_optimizer=keras.optimizers.Adam(args.lr))
    else:
        model = models.MMDAutoencoder(
            encoder, decoder, prior, regularizer=args.model, weight=args.weight, seed=args.seed
        )
        model.compile(optimizer=keras.optimizers.Adam(args.lr))
    return model


def load_model(path):
    """A model saved by train (a .keras file) or a preset handle (zoo name, directory, URL).

    A file that is not a zip archive (empty or truncated) and a path that names nothing
    raise UsageError saying so.
    """
    import keras

    from aae_keras import models, presets  # noqa: F401  models registers the classes load_model needs

    if os.path.isfile(path):
        if not zipfile.is_zipfile(path):
            state = "empty" if os.path.getsize(path) == 0 else "not a zip archive: truncated, or not a model"
            raise UsageError(
                f"MODEL {path!r} is not a readable .keras model (the file is {state}); pass a model.keras that "
                "`aae-keras train` wrote (train again if the run was cut short) or a preset name."
            )
        return keras.saving.load_model(path)
    looks_like_a_path = os.sep in path or "/" in path or os.path.splitext(path)[1]
    if looks_like_a_path and "://" not in path and not os.path.isdir(path):
        raise UsageError(
            f"MODEL {path!r} does not exist: it is neither a file nor a preset directory; check the path, "
            "or name a preset (`aae-keras zoo list`) or an archive URL."
        )
    return presets.load(path)


TASK_METRICS = ("classification_error", "cluster_accuracy", "nmi", "codes_on_class_component")


def code_metrics(model, x, y=None):
    """How well the codes of x match the prior, and the variant's task metrics on labels y.

    `code_mmd2` is the closed-form MMD^2 of the codes (the style, for the variants) when
    the prior has one, else the sample-based estimate (`code_mmd2_method` says which); both
    use up to MMD_BATCH codes. `codes_near_mode` is the fraction of codes within MODE_RADIUS
    of their nearest mean. With labels: `classification_error` (semi-supervised),
    `cluster_accuracy` and `nmi` (clustering, dim_reduction), `codes_on_class_component`
    (label-conditioned: codes nearest to their class's component).
    """
    from aae_keras import metrics, models, priors

    result = {}
    if not isinstance(model, models.DimReductionAutoencoder):  # its encode() is the map, not z
        codes = model.encode(x)
        value, method = metrics.mmd_to_prior(codes, model.prior, max_codes=MMD_BATCH)
        result = {"code_mmd2": value, "code_mmd2_method": method}
        info = priors.describe(model.prior)
        if info["kind"] == "mixture" and len(info["weights"]) > 1:
            result["codes_near_mode"] = metrics.near_mode_fraction(codes, model.prior, MODE_RADIUS)
    if y is None:
        return result
    if isinstance(model, models.LabelConditionedAutoencoder):
        means = priors.describe(model.prior)["means"]
        nearest = np.argmin(np.linalg.norm(codes[:, None] - means[None], axis=-1), axis=1)
        result["codes_on_class_component"] = float(np.mean(nearest == y))
    if hasattr(model, "cluster"):
        assignments = model.cluster(x)
        result["cluster_accuracy"] = metrics.cluster_accuracy(y, assignments)
        result["nmi"] = metrics.nmi(y, assignments)
    elif hasattr(model, "classify"):
        result["classification_error"] = metrics.classification_error(y, model.classify(x))
    return result


def training_labels(args, dataset):
    """The labels fit gets: all, --labels N of them (the rest -1), or None."""
    uses = {"supervised": "all", "semi_supervised": "all", "label_conditioned": "all"}.get(args.model)
    if args.model == "dim_reduction" and args.labels:
        uses = "all"
    if uses is None:
        return None
    if args.labels is None:
        return dataset.y_train
    if args.labels > len(dataset.y_train):
        raise UsageError(
            f"--labels {args.labels} is more than the {len(dataset.y_train)} training examples of "
            f"{dataset.name}; choose at most that."
        )
    return data.keep_labels(dataset.y_train, args.labels, seed=args.seed)


def write_plots(model, dataset, out, seed):
    """The run's figures; returns their file names.

    latent.png: test codes (the 2-D map for dim_reduction) over the prior, coloured by label;
    samples.png: decoded prior samples; style_grid.png (supervised, semi-supervised): one
    style per row, one class per column; clusters.png: test images of each cluster per row.
    """
    from aae_keras import plots

    written = []
    codes = model.encode(dataset.x_test)
    if codes.shape[1] >= 2:
        plots.latent_scatter(codes, dataset.y_test, model.prior, os.path.join(out, "latent.png"))
        written.append("latent.png")
    else:
        print("latent.png skipped: the latent space is 1-D.")
    plots.sample_grid(model.sample(NUM_SAMPLES, seed=_stateless_seed(seed)),
                      os.path.join(out, "samples.png"), rows=math.isqrt(NUM_SAMPLES))
    written.append("samples.png")
    if hasattr(model, "style_grid"):
        plots.sample_grid(model.style_grid(styles=10, seed=seed), os.path.join(out, "style_grid.png"), rows=10)
        written.append("style_grid.png")
    if hasattr(model, "cluster"):
        plots.cluster_grid(dataset.x_test, model.cluster(dataset.x_test), os.path.join(out, "clusters.png"),
                           num_clusters=model.num_classes)
        written.append("clusters.png")
    return written


# ---------------------------------------------------------------------------------- helpers
def _evaluate(model, x, y, batch_size):
    """Keras evaluate as a dict; labels y only reach the models that use them."""
    y = y if getattr(model, "labels", "none") != "none" else None
    results = model.evaluate(x, y, batch_size=batch_size, verbose=0, return_dict=True)
    return {name: _finite_or_none(value) for name, value in results.items()}


def _finite_or_none(value):
    value = float(value)
    return value if math.isfinite(value) else None


def check_training_arguments(args):
    """Fill in the train arguments' defaults and reject combinations that do not apply (UsageError).

    Needs neither TensorFlow nor the data, so a bad command fails at once.
    """
    variant = args.model in VARIANTS
    if not variant and (args.regularizer or args.labels or args.clusters):
        raise UsageError(
            f"--regularizer, --labels and --clusters apply to the paper's variants ({', '.join(VARIANTS)}); "
            "for the core models pick the regularizer with --model."
        )
    if args.clusters and args.model not in DEFAULT_CLUSTERS:
        raise UsageError(f"--clusters applies to {' and '.join(DEFAULT_CLUSTERS)}, not {args.model}.")
    if args.labels and args.model in ("supervised", "clustering"):
        raise UsageError(
            f"--labels does not apply to {args.model}: supervised uses every label and clustering none; "
            "use --model semi_supervised."
        )
    args.regularizer = args.regularizer or ("mmd" if variant else None)
    args.prior = args.prior or (VARIANTS[args.model][1] if variant else "ring")
    if args.model == "label_conditioned" and args.prior not in ("ring", "mixture"):
        raise UsageError("--model label_conditioned needs a mixture prior: --prior ring or mixture.")
    if variant and args.prior == "swiss_roll" and args.regularizer == "mmd":
        raise UsageError("the swiss roll prior has no closed-form MMD; use --regularizer adversarial.")
    if args.model == "mmd" and args.prior == "swiss_roll":
        raise UsageError(
            "--model mmd uses the closed-form MMD, which the swiss roll prior does not have; "
            "use --model sample_mmd, imq_mmd or adversarial."
        )
    if args.prior in TWO_D_PRIORS and args.latent_dim != 2:
        raise UsageError(
            f"--prior {args.prior} is 2-D, so it needs --latent-dim 2 (got {args.latent_dim}); use "
            "--prior mixture for 10 Gaussian modes in any dimension."
        )
    args.epochs = args.epochs or DEFAULT_EPOCHS[args.dataset]


def _stateless_seed(seed):
    """A [2] seed for TFP's stateless sampling, so --seed gives the same samples every run."""
    import tensorflow as tf

    return tf.constant([seed % (2**31 - 1), 0], tf.int32)


def _check_out_dir(out, overwrite):
    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"--out {out!r} exists and is not a directory.")
    if os.path.isdir(out) and os.listdir(out) and not overwrite:
        raise UsageError(
            f"output directory {out!r} is not empty; pass --overwrite to write into it or "
            "choose another --out."
        )
    check_writable(out, "--out", missing_ok=True)


def check_writable(directory, flag, path=None, missing_ok=False):
    """Raise UsageError unless a file can be created in `directory`; with `missing_ok`, a
    directory that does not exist yet passes if its nearest existing parent is writable.

    `flag` and `path` (default: `directory`) name what the user asked to write, for the message.
    A probe file is created and removed, so nothing is left: permission bits alone do not tell
    (root, read-only mounts, /proc).

    >>> check_writable("/proc", "--out")
    Traceback (most recent call last):
    ...
    aae_keras.cli.UsageError: cannot write --out '/proc': no file can be created in '/proc' (...); choose a location you can write to.
    """
    path = directory if path is None else path
    existing = os.path.abspath(directory)
    while missing_ok and not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise UsageError(f"cannot write {flag} {path!r}: {existing!r} is not an existing directory; "
                         f"create it or choose another {flag}.")
    try:
        handle, probe = tempfile.mkstemp(prefix=".aae-keras-probe-", dir=existing)
    except OSError as error:
        raise UsageError(f"cannot write {flag} {path!r}: no file can be created in {existing!r} "
                         f"({error.strerror or error}); choose a location you can write to.") from None
    os.close(handle)
    os.remove(probe)


def _training_dataset(model, model_path, data_dir):
    """(dataset, data_dir) from the preset the model came from or the metrics.json train wrote
    next to the model, else digits."""
    preset = getattr(model, "preset", None)
    if preset:
        return preset.get("dataset") or "digits", data_dir
    path = os.path.join(os.path.dirname(os.path.abspath(model_path)), "metrics.json")
    try:
        with open(path) as f:
            train_args = json.load(f)["args"]
        return train_args["dataset"], data_dir or train_args.get("data_dir")
    except (OSError, ValueError, KeyError, TypeError):
        return "digits", data_dir


def _write_json(obj, path):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, allow_nan=False)
        f.write("\n")


def _add_data_arguments(parser, default):
    parser.add_argument(
        "--dataset", choices=data.KNOWN_DATASETS, default=default,
        help="digits ships with scikit-learn; mnist and fashion_mnist are read from --data-dir "
        "or downloaded" + (f" (default: {default})" if default else
                           " (default: the one in metrics.json next to MODEL, else digits)"),
    )
    parser.add_argument("--data-dir", default=None,
                        help="directory with the four IDX files (train-images-idx3-ubyte.gz, ...)")


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _int_list(text):
    """'1000,1000' -> (1000, 1000)."""
    try:
        sizes = tuple(_positive_int(part) for part in text.split(","))
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers such as 1000,1000, got {text!r}"
        ) from None
    return sizes


if __name__ == "__main__":
    sys.exit(main())
