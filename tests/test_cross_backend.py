"""Models move between backends: trained and saved (`.keras` and `save_to_preset`) on JAX or
PyTorch, they load on TensorFlow with the same outputs, keep every optimizer's state, train on
and export to ONNX, and load on the other of the two; saved on TensorFlow, they load on JAX and
PyTorch with the same outputs.

The other backend runs in a subprocess (Keras picks its backend once per process); this process
is the TensorFlow one.
"""

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import tiny_model, tiny_variant

from aae_keras import data, export, presets

TESTS = Path(__file__).parent
MODELS = {  # name -> (builder, whether it trains on labels)
    "adversarial": (lambda: tiny_model("adversarial", posterior="gaussian"), False),
    "semi_supervised_adversarial": (lambda: tiny_variant("semi_supervised", "adversarial"), True),
    "closed_form_mmd": (lambda: tiny_model("mmd"), False),
}

# In a subprocess on another backend: train and save each model (mode "save"), or load the saved
# files (mode "load"); either way write the outputs on fixed inputs.
JOB = """
import json, sys
import numpy as np, keras
sys.path.insert(0, {tests!r})
import test_cross_backend as here
out, mode = {out!r}, {mode!r}
for name, (build, labeled) in here.MODELS.items():
    if mode == "save":
        model = here.trained(build, labeled)
        model.save(f"{{out}}/{{name}}.keras")
        model.save_to_preset(f"{{out}}/{{name}}_preset")
    else:
        model = keras.saving.load_model(f"{{out}}/{{name}}.keras")
    np.savez(f"{{out}}/{{name}}_{{mode}}_{{keras.backend.backend()}}.npz", **here.outputs(model))
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


def _run(backend_name, out, mode):
    env = {**os.environ, "KERAS_BACKEND": backend_name, "JAX_PLATFORMS": "cpu"}
    code = JOB.format(tests=str(TESTS), out=str(out), mode=mode)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600,
                            cwd=TESTS)
    assert result.returncode == 0, result.stderr[-3000:]


def _same(a, b):
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in ("codes", "images"))


@pytest.mark.parametrize("source,third", [("jax", "torch"), ("torch", "jax")])
def test_saved_on_another_backend_loads_trains_and_exports_here(tmp_path, source, third):
    """Saved on `source`: loads on TensorFlow (here) and on `third` with the same outputs."""
    assert keras.backend.backend() == "tensorflow"
    _run(source, tmp_path, "save")
    _run(third, tmp_path, "load")
    for name in MODELS:
        there = dict(np.load(tmp_path / f"{name}_save_{source}.npz"))
        assert _same(dict(np.load(tmp_path / f"{name}_load_{third}.npz")), there) < 1e-5, name
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = keras.saving.load_model(tmp_path / f"{name}.keras")
        assert not [w for w in caught if "Skipping variable loading" in str(w.message)], name  # every optimizer
        assert _same(outputs(model), there) < 1e-5, name
        preset = presets.load(tmp_path / f"{name}_preset")
        assert _same(outputs(preset), there) < 1e-5, name
        assert json.loads((tmp_path / f"{name}_preset" / "metadata.json").read_text())["files"]
        before = [np.array(v) for v in model.get_weights()]
        model.fit(data.load("digits").x_train[:128], epochs=1, batch_size=64, verbose=0)
        assert max(float(np.max(np.abs(a - b))) for a, b in zip(before, model.get_weights())) > 0
    exported = export.export_decoder(presets.load(tmp_path / "adversarial_preset"), tmp_path / "decoder.onnx")
    assert exported["max_difference"] < 1e-4 and (tmp_path / "decoder.onnx").is_file()


@pytest.mark.parametrize("target", ["jax", "torch"])
def test_saved_here_loads_on_another_backend(tmp_path, target):
    expected = {}
    for name, (build, labeled) in MODELS.items():
        model = trained(build, labeled)
        model.save(tmp_path / f"{name}.keras")
        expected[name] = outputs(model)
    _run(target, tmp_path, "load")
    for name in MODELS:
        assert _same(dict(np.load(tmp_path / f"{name}_load_{target}.npz")), expected[name]) < 1e-5, name
