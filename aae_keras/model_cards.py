"""Model cards: a preset's README.md, made from its metadata.json.

`render(metadata)` turns a preset's metadata (what `presets.save` writes: name, model class,
recipe, dataset, seed, metrics, results, versions, ...) into a short Markdown card: what the
model is, the exact command that trained it, its data, budget, hardware and versions, its
metrics with what each means, how to load, sample and rebuild it, and the licenses. Fields
the metadata lacks read "not recorded". The output depends on the metadata alone (the only
time in it is the metadata's `created`), so a rebuilt card differs only where the preset does.

`write(directory, metadata, model)` writes README.md next to the preset's files and, for a
model that samples, `samples.png`: decoded prior samples, one row per class for a
class-conditional model. `zoo_card(name)` is what `aae-keras zoo info NAME` prints.

Example:
    >>> import os, tempfile
    >>> from aae_keras import model_cards
    >>> metadata = {"name": "demo", "model_class": "MMDAutoencoder",
    ...             "recipe": {"train": ["--model", "mmd", "--prior", "ring", "--epochs", "5"]},
    ...             "metrics": {"code_mmd2": 0.0013}}
    >>> card = model_cards.render(metadata)
    >>> card.splitlines()[0]
    '# demo'
    >>> "aae-keras train --model mmd --prior ring --epochs 5" in card
    True
    >>> model_cards.write(tempfile.mkdtemp(), metadata)   # no model: the README alone
    ['README.md']
"""

import json
import os
import shlex

import numpy as np

__all__ = ["render", "write", "zoo_card", "README_FILE", "SAMPLES_FILE", "METRICS"]

README_FILE = "README.md"
SAMPLES_FILE = "samples.png"
NOT_RECORDED = "not recorded"
SAMPLE_ROWS = 10  # rows of samples.png for a model that does not sample by class

# metric -> what it measures, one line (the card's metrics table)
METRICS = {
    "test_reconstruction": "binary cross-entropy summed over an image's pixels, averaged over the test images "
    "(lower is better)",
    "code_mmd2": "closed-form MMD² of 2000 test codes (the style, for the paper's variants) to the prior "
    "(a sample-based estimate where the prior has no closed form; lower is better)",
    "codes_near_mode": "share of test codes within 1.5 of their nearest mixture mean (higher is better)",
    "classification_error": "share of test images the model's classifier labels wrongly (lower is better)",
    "cluster_accuracy": "share of test images whose cluster maps to their class: one-to-one, or each cluster to "
    "its majority class when there are more clusters than classes (higher is better)",
    "nmi": "normalized mutual information between the test images' clusters and classes (higher is better)",
    "codes_on_class_component": "share of test codes nearest to the mean of their class's prior component "
    "(higher is better)",
    "frechet_distance": "Fréchet distance between the features (from the zoo's Fashion-MNIST classifier preset) "
    "of 10 000 decoded prior samples and of the 10 000 test images (lower is better)",
    "sample_class_accuracy": "accuracy of the zoo's Fashion-MNIST classifier on samples drawn for a given class "
    "(higher is better)",
    "test_accuracy": "the classifier's accuracy on the test images (higher is better)",
}
DATA_LICENSES = {
    "fashion_mnist": "Fashion-MNIST (Zalando Research): MIT",
    "digits": "scikit-learn digits (from the UCI optical recognition of handwritten digits data): BSD-3-Clause / UCI",
    "mnist": "MNIST (LeCun, Cortes and Burges): CC BY-SA 3.0",
}
PRIORS = {
    "ring": "the paper's ring of 10 2-D Gaussians (radius 4, scale 0.5)",
    "gaussian": "a standard Gaussian",
    "mixture": "a mixture of 10 Gaussians",
    "uniform": "a uniform distribution",
    "swiss_roll": "a 2-D swiss roll",
}
LOAD_MODULES = {"FashionClassifier": "sample_quality"}  # model classes that aae_keras.models does not hold
# recipe flags shown under "What it is", with their labels
MODEL_FLAGS = (
    ("--model", "model"),
    ("--regularizer", "regularizer"),
    ("--prior", "prior"),
    ("--latent-dim", "latent dimension"),
    ("--labels", "labels used"),
    ("--clusters", "clusters"),
    ("--network", "network"),
    ("--hidden", "hidden layers"),
    ("--weight", "regularizer weight"),
    ("--schedule", "schedule"),
)


