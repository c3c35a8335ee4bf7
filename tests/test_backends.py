"""Every model and matcher on the active Keras backend: the README's test command runs this file
under TensorFlow (with the whole suite), then again with KERAS_BACKEND=jax and KERAS_BACKEND=torch
(with test_priors.py; test_regularizers.py reruns on PyTorch, whose tensors refuse numpy constants:
on JAX the same jnp maths runs, and tests/test_core.py compares its closed-form MMD with TensorFlow's).

The same tests pass on all three (PyTorch skips `steps_per_execution`, which Keras's PyTorch
trainer refuses; TensorFlow skips the train-every-model tests, which test_models.py and
test_variants.py make there).
"""

import keras
import numpy as np
import pytest

from aae_keras import data, export, models, priors
from conftest import VARIANTS, tiny_model, tiny_variant, variant_labels

MMD_LOGS = {"loss", "reconstruction", "regularizer"}
ADVERSARIAL_LOGS = {"loss", "reconstruction", "discriminator_loss", "discriminator_accuracy", "generator_loss"}
CLASSIFICATION_LOGS = {"classification_loss", "classification_accuracy"}

CORE = {  # id -> (kind, keywords of tiny_model)
    "closed_form_mmd": ("mmd", {}),
    "sample_mmd": ("mmd", {"regularizer": "sample_mmd"}),
    "imq_mmd_swiss_roll": ("mmd", {"regularizer": "imq_mmd", "prior": priors.swiss_roll()}),
    "adversarial": ("adversarial", {}),
    "adversarial_options": (
        "adversarial",
        {
            "schedule": "paper",
            "posterior": "gaussian",
            "instance_noise": 0.1,
            "label_smoothing": 0.1,
            "discriminator_steps": 2,
        },
    ),
}


@pytest.fixture(scope="module")
def batch():
    digits = data.load("digits")
    return digits.x_train[:192], digits.y_train[:192]


def _values(variables):
    return [np.array(keras.ops.convert_to_numpy(v.value)) for v in variables]


def _state(model):
    """Every weight of the model and every optimizer variable, as numpy arrays."""
    optimizers = [model.phase_optimizer(name) for name in model._optimizer_groups()]
    return _values(model.weights) + [value for opt in optimizers for value in _values(opt.variables)]


def _max_difference(a, b):
    assert len(a) == len(b)
    return max(float(np.max(np.abs(u.astype(np.float64) - v.astype(np.float64)), initial=0.0)) for u, v in zip(a, b))


def _expected_logs(model):
    logs = ADVERSARIAL_LOGS if model.adversarial else MMD_LOGS
    return logs | set(model.penalties) | (CLASSIFICATION_LOGS if model.classifies else set())


def _check_uses(model, x, y=None):
    """fit logs the model's metrics, all finite; evaluate, encode, decode and sample work."""
    history = model.fit(x, y, epochs=2, batch_size=64, verbose=0).history
    assert set(history) == _expected_logs(model), sorted(history)
    assert all(np.isfinite(values).all() and len(values) == 2 for values in history.values()), history
    assert history["reconstruction"][1] < history["reconstruction"][0]
    scores = model.evaluate(x, y, batch_size=64, verbose=0, return_dict=True)
    assert set(scores) == _expected_logs(model) and all(np.isfinite(list(scores.values())))
    codes = model.encode(x[:5])
    assert codes.shape == (5, model.latent_dim) and np.isfinite(codes).all()
    if model.decoder_takes_class:
        assert model.decode(codes, np.arange(5) % model.num_classes).shape == (5, 8, 8)
    else:
        assert model.decode(codes).shape == (5, 8, 8)
    assert model.sample(3, seed=1).shape == (3, 8, 8)


# On TensorFlow, tests/test_models.py and tests/test_variants.py train every model and matcher.
other_backends_only = pytest.mark.skipif(
    keras.backend.backend() == "tensorflow", reason="covered on TensorFlow by test_models.py and test_variants.py"
)


@other_backends_only
@pytest.mark.parametrize("name", CORE)
def test_core_models_train_and_are_used(batch, name):
    kind, kwargs = CORE[name]
    _check_uses(tiny_model(kind, **kwargs), batch[0])


@other_backends_only
@pytest.mark.parametrize("regularizer", ["mmd", "adversarial"])
@pytest.mark.parametrize("name", VARIANTS)
def test_the_paper_family_trains_and_is_used(batch, name, regularizer):
    x, y = batch
    _check_uses(tiny_variant(name, regularizer), x, variant_labels(name, y))


