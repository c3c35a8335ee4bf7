"""The training core: TensorFlow stays in its backend module, and every model shares one set of phases."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "aae_keras"
# Written with keras.ops / keras.random and aae_keras.backend only.
BACKEND_NEUTRAL = ["models", "matchers.py", "regularizers.py", "kernels.py", "priors.py", "backend/__init__.py"]

BLOCKED_IMPORT = """
import sys, importlib.abc, importlib.machinery

class Block(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    # TensorFlow, TFP and tf-keras look installed (a probe by find_spec gets a spec), but
    # every import of them fails
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "tensorflow_probability", "tf_keras"):
            return importlib.machinery.ModuleSpec(name, self)

    def create_module(self, spec):
        raise ImportError(f"blocked by the test: {spec.name}")

    def exec_module(self, module):
        pass

sys.meta_path.insert(0, Block())
import keras
import aae_keras
from aae_keras import matchers, models, networks, priors, regularizers
enc, dec, disc = networks.build("mlp", (8, 8), 2, hidden=(8,))
model = models.AdversarialAutoencoder(enc, dec, disc, priors.gaussian_mixture(10, 2))
semi = models.SemiSupervisedAutoencoder.create((8, 8), priors.gaussian(2), 10, hidden=(8,), regularizer="adversarial")
mmd = models.MMDAutoencoder(*networks.build("mlp", (8, 8), 2, hidden=(8,))[:2], priors.gaussian(2))
print(keras.backend.backend(), [type(m).__name__ for m in semi.matchers + mmd.matchers],
      sorted(name for name in sys.modules if name.startswith("tensorflow")))
"""


def _module_imports(path):
    """Every module a file imports, at any depth of the file."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


@pytest.mark.parametrize("part", BACKEND_NEUTRAL)
def test_the_core_never_imports_tensorflow_itself(part):
    paths = sorted((PACKAGE / part).glob("*.py")) if (PACKAGE / part).is_dir() else [PACKAGE / part]
    for path in paths:
        found = [
            name for name in _module_imports(path) if name.split(".")[0] in ("tensorflow", "tensorflow_probability")
        ]
        assert not found, (
            f"{path.relative_to(PACKAGE)} imports {found}: TensorFlow code belongs in aae_keras/backend/tensorflow.py"
        )


def test_models_build_with_tensorflow_blocked():
    """With TensorFlow and TFP unimportable (Keras on its JAX backend, as on the GPU machine), the
    package, the models and their matchers import and build: nothing outside the backend module
    needs TensorFlow."""
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run(
        [sys.executable, "-c", BLOCKED_IMPORT], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[0] == "jax"
    assert "['Adversary', 'Adversary', 'MMDMatcher'] []" in result.stdout, result.stdout


# ------------------------------------------------------------------ one core for every model
import keras  # noqa: E402
import numpy as np  # noqa: E402

from aae_keras import matchers, models, networks, priors, regularizers  # noqa: E402
from conftest import VARIANTS, tiny_model, tiny_variant, variant_labels  # noqa: E402

MODEL_CLASSES = [
    models.MMDAutoencoder,
    models.AdversarialAutoencoder,
    models.MatchedAutoencoder,
    *(cls for cls, _, _ in VARIANTS.values()),
]


def test_phases_and_compile_are_written_once():
    """Only the core defines the train and test steps, compile and the optimizer groups."""
    for cls in MODEL_CLASSES:
        for method in ("train_step", "test_step", "compile", "_optimizer_groups", "_objective"):
            assert method not in vars(cls), f"{cls.__name__} redefines {method}"


@pytest.fixture(scope="module")
def small(digits):
    return digits.x_train[:200], digits.y_train[:200]


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_variant_takes_the_adversarial_options_and_keeps_them(name, small, tmp_path):
    x, y = small
    model = tiny_variant(
        name, "adversarial", schedule="paper", instance_noise=0.1, label_smoothing=0.1, discriminator_steps=2
    )
    assert all(
        isinstance(m, matchers.Adversary) and m.instance_noise == 0.1 and m.label_smoothing == 0.1
        for m in model.matchers
    )
    history = model.fit(x, variant_labels(name, y), epochs=1, batch_size=50, verbose=0)
    assert np.isfinite(history.history["discriminator_loss"][-1])
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert (loaded.instance_noise, loaded.label_smoothing, loaded.discriminator_steps) == (0.1, 0.1, 2)
    for a, b in zip(model.discriminators, loaded.discriminators):
        np.testing.assert_array_equal(a.get_weights()[0], b.get_weights()[0])


def test_discriminator_steps_and_noise_change_training(small):
    x, _ = small
    weights = {}
    for options in ({}, {"discriminator_steps": 3}, {"instance_noise": 0.5}, {"label_smoothing": 0.2}):
        model = tiny_variant("clustering", "adversarial", schedule="paper", **options)
        model.fit(x, epochs=1, batch_size=50, verbose=0, shuffle=False)
        weights[str(options)] = model.discriminators[0].get_weights()[0]
    base = weights.pop("{}")
    for options, got in weights.items():
        assert np.abs(got - base).max() > 1e-6, f"{options} changed nothing"


@pytest.mark.parametrize("name", sorted(VARIANTS))
@pytest.mark.parametrize("regularizer", ["mmd", "adversarial"])
def test_every_variant_takes_a_gaussian_posterior(name, regularizer, small, tmp_path):
    x, y = small
    model = tiny_variant(name, regularizer, posterior="gaussian")
    extra = model.num_classes if name in ("semi_supervised", "clustering", "dim_reduction") else 0
    assert model.encoder.output_shape[-1] == extra + 2 * model.latent_dim
    model.fit(x, variant_labels(name, y), epochs=1, batch_size=50, verbose=0)
    codes = model.encode(x[:20])
    np.testing.assert_array_equal(codes, model.encode(x[:20]))  # the posterior means, no sampling
    assert codes.shape[1] == model.latent_dim
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert loaded.posterior == "gaussian"
    np.testing.assert_allclose(loaded.encode(x[:20]), codes, atol=1e-6)


def test_adversarial_options_need_the_adversarial_regularizer():
    with pytest.raises(ValueError, match='instance_noise apply to regularizer="adversarial" only'):
        tiny_variant("semi_supervised", "mmd", instance_noise=0.1)
    with pytest.raises(ValueError, match="discriminator_steps must be >= 1"):
        tiny_variant("semi_supervised", "adversarial", discriminator_steps=0)
    with pytest.raises(ValueError, match="label_smoothing < 0.5"):
        tiny_model("adversarial", label_smoothing=0.7)


def test_matchers_are_registered_serializable_layers():
    prior = priors.gaussian_mixture(10, 2)
    for matcher in (
        matchers.MMDMatcher(regularizers.SampleMMD(prior, kernel="imq")),
        matchers.Adversary(prior, networks.mlp_discriminator(13, (8,)), 0.1, 0.05, num_classes=10),
    ):
        assert isinstance(matcher, keras.layers.Layer)
        again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(matcher))
        assert type(again) is type(matcher) and again.get_config() == matcher.get_config()
    with pytest.raises(ValueError, match="takes 2 inputs but the prior has event size 2 and 11 label slots"):
        matchers.Adversary(prior, networks.mlp_discriminator(2, (8,)), num_classes=10)


