"""The paper's experiments (arXiv 1511.05644, Tables 1-3) for both latent regularizers.

- semi: semi-supervised classification error (%) with 100, 1000 and all labels
  (SemiSupervisedAutoencoder, 10 classes, 10-D Gaussian style).
- clustering: unsupervised clustering error (%) with 16 and 30 clusters (ClusteringAutoencoder,
  5-D Gaussian style; each cluster takes the label of its majority, the paper's protocol).
- parzen: Parzen-window log-likelihood (nats) of the test set under 10K decoded prior samples
  (8-D Gaussian prior; bandwidth chosen on the last 10K training images, see
  `aae_keras.metrics.parzen_evaluate`).

Each runs for `--regularizers` (mmd: closed form; adversarial) over `--seeds` and reports
mean +- std and wall-clock seconds. The paper trains the 1000-1000 MLPs for thousands of
epochs; `--epochs` sets our (much shorter) schedule. With `--from-recipes`, every run trains
from the zoo's recipe of its cell instead, with the run's seed: on MNIST `mnist_<task>_<mmd|aae>`
(the reproducibility table: MLP 1000-1000, 30 epochs on CPU), on Fashion-MNIST
`fashion_mnist_<task>_<mmd|aae>_paper` (early stopping, at least 100 epochs); semi/all drops the
recipe's --labels; `--epochs N` then caps each run at N epochs (a smoke test). `--runs-dir`
makes every run an `aae-keras train` into its own folder, backed up each epoch: stop the script
and run it again, and it goes on where it stopped. Fashion-MNIST is read offline from
../shared/data/fashion-mnist (or AAE_KERAS_FASHION_MNIST_DIR); MNIST with --dataset mnist
--data-dir DIR (or AAE_KERAS_DATA_DIR, or network).

    python benchmarks/paper.py --epochs 10 --seeds 0 1 --out benchmarks/results/paper.json
    python benchmarks/paper.py --render benchmarks/results/paper.json   # markdown table
    python benchmarks/paper.py --dataset mnist --data-dir ../shared/data/mnist --from-recipes \
        --experiments semi labeled_only --runs-dir paper_runs --out benchmarks/results/paper_mnist.json
"""

import argparse
import dataclasses
import json
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

import keras
import numpy as np

from aae_keras import data, files, metrics, models, networks, priors, recipes, runs

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = os.environ.get("AAE_KERAS_FASHION_MNIST_DIR", str(ROOT.parent / "shared" / "data" / "fashion-mnist"))
PARZEN_SAMPLES = 10_000
VALIDATION = 10_000
PAPER_MNIST = {  # the paper's AAE figures on MNIST
    "semi/100": "1.90 +- 0.10 (Table 2)",
    "semi/1000": "1.60 +- 0.08 (Table 2)",
    "semi/all": "0.85 +- 0.02 (Table 2)",
    "clustering/16": "9.55 (Table 3)",
    "clustering/30": "4.10 (Table 3)",
    "parzen": "340 +- 2 (Table 1)",
}


def semi(dataset, labels, regularizer, seed, args):
    """Test classification error (%) with `labels` labels ("all" or a count)."""
    y = dataset.y_train if labels == "all" else data.keep_labels(dataset.y_train, int(labels), seed=seed)
    model = _fit(models.SemiSupervisedAutoencoder, priors.gaussian(10), 10, dataset, y, regularizer, seed, args)
    return 100.0 * metrics.classification_error(dataset.y_test, model.classify(dataset.x_test))


def labeled_only(dataset, labels, _, seed, args):
    """Test error (%) of the semi-supervised model's classifier network (an MLP of --hidden,
    1000-1000 with --from-recipes) trained on the `labels` labeled images alone: the baseline
    the unlabeled images must beat. The same labels as `semi` (keep_labels, same seed)."""
    hidden = (1000, 1000) if args.from_recipes else args.hidden
    held_out = recipe_settings(f"semi/{labels}", "mmd", seed, args).validation if args.from_recipes else 0
    pool = len(dataset.y_train) - held_out  # as the recipes draw them
    y = data.keep_labels(dataset.y_train[:pool], int(labels), seed=seed)
    keras.utils.set_random_seed(seed)
    classifier = keras.Sequential(
        [
            keras.Input(dataset.image_shape),
            keras.layers.Flatten(),
            *(keras.layers.Dense(h, activation="relu") for h in hidden),
            keras.layers.Dense(10),
        ]
    )
    classifier.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    labeled = y >= 0
    classifier.fit(dataset.x_train[:pool][labeled], y[labeled], epochs=LABELED_EPOCHS, batch_size=32, verbose=0)
    predicted = np.argmax(classifier.predict(dataset.x_test, verbose=0), axis=1)
    return 100.0 * metrics.classification_error(dataset.y_test, predicted), LABELED_EPOCHS