RESUMED = {  # id -> a function building a fresh compiled model, and the labels it trains on
    "closed_form_mmd": (lambda: tiny_model("mmd"), None),
    "adversarial_options": (lambda: tiny_model("adversarial", **CORE["adversarial_options"][1]), None),
    "semi_supervised_adversarial": (lambda: tiny_variant("semi_supervised", "adversarial"), "partial"),
    "supervised_mmd": (lambda: tiny_variant("supervised", "mmd"), "all"),
}


@pytest.mark.parametrize("name", RESUMED)
def test_fit_save_load_fit_equals_one_fit(tmp_path, batch, name):
    """2 epochs, save (.keras), load, 1 more == 3 epochs straight: every optimizer's state (all the
    phases', in the trainer's state on JAX) and the stateless seeds survive the file. The same
    seed gives the same run."""
    make, labels = RESUMED[name]
    x, y = batch
    y = {None: None, "all": y, "partial": data.keep_labels(y, 40)}[labels]
    straight = make()
    straight.fit(x, y, epochs=3, batch_size=64, shuffle=False, verbose=0)

    first = make()
    first.fit(x, y, epochs=2, batch_size=64, shuffle=False, verbose=0)
    first.save(tmp_path / "m.keras")
    resumed = keras.saving.load_model(tmp_path / "m.keras")
    assert _max_difference(_state(first), _state(resumed)) == 0.0
    resumed.fit(x, y, epochs=3, initial_epoch=2, batch_size=64, shuffle=False, verbose=0)
    assert _max_difference(_state(straight), _state(resumed)) < 1e-6

    again = make()
    again.fit(x, y, epochs=3, batch_size=64, shuffle=False, verbose=0)
    assert _max_difference(_state(straight), _state(again)) == 0.0


def test_steps_per_execution_runs_the_same_steps(batch):
    """compile(steps_per_execution=4) trains the same weights as one step per call."""
    if keras.backend.backend() == "torch":
        pytest.skip("Keras's PyTorch trainer runs one step per call (steps_per_execution must be 1)")
    x = batch[0][:160]  # 5 steps: one group of 4, then one step
    one = tiny_model("adversarial")
    one.fit(x, epochs=1, batch_size=32, shuffle=False, verbose=0)
    four = tiny_model("adversarial")
    four.compile(steps_per_execution=4)
    four.fit(x, epochs=1, batch_size=32, shuffle=False, verbose=0)
    if keras.backend.backend() == "jax":  # groups of 4 steps run as one jitted lax.scan there
        assert getattr(four.train_function, "fused", False)
    assert _max_difference(_state(one), _state(four)) < 1e-5


def _uncompiled(name, regularizer):
    """A built, never compiled model: a core model of CORE or a variant."""
    if name in CORE:
        kind, kwargs = CORE[name]
        return tiny_model(kind, compiled=False, **kwargs)
    return tiny_variant(name, regularizer, compiled=False)


SAVED = [
    ("closed_form_mmd", None),
    ("adversarial_options", None),
    ("label_conditioned", "adversarial"),
    ("supervised", "mmd"),
    ("semi_supervised", "adversarial"),
    ("clustering", "mmd"),
    ("dim_reduction", "adversarial"),
]  # every class, both regularizers


@pytest.mark.parametrize("name, regularizer", SAVED, ids=[f"{n}-{r}" if r else n for n, r in SAVED])
def test_every_model_saves_compiled_or_not_trained_or_not(tmp_path, batch, name, regularizer):
    """Keras saves uncompiled models; so does every model class here, and each loads back to the
    state it was saved in: uncompiled, compiled, trained (weights and optimizers)."""
    x, y = batch
    model = _uncompiled(name, regularizer)
    assert not model.compiled
    model.save(tmp_path / "uncompiled.keras")
    loaded = keras.saving.load_model(tmp_path / "uncompiled.keras")
    assert not loaded.compiled and type(loaded) is type(model)
    assert _max_difference(_values(model.weights), _values(loaded.weights)) == 0.0
    model.compile()
    model.save(tmp_path / "compiled.keras")
    loaded = keras.saving.load_model(tmp_path / "compiled.keras")
    assert loaded.compiled and _max_difference(_state(model), _state(loaded)) == 0.0
    labels = variant_labels(name, y) if name in VARIANTS else None
    model.fit(x, labels, epochs=1, batch_size=64, verbose=0)
    model.save(tmp_path / "trained.keras")
    loaded = keras.saving.load_model(tmp_path / "trained.keras")
    assert _max_difference(_state(model), _state(loaded)) == 0.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["compiled.keras", "trained.keras", "uncompiled.keras"]