def test_the_model_tracks_its_matchers_weights_once():
    model = tiny_variant("semi_supervised", "adversarial")
    ids = [id(v) for v in model.trainable_variables]
    assert len(ids) == len(set(ids))
    discriminator_weights = sum(len(d.trainable_variables) for d in model.discriminators)
    assert len(model.trainable_variables) == (
        len(model.encoder.trainable_variables) + len(model.decoder.trainable_variables) + discriminator_weights
    )


# ------------------------------------------------------------------------ the JAX backend so far
ON_JAX = (
    BLOCKED_IMPORT.split("import keras")[0]
    + """
import json, os
import numpy as np
import keras
from aae_keras import presets, priors, regularizers

shipped = [name for name in presets.list() if presets.info(name).get("shipped")]
checks = {}
for name in shipped:
    model = presets.load(name)
    with open(os.path.join(model.preset["directory"], presets.METADATA_FILE)) as f:
        checks[name] = presets.verify_check(model, json.load(f)["check"])
prior = priors.gaussian_mixture(10, 2)
a, b = (np.asarray(prior.sample(20000, seed=3)) for _ in range(2))
z = np.linspace(-3, 3, 128, dtype=np.float32).reshape(64, 2)
model.compile()
history = model.fit(np.full((8, 28, 28), 0.5, np.float32), epochs=1, batch_size=4, verbose=0).history
print(json.dumps({"checks": checks, "same_seed_same_draws": bool(np.array_equal(a, b)),
                  "mean_radius": float(np.mean(np.linalg.norm(a, axis=1))),
                  "mmd": float(regularizers.ClosedFormMMD(prior)(z)), "trained": sorted(history),
                  "tensorflow_imported": sorted(m for m in __import__("sys").modules if m.startswith("tensorflow"))}))
"""
)


@pytest.mark.parametrize("backend_name", ["jax", "torch"])
def test_without_tensorflow_the_shipped_presets_load_train_and_the_maths_match(backend_name):
    """On Keras's JAX and PyTorch backends, with TensorFlow blocked: every shipped preset loads and
    decodes its check latents to the stored outputs, priors sample reproducibly, the closed-form
    MMD equals TensorFlow's, and a loaded preset trains on."""
    env = {**os.environ, "KERAS_BACKEND": backend_name, "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-c", ON_JAX], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    found = __import__("json").loads(result.stdout.strip().splitlines()[-1])
    manifest = __import__("json").loads((PACKAGE.parent / "zoo" / "manifest.json").read_text())
    shipped = {name for name, entry in manifest["presets"].items() if entry.get("shipped")}
    assert set(found["checks"]) == shipped and max(found["checks"].values()) < 1e-5, found["checks"]
    assert found["same_seed_same_draws"] and abs(found["mean_radius"] - 4.0) < 0.1
    z = np.linspace(-3, 3, 128, dtype=np.float32).reshape(64, 2)
    on_tensorflow = float(regularizers.ClosedFormMMD(priors.gaussian_mixture(10, 2))(z))
    assert abs(found["mmd"] - on_tensorflow) < 1e-5 * max(1.0, abs(on_tensorflow))
    assert {"loss", "classification_loss"} <= set(found["trained"]), found["trained"]  # the last: semi-supervised
    assert found["tensorflow_imported"] == []
