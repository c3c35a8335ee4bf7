"""Models move between backends: trained and saved (`.keras` and `save_to_preset`) on JAX or
PyTorch, they load on TensorFlow with the same outputs, keep every optimizer's state, train on
and export to ONNX, and load on the other of the two; saved on TensorFlow, they load on JAX and
PyTorch with the same outputs.

The other backend runs in a subprocess (Keras picks its backend once per process); this process
is the TensorFlow one.
"""

import os
import subprocess
import sys
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest

from aae_keras import data, export, presets
from conftest import tiny_model, tiny_variant

TESTS = Path(__file__).parent
MODELS = {  # name -> (builder, whether it trains on labels): 3 and 4 optimizers, Gaussian posterior
    "adversarial": (lambda: tiny_model("adversarial", posterior="gaussian"), False),
    "semi_supervised_adversarial": (lambda: tiny_variant("semi_supervised", "adversarial"), True),
}

# In a subprocess on another backend: load the models saved under `load` (a file prefix) and
# write their outputs on fixed inputs; then, if `save` is given, train, save and write outputs.
JOB = """
import sys
import numpy as np, keras
sys.path.insert(0, {tests!r})
import test_cross_backend as here
out, load, save = {out!r}, {load!r}, {save!r}
for name, (build, labeled) in here.MODELS.items():
    if load:
        model = keras.saving.load_model(f"{{out}}/{{load}}_{{name}}.keras")
        np.savez(f"{{out}}/{{load}}_{{name}}_on_{{keras.backend.backend()}}.npz", **here.outputs(model))
    if save:
        model = here.trained(build, labeled)
        model.save(f"{{out}}/{{save}}_{{name}}.keras")
        model.save_to_preset(f"{{out}}/{{save}}_{{name}}_preset")
        np.savez(f"{{out}}/{{save}}_{{name}}_on_{{save}}.npz", **here.outputs(model))
"""


def trained(build, labeled):
    digits = data.load("digits")
    x, y = digits.x_train[:128], digits.y_train[:128]
    model = build()
    model.fit(x, data.keep_labels(y, 32) if labeled else None, epochs=1, batch_size=64, shuffle=False, verbose=0)
    return model


def outputs(model):
    """Codes of fixed images and images decoded from fixed codes."""
    x = data.load("digits").x_test[:16]
    z = np.random.default_rng(0).normal(size=(16, model.latent_dim)).astype("float32")
    classes = [(np.arange(16) % model.num_classes)] if model.decoder_takes_class else []
    return {"codes": model.encode(x), "images": model.decode(z, *classes)}


def _run(backend_name, out, load=None, save=None):
    env = {**os.environ, "KERAS_BACKEND": backend_name, "JAX_PLATFORMS": "cpu"}
    code = JOB.format(tests=str(TESTS), out=str(out), load=load, save=save)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600, cwd=TESTS
    )
    assert result.returncode == 0, result.stderr[-3000:]


def _same(a, b):
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in ("codes", "images"))


def _outputs(path):
    return dict(np.load(path))


@pytest.mark.parametrize("source,third", [("jax", "torch"), ("torch", "jax")])
def test_models_move_between_every_pair_of_backends(tmp_path, source, third):
    """Saved on TensorFlow (here): loads on `source`. Saved on `source`: loads here and on `third`
    with the same outputs (1e-5), here with every optimizer's state; trains on here, and its
    preset exports to ONNX with the parity check."""
    assert keras.backend.backend() == "tensorflow"
    expected = {}
    for name, (build, labeled) in MODELS.items():
        model = trained(build, labeled)
        model.save(tmp_path / f"tensorflow_{name}.keras")
        expected[name] = outputs(model)
    _run(source, tmp_path, load="tensorflow", save=source)
    _run(third, tmp_path, load=source)
    for name in MODELS:
        assert _same(_outputs(tmp_path / f"tensorflow_{name}_on_{source}.npz"), expected[name]) < 1e-5, name
        there = _outputs(tmp_path / f"{source}_{name}_on_{source}.npz")
        assert _same(_outputs(tmp_path / f"{source}_{name}_on_{third}.npz"), there) < 1e-5, name
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = keras.saving.load_model(tmp_path / f"{source}_{name}.keras")
        assert not [w for w in caught if "Skipping variable loading" in str(w.message)], name  # every optimizer
        assert _same(outputs(model), there) < 1e-5, name
        preset = presets.load(tmp_path / f"{source}_{name}_preset")
        assert _same(outputs(preset), there) < 1e-5, name
        before = [np.array(v) for v in model.get_weights()]
        model.fit(data.load("digits").x_train[:128], epochs=1, batch_size=64, verbose=0)
        assert max(float(np.max(np.abs(a - b))) for a, b in zip(before, model.get_weights())) > 0
    exported = export.export_decoder(presets.load(tmp_path / f"{source}_adversarial_preset"), tmp_path / "decoder.onnx")
    assert exported["max_difference"] < 1e-4 and (tmp_path / "decoder.onnx").is_file()
