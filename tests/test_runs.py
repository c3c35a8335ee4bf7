"""The training pipeline (aae_keras.runs), the import structure, and the models' capability
methods that the pipeline, presets and export use instead of hasattr / isinstance."""

import ast
import concurrent.futures
import dataclasses
import json
import os
import pkgutil
import subprocess
import sys

import numpy as np
import pytest

import aae_keras
from aae_keras import data, runs
from conftest import VARIANTS, tiny_model, tiny_variant

PACKAGE_DIR = os.path.dirname(aae_keras.__file__)
MODULES = sorted(info.name for info in pkgutil.walk_packages(aae_keras.__path__, prefix="aae_keras."))


# ------------------------------------------------------------------------------ settings
def test_settings_defaults_are_the_train_flags_defaults():
    assert runs.TrainSettings.from_argv([]) == runs.TrainSettings()
    checked = runs.TrainSettings().checked()
    assert (checked.prior, checked.regularizer, checked.epochs) == ("ring", None, 200)
    assert checked.directory() == os.path.join("aae_runs", "mmd_ring_digits")
    variant = runs.TrainSettings.from_argv(["--model", "semi_supervised", "--labels", "100", "--hidden", "8,8"])
    assert variant.checked() == dataclasses.replace(
        variant, prior="gaussian", regularizer="mmd", epochs=200, validation=0
    )
    assert variant.hidden == (8, 8) and variant.checked().directory().endswith("semi_supervised_mmd_digits")


@pytest.mark.parametrize(
    "settings, message",
    [
        (runs.TrainSettings(latent_dim=3), "--latent-dim 2"),
        (runs.TrainSettings(model="mmd", prior="swiss_roll"), "sample_mmd"),
        (runs.TrainSettings(model="supervised", clusters=3), "--clusters applies to clustering and dim_reduction"),
        (runs.TrainSettings(model="vae"), "model 'vae' is not one of: mmd, sample_mmd"),
        (runs.TrainSettings(prior="banana"), "prior 'banana' is not one of"),
        (runs.TrainSettings(model="mmd", schedule="paper"), "--schedule applies to adversarial models"),
        (runs.TrainSettings(patience=3, validation=0), "--patience watches the validation loss"),
        (runs.TrainSettings(epochs=5, min_epochs=6), "--min-epochs 6 is more than --epochs 5"),
        (runs.TrainSettings(input_noise=-0.1), "--input-noise must be a number >= 0"),
    ],
)
def test_settings_that_do_not_fit_together(settings, message):
    with pytest.raises(runs.UsageError, match=message):
        settings.checked()


def test_the_schedule_flag_reaches_the_adversarial_models():
    from aae_keras.models import base

    assert runs.SCHEDULES == base.SCHEDULES
    for argv, schedule in (
        (["--model", "adversarial", "--schedule", "paper"], "paper"),
        (["--model", "adversarial"], "joint"),
        (["--model", "clustering", "--regularizer", "adversarial"], "paper"),
        (["--model", "clustering", "--regularizer", "adversarial", "--schedule", "joint"], "joint"),
    ):
        settings = runs.TrainSettings.from_argv([*argv, "--hidden", "8"]).checked()
        model = runs.make_model(settings, (8, 8), runs.make_prior(settings.prior, settings.latent_dim))
        assert model.schedule == schedule
        assert (model.generator_optimizer is not None) == (schedule == "paper")


def test_lr_and_input_noise_flags_reach_the_model():
    """--lr sets the phases that are not adversarial; without it every phase keeps the model's
    defaults; --input-noise overrides the model's (0.3 for semi_supervised)."""

    def model(*argv):
        settings = runs.TrainSettings.from_argv(["--model", "semi_supervised", *argv, "--hidden", "8"]).checked()
        return runs.make_model(settings, (8, 8), runs.make_prior(settings.prior, settings.latent_dim))

    def rates(m):
        return {name: float(m.phase_optimizer(name).learning_rate) for name in m._optimizer_groups()}

    default = model("--regularizer", "adversarial")
    assert default.input_noise == 0.3 and list(rates(default).values()) == [pytest.approx(1e-4)] * 4
    pinned = model("--regularizer", "adversarial", "--lr", "1e-3", "--input-noise", "0")
    assert pinned.input_noise == 0.0
    assert rates(pinned) == {
        "optimizer": pytest.approx(1e-3),
        "classifier_optimizer": pytest.approx(1e-3),
        "discriminator_optimizer": pytest.approx(1e-4),
        "generator_optimizer": pytest.approx(1e-4),
    }


