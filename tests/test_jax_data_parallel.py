"""JAX data parallelism: `keras.distribution.DataParallel` over 2 devices equals 1 device.

A subprocess on Keras's JAX backend with 2 host CPU devices
(`XLA_FLAGS=--xla_force_host_platform_device_count=2`) trains each model twice from the same
weights and seeds, for a few steps: under `distribute.get_strategy("mirrored")` (the batch
sharded over both devices) and with no distribution (one device). The MMD and the prior draws
are global-batch quantities on JAX (arrays are global), so the weights must agree to 1e-5.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

JOB = """
import json, sys
import jax, keras, numpy as np
sys.path.insert(0, {tests!r})
from conftest import tiny_model
from aae_keras import distribute

assert len(jax.devices()) == 2, jax.devices()
x = np.random.default_rng(0).uniform(size=(256, 8, 8)).astype("float32")
builders = {{
    "closed_form_mmd": (lambda: tiny_model("mmd"), None),
    "adversarial": (lambda: tiny_model("adversarial", schedule="paper", instance_noise=0.1, discriminator_steps=2), None),
}}
found, devices = {{}}, []
for name, (build, labels) in builders.items():
    weights = []
    for strategy in (distribute.get_strategy("mirrored"), distribute.get_strategy("none")):
        with strategy.scope():
            model = build()
            model.fit(x, labels, epochs=2, batch_size=64, shuffle=False, verbose=0)
            weights.append([np.asarray(keras.ops.convert_to_numpy(v.value)) for v in model.weights])
            devices.append(len(model.weights[0].value.sharding.device_set))
    found[name] = max(float(np.max(np.abs(a - b))) for a, b in zip(*weights))
print(json.dumps({{"differences": found, "devices": devices,
                  "parallel": type(distribute.get_strategy("mirrored")).__name__}}))
"""


def test_two_devices_equal_one_device():
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
    }
    code = JOB.format(tests=str(Path(__file__).parent))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["parallel"] == "DataParallel" and found["devices"] == [2, 1] * 2, found  # replicated, then not
    assert max(found["differences"].values()) < 1e-5, found["differences"]
