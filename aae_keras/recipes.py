"""Zoo recipes: train a preset from scratch, evaluate it, write it and record it in the manifest.

A recipe `zoo/recipes/<name>.json` holds the preset's description, the exact `aae-keras train`
arguments that make it (`"train"`), whether its files ship with the repository (`"shipped"`),
optionally per-metric tolerances for a rebuild (`"tolerance"`, else `TOLERANCES`), and
optionally the backend and device it is meant to be built on (`"build_on"`; `build` records
where it actually ran as `trained_on` in the metadata and the manifest). The
sample-quality classifier's recipe has `"kind": "classifier"` and `"classifier"` options
(dataset, epochs, batch_size, seed) instead of `"train"`.

`build(name)` trains with those arguments, evaluates on the test split, writes the preset
directory (default `zoo/presets/<name>`, or `zoo/build/<name>` for one that does not ship), packs the reproducible archive
`zoo/archives/<name>.tar.gz` (what a zoo mirror serves) and updates the manifest entry with
file hashes, sizes and metrics. `build(name, check=True)` trains in a temporary directory and
only compares the metrics it reaches with the recorded ones.

Example:
    >>> from aae_keras import recipes
    >>> recipes.load_recipe("digits_mmd_mog10")["train"][:2]
    ['--model', 'mmd']
"""

import contextlib
import json
import os

from aae_keras import data, files, presets, runs

__all__ = ["build", "load_recipe", "summary", "compare", "TOLERANCES"]

RECIPES_DIR = presets.ZOO_DIR / "recipes"
ARCHIVES_DIR = presets.ZOO_DIR / "archives"
# metric -> ("relative" | "absolute", tolerance) for a rebuilt preset against the recorded one
TOLERANCES = {
    "test_reconstruction": ("relative", 0.05),
    "code_mmd2": ("absolute", 0.01),
    "codes_near_mode": ("absolute", 0.05),
    "classification_error": ("absolute", 0.03),
    "cluster_accuracy": ("absolute", 0.05),
    "nmi": ("absolute", 0.05),
    "frechet_distance": ("relative", 0.15),
    "sample_class_accuracy": ("absolute", 0.05),
    "test_accuracy": ("absolute", 0.01),
}


def load_recipe(name):
    """The recipe of zoo preset `name` as a dict."""
    path = RECIPES_DIR / f"{name}.json"
    if not path.is_file():
        known = sorted(p.stem for p in RECIPES_DIR.glob("*.json"))
        raise presets.PresetError(f"no recipe {name!r}; recipes: {', '.join(known)}.")
    return json.loads(path.read_text())


def summary(results):
    """The headline test-split metrics of a training run's results (a flat dict)."""
    flat = {"test_reconstruction": results["test"]["reconstruction"]}
    flat.update({k: results[k] for k in TOLERANCES if k in results})
    return flat


def compare(recorded, reached, tolerance=None):
    """{metric: {"recorded", "reached", "within"}} for the metrics both have."""
    rules = {**TOLERANCES, **{k: tuple(v) for k, v in (tolerance or {}).items()}}
    report = {}
    for name in sorted(set(recorded) & set(reached) & set(rules)):
        kind, allowed = rules[name]
        gap = abs(reached[name] - recorded[name])
        limit = allowed * abs(recorded[name]) if kind == "relative" else allowed
        report[name] = {
            "recorded": recorded[name],
            "reached": reached[name],
            "within": bool(gap <= limit),
            "tolerance": f"{allowed:g} {kind}",
        }
    return report


def build(name, data_dir=None, out=None, check=False, verbose=0):
    """Train and evaluate preset `name` from its recipe.

    Without `check`: write the preset (default: `default_directory(name)`) with its model card,
    its archive and its manifest entry; returns {"directory", "metrics", "archive"}. With `check`:
    returns {"metrics", "comparison"} against the manifest's recorded metrics and writes
    nothing. The places it writes are checked before training; a run whose loss or weights
    turn NaN or inf stops with `callbacks.NonFiniteError` and writes nothing. A build that is
    killed keeps its training state in `<directory>/backup` and resumes from its last completed
    epoch when run again (`runs.backed_up`); a build of another recipe there is refused.
    """
    recipe = load_recipe(name)
    directory = os.path.abspath(out or default_directory(name))
    if not check:  # before training: a place that cannot be written fails at once
        runs.check_writable(os.path.dirname(directory), "--out", directory, missing_ok=True)
        runs.check_writable(ARCHIVES_DIR, "the archive", ARCHIVES_DIR / f"{name}.tar.gz", missing_ok=True)
        runs.check_writable(presets.ZOO_DIR, "the manifest", presets.ZOO_DIR / "manifest.json")
        # a killed build resumes when run again (a --check writes nothing, so it starts over)
        command = {"zoo_build": {"name": name, "recipe": recipe}}
        unfinished = runs.unfinished_command(directory)
        if unfinished is not None and unfinished != command:
            raise presets.PresetError(
                f"{directory} holds an unfinished build of another recipe ({runs.BACKUP_DIR}/{runs.COMMAND_FILE}); "
                f"rerun that build to resume it, or delete {os.path.join(directory, runs.BACKUP_DIR)} to start over."
            )
    train = _train_classifier if recipe.get("kind") == "classifier" else _train_autoencoder
    if check:
        model, dataset, seed, results, metrics = train(recipe, data_dir, verbose)
        recorded = presets.info(name).get("metrics")
        if not recorded:
            raise presets.PresetError(f"preset {name!r} has no recorded metrics to check against; build it first.")
        return {"metrics": metrics, "comparison": compare(recorded, metrics, recipe.get("tolerance"))}
    with runs.backed_up(directory, command, fresh=False) as backup:
        model, dataset, seed, results, metrics = train(recipe, data_dir, verbose, backup)
        return _write(name, recipe, directory, model, dataset, seed, results, metrics)