def test_train_from_python_returns_the_run(tmp_path, capsys):
    settings = runs.TrainSettings(epochs=1, hidden=(8,), verbose=0, out=str(tmp_path / "run"))
    run = runs.train(settings)
    assert run.directory == settings.out and run.files == ["model.keras", "metrics.json", "latent.png", "samples.png"]
    assert sorted(os.listdir(run.directory)) == sorted(run.files)
    written = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert written["args"] == json.loads(json.dumps(dataclasses.asdict(settings.checked())))
    assert written["test"] == run.results["test"] and run.model.sample(2).shape == (2, 8, 8)
    assert "Training mmd autoencoder with the ring prior on digits" in capsys.readouterr().out


def test_patience_stops_early_on_held_out_images_and_keeps_the_best_epoch(digits):
    # learning rate 0: the validation loss never improves, so patience 1 stops after epoch 2
    settings = runs.TrainSettings(epochs=30, hidden=(8,), lr=0.0, patience=1, validation=200, verbose=0).checked()
    prior, dataset, labels = runs.prepare_training(settings)
    _, results = runs.fit_and_evaluate(settings, prior, dataset, labels)
    assert (results["epochs"], results["best_epoch"]) == (2, 1) and "loss" in results["validation"]
    late = runs.TrainSettings(epochs=30, hidden=(8,), lr=0.0, patience=1, min_epochs=4, validation=200, verbose=0)
    assert runs.fit_and_evaluate(late.checked(), prior, dataset, labels)[1]["epochs"] == 6
    assert runs.TrainSettings(patience=2).checked().validation == runs.VALIDATION_SIZE


def test_held_out_images_lend_no_labels(digits):
    settings = runs.TrainSettings(model="semi_supervised", labels=30, validation=300).checked()
    labels = runs.training_labels(settings, digits)
    assert len(labels) == len(digits.y_train) and (labels[-300:] == -1).all() and (labels >= 0).sum() == 30
    with pytest.raises(runs.UsageError, match="holds out every one"):
        runs.prepare_training(dataclasses.replace(settings, validation=len(digits.x_train)))


@pytest.mark.parametrize(
    "name, by_class",
    [
        ("mmd", False),
        ("supervised", True),
        ("semi_supervised", True),
        ("label_conditioned", True),
        ("clustering", False),
    ],
)
def test_samples_by_class(name, by_class):
    model = _model(name)
    assert model.samples_by_class is by_class
    if by_class:
        assert model.sample(3, y=1, seed=0).shape == (3, 8, 8)