def clustering(dataset, clusters, regularizer, seed, args):
    """Test clustering error (%) with `clusters` clusters, majority-label mapping."""
    model = _fit(
        models.ClusteringAutoencoder, priors.gaussian(5), int(clusters), dataset, None, regularizer, seed, args
    )
    assignments = model.cluster(dataset.x_test)
    return 100.0 * (1.0 - metrics.cluster_accuracy(dataset.y_test, assignments, mapping="majority"))


def parzen(dataset, _, regularizer, seed, args):
    """Mean test log-likelihood (nats) under a Parzen window on 10K decoded prior samples."""
    train = data.Dataset(
        dataset.x_train[:-VALIDATION],
        dataset.y_train[:-VALIDATION],
        dataset.x_test,
        dataset.y_test,
        dataset.name,
        dataset.num_classes,
    )
    prior = priors.gaussian(8)
    keras.utils.set_random_seed(seed)
    encoder, decoder, discriminator = networks.build("mlp", dataset.image_shape, 8, hidden=args.hidden)
    if regularizer == "adversarial":
        model = models.AdversarialAutoencoder(encoder, decoder, discriminator, prior, seed=seed)
    else:
        model = models.MMDAutoencoder(encoder, decoder, prior, weight=args.weight, seed=seed)
    model.compile()
    model.fit(train.x_train, epochs=args.epochs, batch_size=100, verbose=0)
    samples = model.sample(PARZEN_SAMPLES, seed=(seed, 99))
    result = metrics.parzen_evaluate(dataset.x_test, dataset.x_train[-VALIDATION:], samples)
    return result["mean"]


EXPERIMENTS = {
    "semi": (semi, ("100", "1000", "all")),
    "labeled_only": (labeled_only, ("100", "1000")),
    "clustering": (clustering, ("16", "30")),
    "parzen": (parzen, ("",)),
}
UNREGULARIZED = ("labeled_only",)  # no latent regularizer: one run per seed, shown in both columns
LABELED_EPOCHS = 200
RECIPE_TASKS = {
    "semi/100": "semisup100",
    "semi/1000": "semisup1000",
    "semi/all": "semisup1000",
    "clustering/16": "cluster16",
    "clustering/30": "cluster30",
    "parzen": "gauss8",
}


def recipe_name(key, regularizer, dataset):
    """The zoo recipe of table cell `key`: `mnist_<task>_<mmd|aae>` on MNIST (the
    reproducibility table's CPU budget), `fashion_mnist_<task>_<mmd|aae>_paper` on Fashion-MNIST."""
    tag = "mmd" if regularizer == "mmd" else "aae"
    if dataset == "mnist":
        return f"mnist_{RECIPE_TASKS[key]}_{tag}"
    return f"fashion_mnist_{RECIPE_TASKS[key]}_{tag}_paper"


def recipe_argv(key, regularizer, seed, args):
    """The `aae-keras train` arguments of cell `key`'s recipe for `seed` (semi/all drops --labels;
    --epochs N caps the run, a smoke test)."""
    argv = list(recipes.load_recipe(recipe_name(key, regularizer, args.dataset))["train"])
    if key == "semi/all":
        del argv[argv.index("--labels") : argv.index("--labels") + 2]
    argv[argv.index("--seed") + 1] = str(seed)
    cap = ["--epochs", str(args.epochs), "--min-epochs", "0"] if args.epochs else []
    return [*argv, *cap]


def recipe_settings(key, regularizer, seed, args):
    """The checked TrainSettings of cell `key`'s recipe for `seed`."""
    extra = ["--verbose", "2" if args.runs_dir else "0", *(["--data-dir", args.data_dir] if args.data_dir else [])]
    return runs.TrainSettings.from_argv([*recipe_argv(key, regularizer, seed, args), *extra]).checked()


def finished(key, regularizer, seed, args):
    """Whether `--runs-dir` holds the finished run of cell `key` for `seed`."""
    out = Path(args.runs_dir) / f"{recipe_name(key, regularizer, args.dataset)}_s{seed}"
    return (out / "metrics.json").exists()


