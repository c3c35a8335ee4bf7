"""Shared test set-up: quiet TensorFlow, the opt-in `--run-large` flag, tiny model builders."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402

from aae_keras import data, models, networks, priors  # noqa: E402


def pytest_addoption(parser):
    parser.addoption("--run-large", action="store_true", help="also run @pytest.mark.large tests")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-large"):
        return
    skip = pytest.mark.skip(reason="large: run with --run-large")
    for item in items:
        if "large" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def digits():
    return data.load("digits")


def tiny_model(kind="mmd", prior=None, image_shape=(8, 8), hidden=(32,), seed=0, **kwargs):
    """A small MMD or adversarial autoencoder for fast tests."""
    keras.utils.set_random_seed(seed)
    prior = prior or priors.gaussian_mixture(10, 2)
    d = priors.event_size(prior)
    outputs = 2 * d if kwargs.get("posterior") == "gaussian" else d
    encoder, decoder, discriminator = networks.build("mlp", image_shape, d, outputs, hidden)
    if kind == "mmd":
        model = models.MMDAutoencoder(encoder, decoder, prior, **kwargs)
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
    else:
        model = models.AdversarialAutoencoder(encoder, decoder, discriminator, prior, **kwargs)
        model.compile()
    return model