class _EmptyBatches(keras.utils.PyDataset):
    def __len__(self):
        return 0

    def __getitem__(self, index):
        raise IndexError(index)


@pytest.mark.parametrize("method", ["fit", "evaluate"])
def test_an_empty_py_dataset_gets_the_same_clear_error(method):
    model = tiny_model("mmd")
    what = "training" if method == "fit" else "evaluation"
    with pytest.raises(ValueError, match=f"The {what} data is an empty keras.utils.PyDataset"):
        getattr(model, method)(_EmptyBatches(), verbose=0)


def test_bad_data_gets_the_same_clear_errors(batch):
    """Non-finite images, images of the wrong shape and labels out of range, as numpy arrays and
    inside a PyDataset (checked in the train step), are one-line ValueErrors."""
    x, y = batch
    model = tiny_variant("semi_supervised", "mmd")
    bad = x.copy()
    bad[3, 2, 2] = np.nan
    with pytest.raises(ValueError, match="non-finite values"):
        model.fit(bad, y, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"takes examples of shape \(8, 8\)"):
        model.fit(x.reshape(-1, 64), y, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"Labels must lie in -?\d\.\.9"):
        model.fit(x, np.where(y == 3, 12, y), epochs=1, verbose=0)

    class Batches(keras.utils.PyDataset):
        def __init__(self, images, labels):
            super().__init__()
            self.images, self.labels = images, labels

        def __len__(self):
            return 2

        def __getitem__(self, i):
            return self.images[i * 32 : (i + 1) * 32], self.labels[i * 32 : (i + 1) * 32]

    start = _state(model)
    with pytest.raises(ValueError, match=r"^The training data contains non-finite values \(NaN or inf\)"):
        model.fit(Batches(bad, y), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"^The training data holds a label outside -1\.\.9"):
        model.fit(Batches(x, np.where(y == 3, 12, y).astype("int32")), epochs=1, verbose=0)
    with pytest.raises(ValueError) as raised:
        model.fit(Batches(bad, y), epochs=1, verbose=0)
    assert "\n" not in str(raised.value) and raised.value.__cause__ is None
    before = _state(model)
    assert _max_difference(start, before) == 0.0  # the refused batches changed nothing
    history = model.fit(x, y, epochs=1, batch_size=64, verbose=0).history  # and the model trains on
    assert np.isfinite(history["loss"]).all() and _max_difference(before, _state(model)) > 0


def test_a_supervised_model_needs_labels(batch):
    model = tiny_variant("supervised", "adversarial")
    with pytest.raises(ValueError, match=r"trains on labeled data: call fit\(x, y\)"):
        model.fit(batch[0], epochs=1, verbose=0)


def test_models_listed_here_cover_the_package():
    """Every public model class is trained above (through CORE, the variants or their base)."""
    trained = {models.MMDAutoencoder, models.AdversarialAutoencoder, *(cls for cls, _, _ in VARIANTS.values())}
    public = {getattr(models, name) for name in models.__all__ if isinstance(getattr(models, name), type)}
    bases = {models.LatentAutoencoder, models.MatchedAutoencoder}
    assert public - bases <= trained, public - bases - trained


@pytest.mark.skipif(keras.backend.backend() == "tensorflow", reason="TensorFlow has what they need")
def test_what_needs_tensorflow_says_so(tmp_path):
    """Export (tf2onnx, SavedModel) and TensorFlow Probability priors name the backend to use."""
    model = tiny_model("mmd")
    with pytest.raises(RuntimeError, match="export it from a TensorFlow install: KERAS_BACKEND=tensorflow"):
        export.export_decoder(model, tmp_path / "decoder.onnx")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError, match="needs the TensorFlow backend.*Set KERAS_BACKEND=tensorflow"):
        priors.gaussian(2).distribution
    with pytest.raises(TypeError, match="A prior must be an aae_keras prior"):
        models.MMDAutoencoder(model.encoder, model.decoder, "gaussian")