def render(metadata, samples=None):
    """A preset's model card (Markdown) from its metadata dict; `samples`: the file name of a
    samples image next to the card to show (e.g. "samples.png"), None for none."""
    name = metadata.get("name") or "unnamed preset"
    handle = metadata.get("name") or "path/to/preset"
    recipe = metadata.get("recipe") if isinstance(metadata.get("recipe"), dict) else {}
    train = [str(a) for a in recipe.get("train") or []]
    flags = _settings(recipe, train)
    results = metadata.get("results") or {}
    model_class = metadata.get("model_class")
    sections = [
        f"# {name}",
        metadata.get("description") or recipe.get("description") or "",
        "## What it is",
        _what_it_is(model_class, flags),
        "## Recipe",
        _recipe(recipe, train, handle),
        "## Data",
        _data(metadata.get("dataset"), flags),
        "## Budget",
        _bullets(
            [
                ("epochs", results.get("epochs", flags.get("--epochs"))),
                ("fit time", _seconds(results.get("fit_seconds"))),
                ("seed", metadata.get("seed", flags.get("--seed"))),
            ]
        ),
        "## Hardware",
        _hardware(metadata.get("trained_on")),
        "## Versions",
        _bullets([*sorted((metadata.get("versions") or {}).items()), ("created", metadata.get("created"))]),
        "## Metrics",
        _metrics(metadata.get("metrics") or {}),
        "## How to load",
        _how_to_load(handle, model_class),
        "## How to rebuild",
        _how_to_rebuild(metadata.get("name")),
        "## License",
        _license(_dataset_name(metadata.get("dataset"), flags)),
    ]
    if samples:
        sections += ["## Samples", f"![decoded prior samples]({samples})"]
    return "\n\n".join(s for s in sections if s) + "\n"


def write(directory, metadata, model=None, n=100, seed=0):
    """Write the model card README.md into `directory` (created if missing) and, when `model`
    has a callable `sample`, samples.png: `n` decoded prior samples in 10 rows, or for a model
    whose `samples_by_class` is True one row per class of n // num_classes samples drawn with
    `model.sample(k, y=class, seed=...)`. Each file is written atomically; returns the names
    written."""
    from aae_keras import files

    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    written = [README_FILE]
    if callable(getattr(model, "sample", None)):
        _write_samples(model, os.path.join(directory, SAMPLES_FILE), n, seed)
        written.append(SAMPLES_FILE)
    with files.atomic_path(os.path.join(directory, README_FILE)) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(render(metadata, samples=SAMPLES_FILE if SAMPLES_FILE in written else None))
    return written


