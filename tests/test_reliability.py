"""Reliability of the models: small batches, logged losses, bad data, sample weights, labels,
exact resumption, mixed precision and the numpy API's errors (the README's Reliability section)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from aae_keras import data, priors, regularizers
from conftest import tiny_model, tiny_variant, variant_labels

MMD_MODELS = ["mmd", "sample_mmd", "imq_mmd", "supervised", "semi_supervised", "clustering", "dim_reduction"]
ADVERSARIAL_MODELS = [
    "adversarial",
    "label_conditioned",
    "supervised",
    "semi_supervised",
    "clustering",
    "dim_reduction",
]


@pytest.fixture(scope="module")
def small(digits):
    return digits.x_train[:200], digits.y_train[:200]


def make(name, regularizer="mmd", **kwargs):
    """A tiny core model ("mmd", "sample_mmd", "imq_mmd", "adversarial") or variant."""
    if name in ("mmd", "sample_mmd", "imq_mmd"):
        return tiny_model("mmd", regularizer=name, **kwargs)
    if name == "adversarial":
        return tiny_model("adversarial", **kwargs)
    return tiny_variant(name, regularizer=regularizer, **kwargs)


def all_finite(model):
    return all(np.all(np.isfinite(w)) for w in model.get_weights())


# ------------------------------------------------------------------ 1. batches of 0 or 1 codes
@pytest.mark.parametrize("name", MMD_MODELS)
def test_a_batch_of_one_code_trains_without_nan(name, small):
    x, y = small
    model = make(name)
    history = model.fit(x[:101], variant_labels(name, y[:101]), epochs=1, batch_size=100, verbose=0)
    assert np.isfinite(history.history["loss"][-1]) and all_finite(model)
    history = model.fit(x[:3], variant_labels(name, y[:3], labeled_fraction=1), epochs=1, batch_size=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1]) and all_finite(model)


@pytest.mark.parametrize(
    "reg",
    [
        regularizers.ClosedFormMMD(priors.gaussian(2)),
        regularizers.SampleMMD(priors.gaussian(2)),
        regularizers.SampleMMD(priors.gaussian(2), kernel="imq"),
    ],
)
@pytest.mark.parametrize("n", [0, 1])
def test_mmd_of_fewer_than_two_codes_is_zero_with_finite_gradient(reg, n):
    z = tf.Variable(np.ones((n, 2), np.float32))
    with tf.GradientTape() as tape:
        value = reg(z)
    assert float(value) == 0.0
    assert np.all(np.isfinite(tape.gradient(value, z).numpy()))


def test_mmd_of_two_codes_is_still_estimated():
    reg = regularizers.ClosedFormMMD(priors.gaussian(2))
    assert float(reg(np.full((2, 2), 5.0, np.float32))) > 0.1


# ------------------------------------------------------------------ 2. every model logs `loss`
@pytest.mark.parametrize("name", ADVERSARIAL_MODELS)
def test_adversarial_models_log_their_total_objective(name, small):
    x, y = small
    model = make(name, regularizer="adversarial")
    logs = model.fit(x, variant_labels(name, y), epochs=1, batch_size=100, verbose=0).history
    expected = logs["reconstruction"][0] + logs["generator_loss"][0] + logs.get("head_penalty", [0.0])[0]
    assert logs["loss"][0] == pytest.approx(expected, rel=1e-5)
    assert "loss" in model.evaluate(x, variant_labels(name, y), verbose=0, return_dict=True)


def test_terminate_on_nan_stops_an_adversarial_run(small):
    model = make("adversarial")
    batches = []

    class PoisonAndCount(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            batches.append(batch)
            if len(batches) == 1:
                model.decoder.set_weights([np.full_like(w, np.nan) for w in model.decoder.get_weights()])

    model.fit(
        small[0], epochs=5, batch_size=50, verbose=0, callbacks=[PoisonAndCount(), keras.callbacks.TerminateOnNaN()]
    )
    assert len(batches) == 2  # the batch after the poisoning logs a NaN loss, and the run stops


# ------------------------------------------------------------------ 3. images outside [0, 1]
@pytest.mark.parametrize("kind", ["uint8", "float 0..16", "pipeline uint8"])
def test_bce_refuses_images_outside_the_unit_range(kind, small):
    x = small[0] * 16
    x = x.astype(np.uint8) if "uint8" in kind else x
    if kind.startswith("pipeline"):
        x = tf.data.Dataset.from_tensor_slices(x).batch(50)
    with pytest.raises(ValueError, match=r"outside \[0, 1\].*reconstruction=\"mse\""):
        make("mmd").fit(x, epochs=1, verbose=0)


def test_semi_supervised_refuses_out_of_range_images_before_building_batches(small):
    x, y = small
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        make("semi_supervised").fit(x * 16, data.keep_labels(y, 20), epochs=1, verbose=0)


def test_mse_models_take_uint8_arrays(small):
    model = make("mmd", reconstruction="mse")
    history = model.fit((small[0] * 16).astype(np.uint8), epochs=1, batch_size=50, verbose=0)
    assert np.isfinite(history.history["loss"][0])


# ------------------------------------------------------------------ 4. sample weights
@pytest.mark.parametrize("how", ["sample_weight", "class_weight", "pipeline"])
def test_sample_weights_are_refused(how, small):
    x, y = small
    model = make("semi_supervised")
    kwargs = {"sample_weight": np.ones(len(x))} if how == "sample_weight" else {}
    if how == "class_weight":
        kwargs = {"class_weight": {c: 1.0 for c in range(10)}}
    if how == "pipeline":
        x, y = tf.data.Dataset.from_tensor_slices((x, y, np.ones(len(x), np.float32))).batch(50), None
    with pytest.raises(ValueError, match="do not support (sample_weight|class_weight)"):
        model.fit(x, y, epochs=1, verbose=0, **kwargs)


# ------------------------------------------------------------------ 5. labels
def test_float_labels_in_a_pipeline_must_be_whole_numbers(small):
    x, y = small
    fractional = tf.data.Dataset.from_tensor_slices((x, y + 0.5)).batch(50)
    with pytest.raises(ValueError, match="not whole numbers"):
        make("semi_supervised").fit(fractional, epochs=1, verbose=0)
    whole = tf.data.Dataset.from_tensor_slices((x, y.astype(np.float32))).batch(50)
    assert np.isfinite(make("semi_supervised").fit(whole, epochs=1, verbose=0).history["loss"][0])


def test_string_labels_get_a_clear_error(small):
    x, y = small
    with pytest.raises(ValueError, match="Labels must be 1-D integers"):
        make("semi_supervised").fit(x, y.astype(str), epochs=1, verbose=0)
    strings = tf.data.Dataset.from_tensor_slices((x, y.astype(str))).batch(50)
    with pytest.raises(ValueError, match="Labels must be integer classes"):
        make("semi_supervised").fit(strings, epochs=1, verbose=0)


def test_validation_split_with_partial_labels(small):
    x, y = small
    model = make("semi_supervised")
    history = model.fit(x, data.keep_labels(y, 40), validation_split=0.25, epochs=1, batch_size=50, verbose=0)
    assert np.isfinite(history.history["val_loss"][0])


# ------------------------------------------------------------------ 6. exact resumption
class Interrupt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt


@pytest.mark.parametrize("name", ["semi_supervised", "mmd"])
def test_backup_and_restore_resumes_partial_label_runs_exactly(name, small, tmp_path):
    x, y = small
    labels = data.keep_labels(y, 30) if name != "mmd" else None
    kwargs = (
        dict(epochs=4, batch_size=50, verbose=0, labeled_batch_size=10)
        if labels is not None
        else dict(epochs=4, batch_size=50, verbose=0)
    )
    straight = make(name)
    straight.fit(x, labels, **kwargs)
    resumed = make(name)
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    with pytest.raises(KeyboardInterrupt):
        resumed.fit(x, labels, callbacks=[backup, Interrupt()], **kwargs)
    resumed = make(name)  # a fresh process would rebuild the model, then resume
    resumed.fit(x, labels, callbacks=[keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))], **kwargs)
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ 11. mixed precision
MIXED_CASES = [
    ("mmd", "mmd", {}),
    ("adversarial", "adversarial", {"posterior": "gaussian"}),
    ("label_conditioned", "mmd", {}),
    ("supervised", "adversarial", {}),
    ("semi_supervised", "adversarial", {}),
    ("clustering", "mmd", {}),
    ("dim_reduction", "adversarial", {}),
]


@pytest.mark.parametrize("name, regularizer, kwargs", MIXED_CASES, ids=[c[0] for c in MIXED_CASES])
def test_every_model_trains_and_saves_under_mixed_precision(mixed_policy, name, regularizer, kwargs, small, tmp_path):
    x, y = small[0][:100], small[1][:100]
    model = make(name, regularizer, **kwargs)
    labels = variant_labels(name, y) if name not in ("mmd", "adversarial") else None
    history = model.fit(x, labels, epochs=1, batch_size=50, verbose=0)
    assert all(np.isfinite(v[-1]) for v in history.history.values()) and all_finite(model)
    assert model.encoder.compute_dtype == mixed_policy.split("_")[1]
    if mixed_policy == "mixed_float16":
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    codes = model.encode(x[:5])
    assert codes.dtype == np.float32 and np.all(np.isfinite(codes))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(loaded.encode(x[:5]), codes)
    loaded.fit(x, labels, epochs=1, batch_size=50, verbose=0)  # its optimizers came back too


def test_the_latent_regularizer_runs_in_float32_under_mixed_precision(mixed_policy, small):
    model = make("mmd")
    model.fit(small[0], epochs=1, batch_size=50, verbose=0)
    z = model._codes(tf.constant(small[0][:10]))
    assert z.dtype == tf.float32 and model.regularizer(z).dtype == tf.float32


# ------------------------------------------------------------------ errors of the numpy API
def test_encode_and_decode_of_nothing(small):
    model = make("semi_supervised")
    with pytest.raises(ValueError, match="encode got no examples"):
        model.encode(small[0][:0])
    with pytest.raises(ValueError, match="encode got no examples"):
        model.classify(small[0][:0])
    with pytest.raises(ValueError, match="decode got no examples"):
        model.decode(np.zeros((0, 3)), [])


def test_fit_on_an_empty_array(small):
    with pytest.raises(ValueError, match="training data is empty"):
        make("mmd").fit(small[0][:0], epochs=1, verbose=0)


@pytest.mark.parametrize("form", ["array", "dataset"])
def test_nan_in_validation_data_is_named_as_such(form, small):
    x = small[0]
    bad = x[:50].copy()
    bad[3, 2, 2] = np.nan
    validation = bad if form == "array" else tf.data.Dataset.from_tensor_slices(bad).batch(25)
    with pytest.raises(ValueError, match="validation data contains"):
        make("mmd").fit(x, validation_data=validation, epochs=1, verbose=0)


@pytest.mark.parametrize("form", ["array", "dataset"])
def test_nan_passed_to_evaluate(form, small):
    bad = small[0][:50].copy()
    bad[0, 0, 0] = np.inf
    data_in = bad if form == "array" else tf.data.Dataset.from_tensor_slices(bad).batch(25)
    with pytest.raises(ValueError, match="evaluation data contains .*non-finite"):
        make("adversarial").evaluate(data_in, verbose=0)


def test_non_numeric_images_get_a_clear_error():
    model = make("mmd")
    with pytest.raises(ValueError, match="must be numeric"):
        model.encode(np.full((2, 8, 8), "a"))


def test_encoding_at_varying_sizes_does_not_retrace(small, capfd, caplog, tmp_path):
    make("semi_supervised").save(tmp_path / "m.keras")
    tf.get_logger().setLevel("WARNING")
    for _ in range(4):  # e.g. several models loaded in one session, used at several sizes
        model = keras.saving.load_model(tmp_path / "m.keras")
        for n in (1, 2, 7, 12, 30, 100, 300):
            model.encode(small[0][:n])
            model.decode(np.zeros((n, 3), np.float32), np.zeros(n, int))
    assert "retracing" not in "".join(capfd.readouterr()) + caplog.text
