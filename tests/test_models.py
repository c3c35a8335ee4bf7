import keras
import numpy as np
import pytest
import tensorflow as tf

from aae_keras import data, metrics, models, networks, priors, regularizers
from conftest import tiny_model

RING = priors.gaussian_mixture(10, 2)


def _entropy_floor(x):
    """The smallest possible summed binary cross-entropy: that of x against itself."""
    p = np.clip(x, 1e-7, 1 - 1e-7)
    return float(np.mean(np.sum(-(p * np.log(p) + (1 - p) * np.log(1 - p)), axis=(1, 2))))


@pytest.mark.large
@pytest.mark.parametrize(
    "kind,kwargs,floor",
    [("mmd", {"weight": 100.0}, 0.75), ("adversarial", {}, 0.65)],
    ids=["mmd", "adversarial"],
)
def test_learns_the_ring_prior_on_digits(digits, kind, kwargs, floor):
    """Codes gather at the prior's modes, the MMD to the prior falls, and images reconstruct.

    benchmarks/digits_ring.py measures the same settings over seeds 0-2: 0.84 +- 0.01 of test
    codes within 1.5 of a mode for the MMD model, 0.79 +- 0.03 for the adversarial one.
    """
    model = tiny_model(kind, RING, hidden=(256, 256), **kwargs)
    reg = regularizers.ClosedFormMMD(RING)
    before = float(reg(model.encode(digits.x_test)))
    model.fit(digits.x_train, epochs=80, batch_size=100, verbose=0)
    codes = model.encode(digits.x_test)
    after = float(reg(codes))
    assert after < 0.1 * before, (before, after)
    assert metrics.near_mode_fraction(codes, RING) > floor
    reconstruction = model.evaluate(digits.x_test, verbose=0, return_dict=True)["reconstruction"]
    mean_image = np.broadcast_to(digits.x_train.mean(0), digits.x_test.shape).astype("float32")
    baseline = float(np.mean(model.reconstruction_loss(digits.x_test, mean_image)))
    entropy = _entropy_floor(digits.x_test)
    assert reconstruction - entropy < 0.7 * (baseline - entropy), (reconstruction, baseline, entropy)


@pytest.mark.parametrize(
    "kind,kwargs",
    [
        ("mmd", {}),
        ("mmd", {"regularizer": "imq_mmd", "prior": priors.swiss_roll()}),
        ("adversarial", {"posterior": "gaussian", "instance_noise": 0.1, "label_smoothing": 0.1}),
    ],
    ids=["mmd", "imq_swiss_roll", "adversarial_gaussian_posterior"],
)
def test_save_load_resumes_training_exactly(tmp_path, kind, kwargs):
    """Train 2 epochs, save, load, train 1 more == train 3 epochs straight (optimizers restored)."""
    x = np.random.default_rng(0).uniform(size=(200, 8, 8)).astype("float32")
    straight = tiny_model(kind, **kwargs)
    straight.fit(x, epochs=3, batch_size=50, shuffle=False, verbose=0)

    first = tiny_model(kind, **kwargs)
    first.fit(x, epochs=2, batch_size=50, shuffle=False, verbose=0)
    first.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert type(loaded) is type(first)
    np.testing.assert_array_equal(loaded.encode(x[:10]), first.encode(x[:10]))
    assert int(loaded.optimizer.iterations) == 8
    loaded.fit(x, epochs=1, batch_size=50, shuffle=False, verbose=0)
    for a, b in zip(loaded.get_weights(), straight.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_fit_logs_per_example_metrics_and_sampling_api():
    x = np.random.default_rng(1).uniform(size=(100, 8, 8)).astype("float32")
    mmd = tiny_model("mmd")
    logs = mmd.fit(x, epochs=1, batch_size=50, verbose=0, validation_data=(x,)).history
    assert {"loss", "reconstruction", "regularizer", "val_reconstruction", "val_regularizer"} <= set(logs)
    aae = tiny_model("adversarial", schedule="paper", discriminator_steps=3)
    logs = aae.fit(x, epochs=1, batch_size=50, verbose=0).history
    assert {"reconstruction", "discriminator_loss", "discriminator_accuracy", "generator_loss"} <= set(logs)
    assert 0.0 <= logs["discriminator_accuracy"][0] <= 1.0
    assert int(aae.discriminator_optimizer.iterations) == 3 * int(aae.generator_optimizer.iterations) == 6
    assert mmd.sample(7).shape == (7, 8, 8)
    assert mmd.encode(x).shape == (100, 2)
    assert mmd.decode(np.zeros((3, 2))).shape == (3, 8, 8)
    assert mmd.predict(x, verbose=0).shape == x.shape


def test_conv_networks_train():
    x = np.random.default_rng(2).uniform(size=(64, 28, 28)).astype("float32")
    keras.utils.set_random_seed(0)
    enc, dec, _ = networks.build("conv", (28, 28), 8)
    model = models.MMDAutoencoder(enc, dec, priors.gaussian(8))
    model.compile(optimizer="adam")
    history = model.fit(x, epochs=2, batch_size=32, verbose=0).history
    assert np.isfinite(history["loss"]).all()


def test_encoder_size_mismatch_names_both_sizes():
    enc, dec, disc = networks.build("mlp", (8, 8), 3, hidden=(8,))
    with pytest.raises(ValueError, match="outputs 3 values per example but the prior has event size 2"):
        models.MMDAutoencoder(enc, networks.mlp_decoder(2, (8, 8), (8,)), RING)
    enc, dec, disc = networks.build("mlp", (8, 8), 2, hidden=(8,))
    with pytest.raises(ValueError, match="must output 4"):
        models.AdversarialAutoencoder(enc, dec, disc, RING, posterior="gaussian")
    with pytest.raises(ValueError, match="decoder takes 3 inputs"):
        models.MMDAutoencoder(enc, networks.mlp_decoder(3, (8, 8), (8,)), RING)


def test_non_finite_training_data_is_rejected():
    x = np.random.default_rng(3).uniform(size=(100, 8, 8)).astype("float32")
    x[5, 2, 2] = np.nan
    model = tiny_model("mmd")
    with pytest.raises(ValueError, match="1 non-finite values"):
        model.fit(x, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="non-finite"):
        model.fit(tf.data.Dataset.from_tensor_slices(x).batch(10), epochs=1, verbose=0)


def test_bad_options_are_clear():
    with pytest.raises(ValueError, match="reconstruction must be one of"):
        tiny_model("mmd", reconstruction="l1")
    with pytest.raises(ValueError, match="Unknown regularizer"):
        tiny_model("mmd", regularizer="wasserstein")
    with pytest.raises(ValueError, match="discriminator_steps"):
        tiny_model("adversarial", discriminator_steps=0)
    with pytest.raises(ValueError, match=r"decode expects codes of shape \(n, 2\)"):
        tiny_model("mmd").decode(np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"takes examples of shape \(8, 8\), got an array of shape \(3, 28, 28\)"):
        tiny_model("mmd").encode(np.zeros((3, 28, 28)))
    with pytest.raises(ValueError, match=r"takes examples of shape \(8, 8\)"):
        tiny_model("adversarial").fit(np.zeros((30, 64), "float32"), verbose=0)


def test_data_helpers_feed_fit():
    x, _ = data.load("digits", split="train")
    model = tiny_model("mmd")
    model.fit(data.make_pipeline(x, batch_size=100), epochs=1, verbose=0)
    assert int(model.optimizer.iterations) == len(x) // 100
