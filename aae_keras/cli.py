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
import os
import sys

import numpy as np

# Only modules that load without TensorFlow at the top: the arguments are parsed first, so
# `--help` and usage errors answer at once; the commands import keras, TensorFlow and the
# models when they run.
from aae_keras import data, files, runs
from aae_keras.runs import UsageError, check_writable, positive_int

__all__ = ["build_parser", "main"]

COMMANDS = ("train", "evaluate", "sample", "export", "zoo")
MODEL_HELP = "a .keras file written by train, or a preset: zoo name, preset directory or archive URL"


def main(argv=None):
    """Run the command line; returns 0 on success, exits with code 2 on a usage or data error."""
    parser = build_parser()
    _refuse_flags_before_the_command(parser, sys.argv[1:] if argv is None else list(argv))
    args = parser.parse_args(argv)
    try:
        args.command(args)
    except (ValueError, OSError, RuntimeError) as error:
        print(f"aae-keras: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print("aae-keras: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    return 0


def _refuse_flags_before_the_command(parser, argv):
    """Name an unknown flag given before the command (argparse would only say that the command
    is missing)."""
    for arg in argv:
        if not arg.startswith("-"):
            return
        if arg not in ("-h", "--help"):
            parser.error(
                f"unrecognized argument {arg!r}: aae-keras takes a COMMAND first ({', '.join(COMMANDS)}), "
                "then its flags; see aae-keras --help, or aae-keras COMMAND --help."
            )


def build_parser():
    """The argparse parser with the train, evaluate and sample sub-commands."""
    parser = argparse.ArgumentParser(prog="aae-keras", description="Autoencoders whose latent space matches a prior.")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    train = commands.add_parser(
        "train",
        help="train a model and write model.keras, metrics.json, latent.png, samples.png",
        description="Train an autoencoder; with no arguments, the default closed-form-MMD model "
        "on digits with the ring-of-10 prior.",
    )
    train.set_defaults(command=train_command)
    runs.add_train_arguments(train)

    evaluate = commands.add_parser(
        "evaluate",
        help="print test metrics of a saved model as JSON",
        description="Evaluate a saved .keras model on a dataset's test split and print JSON.",
    )
    evaluate.set_defaults(command=evaluate_command)
    evaluate.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    runs.add_data_arguments(evaluate, default=None)

    sample = commands.add_parser(
        "sample",
        help="decode prior samples of a saved model into an image grid",
        description="Decode prior samples of a saved model; writes a PNG grid, or the raw "
        "images if --out ends in .npy.",
    )
    sample.set_defaults(command=sample_command)
    sample.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    sample.add_argument("--n", type=positive_int, default=64, help="(default: %(default)s)")
    sample.add_argument("--out", default="samples.png", help="(default: %(default)s)")
    sample.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")

    exporter = commands.add_parser(
        "export",
        help="export a saved model's decoder or encoder to ONNX or a SavedModel",
        description="Export and verify (against Keras, on batches of 1, 5 and 17) a decoder or encoder.",
    )
    exporter.set_defaults(command=export_command)
    exporter.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    exporter.add_argument("--part", choices=("decoder", "encoder"), default="decoder", help="(default: %(default)s)")
    exporter.add_argument(
        "--format",
        choices=("onnx", "saved_model"),
        default=None,
        help="(default: onnx for an --out ending in .onnx, else saved_model)",
    )
    exporter.add_argument("--out", required=True, help="a .onnx file or a SavedModel directory")
    exporter.add_argument("--opset", type=positive_int, default=17, help="ONNX opset (default: %(default)s)")
    exporter.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    _add_zoo_parser(commands)
    return parser


def _add_zoo_parser(commands):
    zoo = commands.add_parser(
        "zoo",
        help="list, inspect, download and build pretrained presets",
        description="The preset zoo (zoo/manifest.json).",
    )
    actions = zoo.add_subparsers(title="zoo commands", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="names, sizes and metrics of the presets")
    listing.add_argument("--markdown", action="store_true", help="as the README's Markdown table")
    listing.set_defaults(command=zoo_list_command)
    for action, helptext, command in (
        ("info", "a preset's model card (README.md); --json: its manifest entry and recipe", zoo_info_command),
        ("download", "fetch a preset's archive into the cache (AAE_KERAS_HOME), verified", zoo_download_command),
    ):
        sub = actions.add_parser(action, help=helptext)
        sub.add_argument("name", metavar="NAME")
        sub.set_defaults(command=command)
        if action == "info":
            sub.add_argument("--json", action="store_true", help="the manifest entry and the recipe, as JSON")
    build = actions.add_parser("build", help="train a preset from its recipe, evaluate it, record it in the manifest")
    build.add_argument("name", metavar="NAME")
    build.add_argument("--data-dir", default=None, help="directory with the dataset's IDX files (mnist, fashion_mnist)")
    build.add_argument("--out", default=None, help="preset directory (default: zoo/presets/NAME)")
    build.add_argument(
        "--check",
        action="store_true",
        help="only compare the metrics reached with the recorded ones (exit 1 if outside tolerance)",
    )
    build.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2, help="(default: %(default)s)")
    build.set_defaults(command=zoo_build_command)


