"""XLA, the library's default on TensorFlow (CPUs included): what compile chooses, the same
training as without it, and bad data refused before the compiled step (XLA drops in-graph
asserts), for every kind of input fit and evaluate take."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from aae_keras import data
from conftest import tiny_model, tiny_variant

pytestmark = [
    pytest.mark.xla,
    pytest.mark.skipif(
        keras.backend.backend() != "tensorflow", reason="XLA by default is TensorFlow's (JAX always compiles)"
    ),
]


@pytest.fixture(scope="module")
def batch():
    digits = data.load("digits")
    return digits.x_train[:128], digits.y_train[:128]


def _weights(model):
    return [np.asarray(w) for w in model.get_weights()]


def test_compile_defaults_to_xla_and_saves_the_default(monkeypatch):
    model = tiny_model("mmd")
    assert model.jit_compile is True and model.get_compile_config()["jit_compile"] == "auto"
    model.compile(jit_compile=False)
    assert model.jit_compile is False and model.get_compile_config()["jit_compile"] is False
    monkeypatch.setenv("AAE_KERAS_XLA", "0")
    model.compile()
    assert model.jit_compile is False  # Keras's own choice on a CPU
    monkeypatch.setenv("AAE_KERAS_XLA", "1")
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        distributed = tiny_model("mmd")
    assert distributed.jit_compile is False  # Keras does not compile tf.distribute steps with XLA


@pytest.fixture
def draws_from_integer_bits(monkeypatch):
    """The backend's random draws made from stateless integer bits of non-negative seeds, which
    XLA and TensorFlow's kernels agree on (their float draws differ, and so do their bits for a
    negative seed: see aae_keras/backend/tensorflow.py)."""
    from aae_keras.backend import tensorflow as tf_backend

    def uniform(shape, seed):
        seed = tf.bitwise.bitwise_and(tf.cast(seed, tf.int32), 0x7FFFFFFF)  # XLA extends negative seeds otherwise
        bits = tf.random.stateless_uniform(shape, seed, minval=None, maxval=None, dtype=tf.uint32)
        return (tf.cast(tf.bitwise.right_shift(bits, 8), tf.float32) + 0.5) * 2.0**-24

    def normal(shape, seed):
        u = uniform([2, *shape], seed)
        return tf.sqrt(-2.0 * tf.math.log(u[0])) * tf.cos(2.0 * np.pi * u[1])

    def categorical(logits, n, seed):
        gumbel = -tf.math.log(-tf.math.log(uniform([n, logits.shape[-1]], seed)))
        return tf.argmax(tf.convert_to_tensor(logits, tf.float32)[0] + gumbel, axis=-1, output_type=tf.int32)

    for name, draw in (("uniform", uniform), ("normal", normal), ("categorical", categorical)):
        monkeypatch.setattr(tf_backend, name, draw)


@pytest.mark.parametrize("kind, options", [("mmd", {}), ("adversarial", {}), ("adversarial", {"schedule": "joint"})])
def test_xla_trains_what_the_graph_trains(batch, draws_from_integer_bits, kind, options):
    """The same steps with and without XLA, given the same random numbers. Plain SGD: Adam's
    first steps turn float rounding in a near-zero gradient into a whole learning-rate step."""
    made = []
    for jit in (True, False):
        model = tiny_model(kind, **options)
        model.compile(**{name: keras.optimizers.SGD(0.05) for name in model._optimizer_groups()}, jit_compile=jit)
        model.fit(batch[0], epochs=1, batch_size=32, shuffle=False, verbose=0)
        made.append(_weights(model))
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(*made)) < 1e-5


def test_bad_batches_are_refused_before_the_compiled_step(batch):
    x, y = batch
    model = tiny_variant("semi_supervised", "mmd")
    assert model.jit_compile
    bad = x.copy()
    bad[7, 1, 1] = np.inf  # in the first batch of 32
    out_of_range = np.where(y == 3, 12, y).astype("int32")
    start = _weights(model)

    def batches(images, labels):
        return tf.data.Dataset.from_tensor_slices((images, labels)).batch(32)

    def generator(images, labels):
        for i in range(0, len(images), 32):
            yield images[i : i + 32], labels[i : i + 32]

    cases = [
        (lambda: model.fit(batches(bad, y), epochs=1, verbose=0), "The training data contains non-finite values"),
        (lambda: model.fit(batches(x, out_of_range), epochs=1, verbose=0), "The training data holds a label outside"),
        (
            lambda: model.fit(generator(bad, y), epochs=1, steps_per_epoch=4, verbose=0),
            "The training data contains non-finite",
        ),
        (
            lambda: model.fit(x, y, validation_data=batches(bad, y), epochs=1, verbose=0),
            "The validation data contains non-finite",
        ),
        (lambda: model.evaluate(batches(bad, y), verbose=0), "The evaluation data contains non-finite values"),
        (lambda: model.evaluate(x, out_of_range, verbose=0), r"Labels must lie in 0\.\.9 \(num_classes=10, or -1"),
    ]
    for run, message in cases[:3]:
        with pytest.raises(ValueError, match=f"^{message}") as raised:
            run()
        assert "\n" not in str(raised.value) and raised.value.__cause__ is None
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(start, _weights(model))) == 0.0  # nothing trained
    for run, message in cases[3:]:
        with pytest.raises(ValueError, match=message):
            run()
    history = model.fit(batches(x, y), epochs=1, verbose=0).history  # good data trains on
    assert np.isfinite(history["loss"]).all()