def _write(name, recipe, directory, model, dataset, seed, results, metrics):
    """Write the preset, its archive and its manifest entry: {"directory", "metrics", "archive"}."""
    hardware = runs.hardware()
    presets.save(
        model,
        directory,
        name=name,
        overwrite=True,
        description=recipe["description"],
        recipe=recipe,
        dataset=data.provenance(dataset),
        seed=seed,
        trained_on=hardware,
        metrics=metrics,
        results=results,
    )
    os.makedirs(ARCHIVES_DIR, exist_ok=True)
    archive = presets.pack(directory, os.path.join(ARCHIVES_DIR, f"{name}.tar.gz"))
    records = {f: presets.file_record(os.path.join(directory, f)) for f in sorted(os.listdir(directory))}
    _update_manifest(
        name,
        {
            "description": recipe["description"],
            "model_class": type(model).__name__,
            "dataset": dataset.name,
            "recipe": f"recipes/{name}.json",
            "shipped": bool(recipe.get("shipped", False)),
            "files": records,
            "size": sum(r["size"] for r in records.values()),
            "archive": archive,
            "metrics": metrics,
            "budget": {"epochs": results["epochs"], "fit_seconds": round(results["fit_seconds"], 1)},
            "trained_on": hardware,
        },
    )
    return {"directory": directory, "metrics": metrics, "archive": archive}


def default_directory(name):
    """Where `build` writes preset `name`: zoo/presets/<name> for a shipped preset, else
    zoo/build/<name> (ignored by git: a download-only preset's files are published, not committed)."""
    shipped = load_recipe(name).get("shipped", False)
    return presets.ZOO_DIR / ("presets" if shipped else "build") / name


def _train_autoencoder(recipe, data_dir, verbose, backup=None):
    """`aae-keras train` with the recipe's arguments: (model, dataset, seed, results, metrics),
    the metrics with the sample quality (`sample_quality.score`) where the data has a classifier."""
    from aae_keras import sample_quality

    data_flags = ["--data-dir", os.fspath(data_dir)] if data_dir else []
    settings = runs.TrainSettings.from_argv([*recipe["train"], *data_flags, "--verbose", str(verbose)]).checked()
    prior, dataset, labels = runs.prepare_training(settings)
    model, results = runs.fit_and_evaluate(settings, prior, dataset, labels, backup=backup)
    metrics = {**summary(results), **sample_quality.score(model, dataset, seed=settings.seed)}
    return model, dataset, settings.seed, results, metrics


def _train_classifier(recipe, data_dir, verbose, backup=None):
    """The sample-quality classifier (`recipe["classifier"]`: dataset, epochs, batch_size, seed)."""
    import time

    from aae_keras import sample_quality

    options = recipe["classifier"]
    dataset = data.load(options["dataset"], data_dir=data_dir)
    start = time.perf_counter()
    model, results = sample_quality.train_classifier(
        dataset,
        epochs=options["epochs"],
        batch_size=options["batch_size"],
        seed=options["seed"],
        verbose=verbose,
        backup=backup,
    )
    results["fit_seconds"] = time.perf_counter() - start
    return model, dataset, options["seed"], results, {"test_accuracy": results["test_accuracy"]}


def _update_manifest(name, entry):
    """Set the manifest entry of `name`, under a lock: builds running side by side (one per
    recipe, e.g. on the GPU machine) each add their own entry and lose none."""
    path = presets.ZOO_DIR / "manifest.json"
    with _manifest_lock():
        manifest = presets.manifest()
        manifest["presets"][name] = entry
        manifest["presets"] = dict(sorted(manifest["presets"].items()))
        with files.atomic_path(path) as tmp, open(tmp, "w") as f:
            json.dump(manifest, f, indent=2)
            f.write("\n")


@contextlib.contextmanager
def _manifest_lock():
    """An exclusive lock on `<zoo>/.manifest.lock` (none where fcntl is missing: Windows)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(presets.ZOO_DIR / ".manifest.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def recipe_only_entry(name):
    """The manifest entry of a recipe that has not been built (no files, no metrics)."""
    recipe = load_recipe(name)
    dataset = (
        recipe["classifier"]["dataset"]
        if recipe.get("kind") == "classifier"
        else recipe["train"][recipe["train"].index("--dataset") + 1]
    )
    return {
        "description": recipe["description"],
        "recipe": f"recipes/{name}.json",
        "shipped": False,
        "dataset": dataset,
    }


def register(name):
    """Add a recipe that has not been built to the manifest (so `zoo list` shows it)."""
    if name not in presets.manifest()["presets"]:
        _update_manifest(name, recipe_only_entry(name))