def from_recipe(key, regularizer, seed, args):
    """(measure, epochs trained, seconds trained) of table cell `key` trained from its zoo recipe.

    With --runs-dir, the run is `aae-keras train` itself into `<runs-dir>/<recipe>_s<seed>`: a
    run killed half-way resumes from its last epoch when the script runs again, and a finished
    one (metrics.json there) is measured again from its model.keras without training."""
    settings = recipe_settings(key, regularizer, seed, args)
    if args.runs_dir:
        out = Path(args.runs_dir) / f"{recipe_name(key, regularizer, args.dataset)}_s{seed}"
        if (out / "metrics.json").exists():
            model, results = (
                keras.saving.load_model(out / "model.keras"),
                json.loads((out / "metrics.json").read_text()),
            )
        else:
            run = runs.train(dataclasses.replace(settings, out=str(out)))
            model, results = run.model, run.results
        dataset = data.load(settings.dataset, data_dir=settings.data_dir)
    else:
        prior, dataset, labels = runs.prepare_training(settings)
        model, results = runs.fit_and_evaluate(settings, prior, dataset, labels)
    if key.startswith("semi"):
        value = 100.0 * metrics.classification_error(dataset.y_test, model.classify(dataset.x_test))
    elif key.startswith("clustering"):
        value = 100.0 * (
            1.0 - metrics.cluster_accuracy(dataset.y_test, model.cluster(dataset.x_test), mapping="majority")
        )
    else:
        bandwidth_images = dataset.x_train[-(settings.validation or VALIDATION) :]
        samples = model.sample(PARZEN_SAMPLES, seed=(seed, 99))
        value = metrics.parzen_evaluate(dataset.x_test, bandwidth_images, samples)["mean"]
    return value, results["epochs"], results["fit_seconds"]


def _fit(cls, prior, count, dataset, y, regularizer, seed, args):
    keras.utils.set_random_seed(seed)
    model = cls.create(
        dataset.image_shape,
        prior,
        count,
        hidden=args.hidden,
        regularizer=regularizer,
        weight=args.weight,
        discriminator_hidden=args.hidden,
        seed=seed,
    )
    model.compile()
    model.fit(dataset.x_train, y, epochs=args.epochs, batch_size=100, verbose=0)
    return model


def run(args, save=lambda report: None):
    """The report of every cell of `args`; `save(report)` gets the report so far after every run."""
    dataset = data.load(args.dataset, data_dir=args.data_dir)
    rows = []
    report = {
        "dataset": dataset.name,
        "epochs": args.epochs,
        "hidden": list(args.hidden),
        "weight": args.weight,
        "seeds": args.seeds,
        "from_recipes": bool(args.from_recipes),
        "hardware": runs.hardware(),
        "rows": rows,
    }
    for name in args.experiments:
        function, settings = EXPERIMENTS[name]
        for setting in settings:
            key = f"{name}/{setting}" if setting else name
            if args.cells and key not in args.cells:
                continue
            for regularizer in ["none"] if name in UNREGULARIZED else args.regularizers:
                row = {"experiment": key, "regularizer": regularizer, "values": [], "seconds": [], "epochs": []}
                if args.from_recipes and name not in UNREGULARIZED:
                    row["command"] = "aae-keras train " + shlex.join(recipe_argv(key, regularizer, "SEED", args))
                rows.append(row)
                for seed in args.seeds:
                    start = time.perf_counter()
                    if name in UNREGULARIZED:
                        value, trained = function(dataset, setting, regularizer, seed, args)
                        took = time.perf_counter() - start
                    elif args.from_recipes:
                        if args.finished_only and not finished(key, regularizer, seed, args):
                            continue
                        value, trained, took = from_recipe(key, regularizer, seed, args)
                    else:
                        value, trained = function(dataset, setting, regularizer, seed, args), args.epochs
                        took = time.perf_counter() - start
                    row["values"].append(float(value))
                    row["epochs"].append(trained)
                    row["seconds"].append(took)
                    row["mean"] = statistics.fmean(row["values"])
                    row["std"] = statistics.stdev(row["values"]) if len(row["values"]) > 1 else 0.0
                    print(
                        f"{name} {setting} {regularizer} seed {seed}: {value:.3f} ({took:.0f} s, {trained} epochs)",
                        flush=True,
                    )
                    save(report)
    return report