# ------------------------------------------------------------------------------- commands
def train_command(args):
    """`aae-keras train`: train, evaluate, and write the outputs into the run directory (`runs.train`)."""
    run = runs.train(runs.TrainSettings.from_namespace(args))
    shown = ("test", "code_mmd2", "codes_near_mode", *runs.TASK_METRICS, "seconds")
    print(json.dumps({k: run.results[k] for k in shown if k in run.results}, indent=2))
    print(f"Wrote {', '.join(run.files)} to {run.directory}")


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
    results = {
        "model": args.model,
        "dataset": name,
        "test": runs.evaluate(model, x_test, y_test, 100),
        **runs.code_metrics(model, x_test, y_test),
    }
    print(json.dumps(results, indent=2))


def sample_command(args):
    """`aae-keras sample MODEL`: decode --n prior samples into a grid image (or a .npy file)."""
    from aae_keras import plots

    check_writable(os.path.dirname(os.path.abspath(args.out)), "--out", args.out)
    model = load_model(args.model)
    images = model.sample(args.n, seed=runs.sample_seed(args.seed))
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
    print(
        f"Wrote {args.part} ({info['format']}, inputs {', '.join(info['inputs'])}) to {info['path']}; "
        f"largest difference from Keras {info['max_difference']:.2g} ({info['relative_difference']:.2g} "
        "relative to the outputs' scale)"
    )


def zoo_list_command(args):
    """`aae-keras zoo list`: one row per preset: size, where it comes from, headline metrics."""
    from aae_keras import presets

    entries = presets.manifest()["presets"]
    if args.markdown:
        print(_zoo_markdown(entries))
        return
    print(f"{'name':32} {'model':28} {'size':>8}  {'source':10} metrics")
    for name, entry in entries.items():
        source = _zoo_source(entry)
        size = f"{entry['size'] / 1e6:.1f} MB" if "size" in entry else "-"
        shown = ", ".join(f"{k} {v:.4g}" for k, v in entry.get("metrics", {}).items())
        print(f"{name:32} {entry.get('model_class', '-'):28} {size:>8}  {source:10} {shown or '-'}")


def _zoo_markdown(entries):
    """The README's zoo table: every preset, built or not, with its budget, hardware and metrics."""
    columns = (
        "test_reconstruction",
        "code_mmd2",
        "codes_near_mode",
        "classification_error",
        "cluster_accuracy",
        "nmi",
        "frechet_distance",
        "sample_class_accuracy",
        "test_accuracy",
    )
    lines = [
        "| preset | model | data | source | size | budget | hardware | " + " | ".join(columns) + " |",
        "|---" * (7 + len(columns)) + "|",
    ]
    for name, entry in sorted(entries.items(), key=lambda item: ("metrics" not in item[1], item[0])):  # built first
        metrics = entry.get("metrics", {})
        budget = entry.get("budget")
        hardware = entry.get("trained_on")
        cells = [
            f"`{name}`",
            entry.get("model_class", ""),
            entry.get("dataset", ""),
            _zoo_source(entry),
            f"{entry['size'] / 1e6:.1f} MB" if "size" in entry else "",
            f"{budget['epochs']} epochs, {budget['fit_seconds']:.0f} s" if budget else "",
            f"{hardware['backend']}, {hardware['device']}" if hardware else "",
            *(f"{metrics[c]:.4g}" if c in metrics else "" for c in columns),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _zoo_source(entry):
    """Where a preset comes from: "shipped", "download" (an archive, no files here) or "recipe" (not built)."""
    return "shipped" if entry.get("shipped") else "download" if entry.get("archive") else "recipe"


def zoo_info_command(args):
    """`aae-keras zoo info NAME`: the preset's model card and where its files are
    (`model_cards.zoo_card`); with --json, the manifest entry and the recipe."""
    from aae_keras import model_cards, presets, recipes

    if not args.json:
        print(model_cards.zoo_card(args.name))
        return
    print(
        json.dumps({"name": args.name, **presets.info(args.name), "recipe": recipes.load_recipe(args.name)}, indent=2)
    )


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
        print(
            f"Wrote preset {args.name} to {result['directory']} and its archive {result['archive']['file']} "
            f"({result['archive']['size'] / 1e6:.1f} MB); updated zoo/manifest.json"
        )
        return
    print(json.dumps(result["comparison"], indent=2))
    if not all(row["within"] for row in result["comparison"].values()):
        print(f"aae-keras: the rebuilt {args.name} is outside the recorded metrics' tolerance", file=sys.stderr)
        raise SystemExit(1)
    print(f"The rebuilt {args.name} reaches the recorded metrics within tolerance.")


# ------------------------------------------------------------------------- helpers
def load_model(path):
    """A model saved by train (a .keras file) or a preset handle (zoo name, directory, URL).

    A file that is not a zip archive (empty or truncated) and a path that names nothing
    raise UsageError saying so.
    """
    import keras

    from aae_keras import models, presets  # noqa: F401  models registers the classes load_model needs
    from aae_keras.models import saving

    if os.path.isfile(path):
        problem = saving.unreadable(path)
        if problem is not None:
            raise UsageError(
                f"MODEL {path!r} is not a readable .keras model (the file is {problem}); pass a model.keras that "
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


if __name__ == "__main__":
    sys.exit(main())