# ------------------------------------------------------------------------ import structure
def _top_level_imports(path, name):
    """The aae_keras modules `path` imports when it loads (not inside functions)."""
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    found = set()
    for node in ast.parse(open(path).read()).body:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            found |= {base} | {f"{base}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.If):  # aae_keras/__init__.py registers the models under an if
            found |= {a.name for n in ast.walk(node) if isinstance(n, ast.Import) for a in n.names}
            found |= {f"{n.module}.{a.name}" for n in ast.walk(node) if isinstance(n, ast.ImportFrom) for a in n.names}
    return {m for m in found if m in MODULES}


def test_no_import_cycle_between_modules():
    paths = {
        info.name: info.module_finder.find_spec(info.name).origin
        for info in pkgutil.walk_packages(aae_keras.__path__, prefix="aae_keras.")
    }
    graph = {name: _top_level_imports(path, name) - {name} for name, path in paths.items()}
    assert "aae_keras.cli" not in graph["aae_keras.recipes"] and "aae_keras.runs" in graph["aae_keras.recipes"]

    def cycle_from(start, seen=()):
        for module in graph[start]:
            if module in seen:
                return [*seen[seen.index(module) :], module]
            found = cycle_from(module, (*seen, module))
            if found:
                return found
        return None

    cycles = {name: cycle_from(name, (name,)) for name in graph}
    assert not {k: v for k, v in cycles.items() if v}


# Imports each module with no aae_keras module loaded before it (third-party ones stay loaded,
# so one subprocess pays for TensorFlow once): a cycle fails whichever module it is entered from.
IMPORT_EACH = """
import importlib, json, sys
report = {}
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m.split(".")[0] == "aae_keras"]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
        report[name] = sorted(m for m in sys.modules if m.split(".")[0] == "aae_keras")
    except Exception as error:
        report[name] = f"{type(error).__name__}: {error}"
print(json.dumps(report))
"""


def _import_each(*names):
    result = subprocess.run([sys.executable, "-c", IMPORT_EACH, *names], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


def test_every_module_imports_on_its_own_and_recipes_does_not_import_cli():
    report = _import_each(*MODULES)
    assert not {name: error for name, error in report.items() if isinstance(error, str)}
    assert "aae_keras.cli" not in report["aae_keras.recipes"] and "aae_keras.runs" in report["aae_keras.recipes"]


@pytest.mark.large
def test_every_module_imports_in_a_fresh_process():
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        reports = list(pool.map(_import_each, MODULES))  # about 5 s of TensorFlow import each
    assert not {k: v for report in reports for k, v in report.items() if isinstance(v, str)}


# ------------------------------------------------------------------- capability methods
# name -> (uses_labels, codes_match_prior, decoder_takes_class, figures beyond latent and samples,
#          task metrics)
CAPABILITIES = {
    "mmd": (False, True, False, (), set()),
    "adversarial": (False, True, False, (), set()),
    "label_conditioned": (True, True, False, (), {"codes_on_class_component"}),
    "supervised": (True, True, True, ("style_grid",), set()),
    "semi_supervised": (True, True, True, ("style_grid",), {"classification_error"}),
    "clustering": (False, True, True, ("style_grid", "clusters"), {"cluster_accuracy", "nmi"}),
    "dim_reduction": (False, False, False, ("clusters",), {"cluster_accuracy", "nmi"}),
}


def _model(name):
    return tiny_variant(name) if name in VARIANTS else tiny_model(name)


@pytest.mark.parametrize("name", CAPABILITIES)
def test_capabilities(name, digits):
    uses_labels, codes_match_prior, takes_class, figures, metrics = CAPABILITIES[name]
    model = _model(name)
    x, y = digits.x_test[:40], digits.y_test[:40]
    assert model.uses_labels is uses_labels and model.codes_match_prior is codes_match_prior
    assert model.decoder_takes_class is takes_class and model.figures == ("latent", "samples", *figures)
    scores = model.task_metrics(x, y)
    assert set(scores) == metrics and all(isinstance(v, float) and np.isfinite(v) for v in scores.values())
    z, labels = model.check_latents(5, seed=3)
    assert z.shape == (5, model.latent_dim) and z.dtype == np.float32
    assert labels == ([0, 1, 2, 3, 4] if takes_class else None)
    images = model.decode(z) if labels is None else model.decode(z, labels)
    assert images.shape == (5, 8, 8)
    np.testing.assert_array_equal(model.check_latents(5, seed=3)[0], z)  # fixed for a seed
    assert set(model.decoder_metadata()) == ({"cluster_heads"} if name == "dim_reduction" else set())


def test_dim_reduction_check_latents_add_the_cluster_heads():
    model = tiny_variant("dim_reduction")
    z, _ = model.check_latents(12)
    plain = np.asarray(model.prior.sample(12, seed=np.array([0, 11], np.int32)), np.float32)
    heads = np.asarray(model.heads)
    np.testing.assert_allclose(z - plain, heads[np.arange(12) % len(heads)], atol=1e-6)
    np.testing.assert_allclose(model.decoder_metadata()["cluster_heads"], heads, atol=1e-6)


def test_a_semi_supervised_dim_reduction_uses_labels_and_scores_clusters(digits):
    model = tiny_variant("dim_reduction", semi_supervised=True)
    assert model.uses_labels and set(model.task_metrics(digits.x_test[:30], digits.y_test[:30])) == {
        "cluster_accuracy",
        "nmi",
    }


def test_code_metrics_and_figures_follow_the_capabilities(digits, tmp_path):
    x, y = digits.x_test[:60], digits.y_test[:60]
    label_conditioned, reduction = tiny_variant("label_conditioned"), tiny_variant("dim_reduction")
    assert set(runs.code_metrics(label_conditioned, x, y)) == {
        "code_mmd2",
        "code_mmd2_method",
        "codes_near_mode",
        "codes_on_class_component",
    }
    assert set(runs.code_metrics(label_conditioned, x)) == {"code_mmd2", "code_mmd2_method", "codes_near_mode"}
    assert set(runs.code_metrics(reduction, x, y)) == {"cluster_accuracy", "nmi"}  # no MMD of the map
    test_split = data.Dataset(x_train=x, y_train=y, x_test=x, y_test=y, name="digits", num_classes=10)
    assert runs.write_plots(reduction, test_split, tmp_path, seed=0) == ["latent.png", "samples.png", "clusters.png"]
    assert sorted(os.listdir(tmp_path)) == ["clusters.png", "latent.png", "samples.png"]