def render(report):
    """A markdown table of a report, next to the paper's MNIST figures."""
    units = {
        "semi": "error %",
        "labeled_only": "error % (labeled images alone)",
        "clustering": "error %",
        "parzen": "log-likelihood (nats)",
    }
    trained = [e for row in report["rows"] if row["regularizer"] != "none" for e in row.get("epochs", [])]
    if report.get("from_recipes"):
        budget = "MLP 1000-1000" + (
            f", the zoo's recipes ({min(trained)}-{max(trained)} epochs"
            f"{', capped at ' + str(report['epochs']) if report['epochs'] else ''})"
            if trained
            else ""
        )
    else:
        budget = f"MLP {tuple(report['hidden'])}, {report['epochs']} epochs"
    alone = (
        f" labeled_only: the semi-supervised model's classifier network alone, Adam 1e-3, batch 32, "
        f"{LABELED_EPOCHS} epochs."
        if any(row["regularizer"] == "none" for row in report["rows"])
        else ""
    )
    hardware = report.get("hardware")
    lines = [
        (
            f"Dataset {report['dataset']}, {budget}, batch 100, MMD weight {report['weight']}, seeds {report['seeds']}"
            + (f", {hardware['backend']} on {hardware['device']}." if hardware else ".")
            + alone
        ),
        "",
        "| experiment | measure | closed-form MMD | adversarial | paper (AAE, MNIST) | s per run (MMD / adv.) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    by_key = {}
    for row in (row for row in report["rows"] if row["values"]):  # (--finished-only: cells with no run yet)
        by_key.setdefault(row["experiment"], {})[row["regularizer"]] = row
    for key, cell in by_key.items():
        if "none" in cell:  # no regularizer: the same figure serves both columns
            cell = {"mmd": cell["none"], "adversarial": cell["none"]}
        cells = [
            f"{cell[r]['mean']:.2f} +- {cell[r]['std']:.2f} (n={len(cell[r]['values'])})" if r in cell else ""
            for r in ("mmd", "adversarial")
        ]
        times = " / ".join(f"{statistics.fmean(cell[r]['seconds']):.0f}" for r in ("mmd", "adversarial") if r in cell)
        paper = PAPER_MNIST.get(key, "") if report["dataset"] == "mnist" else ""
        lines.append(f"| {key} | {units[key.split('/')[0]]} | {cells[0]} | {cells[1]} | {paper} | {times} |")
    commands = [
        f"- {row['experiment']}, {row['regularizer']}: `{row['command']}`" for row in report["rows"] if "command" in row
    ]
    return (
        "\n".join(
            lines
            + (
                ["", "Each run (SEED: the seed of the label subset and the initialisation):", *commands]
                if commands
                else []
            )
        )
        + "\n"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiments", nargs="+", choices=tuple(EXPERIMENTS), default=list(EXPERIMENTS))
    parser.add_argument(
        "--finished-only",
        action="store_true",
        help="with --runs-dir: measure the finished runs only (a table of what is done so far); train nothing",
    )
    parser.add_argument(
        "--cells",
        nargs="+",
        default=None,
        metavar="KEY",
        help="only these cells of the experiments (e.g. semi/100 clustering/16 labeled_only/100)",
    )
    parser.add_argument("--regularizers", nargs="+", choices=("mmd", "adversarial"), default=["mmd", "adversarial"])
    parser.add_argument("--dataset", default="fashion_mnist", choices=("fashion_mnist", "mnist"))
    parser.add_argument("--data-dir", default=None, help=f"IDX files (default for fashion_mnist: {DEFAULT_DATA})")
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="epochs per run (default 10; with --from-recipes: the recipe's early stopping)",
    )
    parser.add_argument(
        "--from-recipes",
        action="store_true",
        help="train each run from the zoo's paper-budget recipe of its cell (--hidden, --weight unused)",
    )
    parser.add_argument(
        "--runs-dir",
        default=None,
        help="with --from-recipes: train each run as `aae-keras train` into a folder here, so that "
        "the script resumes where it was stopped (a finished run is measured, not trained, again)",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--hidden", type=lambda t: tuple(int(v) for v in t.split(",")), default=networks.PAPER_HIDDEN)
    parser.add_argument("--weight", type=float, default=100.0, help="MMD weight")
    parser.add_argument("--out", default=None, help="write the JSON report here (and the table next to it, .md)")
    parser.add_argument("--render", default=None, metavar="JSON", help="print the table of a saved report and exit")
    args = parser.parse_args(argv)
    if args.render:
        print(render(json.loads(Path(args.render).read_text())), end="")
        return
    if args.data_dir is None and args.dataset == "fashion_mnist":
        args.data_dir = DEFAULT_DATA
    if args.runs_dir and not args.from_recipes:
        parser.error("--runs-dir keeps the runs of --from-recipes; add --from-recipes")
    if args.finished_only and not args.runs_dir:
        parser.error("--finished-only measures the finished runs of --runs-dir; add --runs-dir")
    if args.epochs is None and not args.from_recipes:
        args.epochs = 10

    def save(report):
        if args.out:
            table = render(report)
            for path, text in (
                (args.out, json.dumps(report, indent=2) + "\n"),
                (str(Path(args.out).with_suffix(".md")), table),
            ):
                with files.atomic_path(path) as tmp:
                    Path(tmp).write_text(text)

    print(render(run(args, save)), end="")


if __name__ == "__main__":
    sys.exit(main())