def zoo_card(name):
    """What `aae-keras zoo info NAME` prints: the shipped README.md of zoo preset `name` when
    there is one, else a card rendered from its shipped metadata.json, or for a preset that is
    not shipped from its manifest entry and recipe; then where its files (and samples.png) are.
    An unknown name raises `presets.PresetError`."""
    from aae_keras import presets

    entry = presets.info(name)
    directory = presets.ZOO_DIR / "presets" / name
    samples = directory / SAMPLES_FILE
    if (directory / README_FILE).is_file():
        card = (directory / README_FILE).read_text(encoding="utf-8")
    else:
        card = render(_zoo_metadata(name, entry, directory), samples=SAMPLES_FILE if samples.is_file() else None)
    if (directory / presets.METADATA_FILE).is_file():
        where = f"Files: shipped in {directory}"
    elif entry.get("archive"):
        where = (
            f"Files: download only, the archive {entry['archive']['file']} from the zoo's download server: "
            f"`aae-keras zoo download {name}`"
        )
    else:
        where = f"Files: recipe only, not built yet: `aae-keras zoo build {name}`"
    lines = [card.rstrip("\n"), "", where]
    if samples.is_file():
        lines.append(f"Samples: {samples}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ helpers
def _zoo_metadata(name, entry, directory):
    """A metadata dict for a zoo preset: its shipped metadata.json, else one made from the
    manifest entry and the recipe."""
    from aae_keras import presets, recipes

    path = directory / presets.METADATA_FILE
    if path.is_file():
        return json.loads(path.read_text())
    try:
        recipe = recipes.load_recipe(name)
    except presets.PresetError:
        recipe = {}
    return {
        "name": name,
        "model_class": entry.get("model_class"),
        "description": entry.get("description"),
        "recipe": recipe,
        "dataset": {"name": entry.get("dataset")},
        "metrics": entry.get("metrics") or {},
        "trained_on": entry.get("trained_on"),
        "results": entry.get("budget") or {},
    }


def _write_samples(model, path, n, seed):
    from aae_keras import plots, runs

    if getattr(model, "samples_by_class", False):
        classes = int(model.num_classes)
        per_class = max(1, int(n) // classes)
        images = np.concatenate(
            [np.asarray(model.sample(per_class, y=c, seed=runs.sample_seed((seed, c)))) for c in range(classes)]
        )
        plots.sample_grid(images, path, rows=classes)
    else:
        plots.sample_grid(np.asarray(model.sample(int(n), seed=runs.sample_seed(seed))), path, rows=SAMPLE_ROWS)


def _settings(recipe, train):
    """{flag: value} of a recipe's train arguments (True for a flag without a value); for a
    classifier recipe, its "classifier" options as flags (epochs -> --epochs)."""
    flags = {f"--{k.replace('_', '-')}": v for k, v in (recipe.get("classifier") or {}).items()}
    for i, arg in enumerate(train):
        if arg.startswith("--"):
            following = train[i + 1] if i + 1 < len(train) else None
            flags[arg] = following if following is not None and not following.startswith("--") else True
    return flags


def _recipe(recipe, train, handle):
    if train:
        return "\n".join(["```sh", shlex.join(["aae-keras", "train", *train]), "```"])
    if recipe.get("kind") == "classifier":
        options = ", ".join(f"{k} {v}" for k, v in (recipe.get("classifier") or {}).items())
        return (
            f"A classifier recipe ({options or 'default options'}), trained by "
            f"`aae-keras zoo build {shlex.quote(handle)}`."
        )
    return NOT_RECORDED


def _bullets(pairs):
    return "\n".join(f"- {label}: {NOT_RECORDED if value is None else value}" for label, value in pairs)


def _value(value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return NOT_RECORDED if value is None else str(value)
    return f"{value:.4g}"


def _seconds(value):
    return None if value is None else f"{float(value):.1f} s"


def _dataset_name(dataset, flags=None):
    name = dataset.get("name") if isinstance(dataset, dict) else dataset
    return name or (flags or {}).get("--dataset")


def _what_it_is(model_class, flags):
    module = LOAD_MODULES.get(model_class, "models")
    lines = [f"- class: `{model_class}` (aae_keras.{module})" if model_class else f"- class: {NOT_RECORDED}"]
    for flag, label in MODEL_FLAGS:
        if flag in flags:
            value = flags[flag]
            extra = f" ({PRIORS[value]})" if flag == "--prior" and value in PRIORS else ""
            lines.append(f"- {label}: {value}{extra}")
    return "\n".join(lines)


def _data(dataset, flags):
    dataset = dataset if isinstance(dataset, dict) else {}
    return _bullets(
        [
            ("dataset", _dataset_name(dataset, flags)),
            ("training images", dataset.get("train_size")),
            ("test images", dataset.get("test_size")),
            ("sha256", f"`{dataset['sha256']}`" if dataset.get("sha256") else None),
        ]
    )


def _hardware(trained_on):
    trained_on = trained_on if isinstance(trained_on, dict) else {}
    return _bullets([("backend", trained_on.get("backend")), ("device", trained_on.get("device"))])


def _metrics(metrics):
    if not metrics:
        return NOT_RECORDED
    rows = ["| metric | value | meaning |", "|---|---|---|"]
    known = [k for k in METRICS if k in metrics]
    for key in known + sorted(k for k in metrics if k not in METRICS):
        rows.append(f"| `{key}` | {_value(metrics[key])} | {METRICS.get(key, '')} |")
    return "\n".join(rows)


def _how_to_load(name, model_class):
    module = LOAD_MODULES.get(model_class, "models")
    load = f"{module}.{model_class}.from_preset" if model_class else "presets.load"
    lines = [
        "```python",
        f"from aae_keras import {module if model_class else 'presets'}",
        "",
        f"model = {load}({json.dumps(name)})",
        "```",
    ]
    if module == "models":  # the autoencoders decode prior samples; the classifier has no decoder
        lines += ["", "```sh", f"aae-keras sample {shlex.quote(name)} --out samples.png", "```"]
    return "\n".join(lines)


def _how_to_rebuild(name):
    if not name:
        return f"Not a zoo preset (its name is {NOT_RECORDED}): `aae-keras zoo build NAME` rebuilds zoo presets only."
    quoted = shlex.quote(name)
    return "\n".join(
        [
            "```sh",
            f"aae-keras zoo build {quoted} [--data-dir DIR]",
            f"aae-keras zoo build {quoted} --check [--data-dir DIR]",
            "```",
            "",
            "`--data-dir DIR`: the directory with the dataset's IDX files (mnist, fashion_mnist). `--check` trains "
            "in a temporary directory and compares the metrics reached with the recorded ones, writing nothing.",
        ]
    )


def _license(name):
    data = DATA_LICENSES.get(name, f"{name}: see the dataset's own license" if name else f"dataset {NOT_RECORDED}")
    return (
        "The weights and the code are under the project's Apache-2.0 license. The training data keeps its own "
        f"license: {data}."
    )
