"""Shared test set-up: quiet TensorFlow, the opt-in `--run-large` flag, tiny model builders,
a local HTTP server."""

import contextlib
import functools
import http.server
import os
import threading

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# XLA compiles each tiny test model's steps for seconds: the suite trains without it (Keras's
# own default on CPU, here and in the processes tests start), except tests marked `xla`, which
# run the library's default (XLA on TensorFlow). AAE_KERAS_TEST_XLA=1 runs every test with it.
os.environ["AAE_KERAS_XLA"] = os.environ.get("AAE_KERAS_TEST_XLA", "0")

import keras
import pytest

from aae_keras import data, models, networks, priors


def pytest_addoption(parser):
    parser.addoption("--run-large", action="store_true", help="also run @pytest.mark.large tests")


@pytest.fixture(autouse=True)
def _xla_where_marked(request, monkeypatch):
    if request.node.get_closest_marker("xla"):
        monkeypatch.setenv("AAE_KERAS_XLA", "1")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-large"):
        return
    skip = pytest.mark.skip(reason="large: run with --run-large")
    for item in items:
        if "large" in item.keywords:
            item.add_marker(skip)


# Tests of TensorFlow's own interfaces (TFP distributions, gradient tapes): skipped when the
# README's test command reruns the backend-neutral files on JAX and PyTorch.
tensorflow_only = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="TensorFlow (Probability) interface: TensorFlow backend only"
)


@pytest.fixture(scope="session")
def digits():
    return data.load("digits")


def tiny_model(kind="mmd", prior=None, image_shape=(8, 8), hidden=(32,), seed=0, compiled=True, **kwargs):
    """A small MMD or adversarial autoencoder for fast tests (built; compiled unless `compiled` is False)."""
    keras.utils.set_random_seed(seed)
    prior = prior or priors.gaussian_mixture(10, 2)
    d = priors.event_size(prior)
    outputs = 2 * d if kwargs.get("posterior") == "gaussian" else d
    encoder, decoder, discriminator = networks.build("mlp", image_shape, d, outputs, hidden)
    if kind == "mmd":
        model = models.MMDAutoencoder(encoder, decoder, prior, **kwargs)
        if compiled:
            model.compile(optimizer=keras.optimizers.Adam(1e-3))
    else:
        model = models.AdversarialAutoencoder(encoder, decoder, discriminator, prior, **kwargs)
        if compiled:
            model.compile()
    return model


VARIANTS = {  # name -> (model class, style prior, number of classes or clusters)
    "label_conditioned": (models.LabelConditionedAutoencoder, priors.gaussian_mixture(10, 2), 10),
    "supervised": (models.SupervisedAutoencoder, priors.gaussian(2), 10),
    "semi_supervised": (models.SemiSupervisedAutoencoder, priors.gaussian(3), 10),
    "clustering": (models.ClusteringAutoencoder, priors.gaussian(3), 16),
    "dim_reduction": (models.DimReductionAutoencoder, priors.gaussian(2), 10),
}


def tiny_variant(name, regularizer="mmd", image_shape=(8, 8), hidden=(32,), seed=0, compiled=True, **kwargs):
    """A small model of the paper's family, with either regularizer (compiled unless `compiled` is False)."""
    keras.utils.set_random_seed(seed)
    cls, prior, count = VARIANTS[name]
    model = cls.create(
        image_shape,
        prior,
        count,
        hidden=hidden,
        regularizer=regularizer,
        discriminator_hidden=(32,),
        seed=seed,
        **kwargs,
    )
    if compiled:
        model.compile()
    return model


def variant_labels(name, y, labeled_fraction=0.5, seed=0):
    """The labels a variant trains on: all, a labeled fraction (rest -1), or None."""
    if name in ("clustering", "dim_reduction"):
        return None
    if name == "supervised" or labeled_fraction >= 1:
        return y
    return data.keep_labels(y, max(1, int(labeled_fraction * len(y))), seed=seed)


def run_cli(argv, capsys):
    """`aae-keras argv` in this process: (exit code, stdout, stderr)."""
    from aae_keras import cli

    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exit:
        code = exit.code
    out, err = capsys.readouterr()
    return code, out, err


@contextlib.contextmanager
def serving(handler):
    """Run the `http.server` request handler class `handler` on 127.0.0.1 (a free port) in a
    thread; yields the base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def http_server(directory):
    """Serve `directory` over HTTP on 127.0.0.1 (a free port) in a thread; yields the base URL."""
    return serving(functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory)))


@pytest.fixture(params=["mixed_bfloat16", "mixed_float16"])
def mixed_policy(request):
    """The global dtype policy set to a mixed one for the test; float32 again afterwards."""
    keras.mixed_precision.set_global_policy(request.param)
    try:
        yield request.param
    finally:
        keras.mixed_precision.set_global_policy("float32")
