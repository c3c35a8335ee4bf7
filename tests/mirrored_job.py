"""Train each model on 1 replica and on 2 (two logical CPUs), print the max weight difference.

Run as a script (a fresh process, since logical devices must be set before TensorFlow starts):
    python tests/mirrored_job.py
"""

import json

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import numpy as np  # noqa: E402
from conftest import tiny_model  # noqa: E402

from aae_keras import distribute  # noqa: E402

VARIANTS = {
    "mmd": dict(kind="mmd"),
    "sample_mmd": dict(kind="mmd", regularizer="sample_mmd"),
    "adversarial": dict(kind="adversarial", posterior="gaussian", instance_noise=0.1, discriminator_steps=2),
}


def train(variant, strategy, x):
    with strategy.scope():
        model = tiny_model(**VARIANTS[variant])
    history = model.fit(x, batch_size=64, epochs=2, shuffle=False, verbose=0)
    return model.get_weights(), {k: float(v[-1]) for k, v in history.history.items()}


def main():
    x = np.random.default_rng(0).uniform(size=(256, 8, 8)).astype("float32")
    mirrored = distribute.get_strategy("mirrored", devices=["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2
    report = {}
    for variant in VARIANTS:
        one, logs_one = train(variant, distribute.get_strategy("none"), x)
        two, logs_two = train(variant, mirrored, x)
        moved = max(float(np.abs(a - b).max()) for a, b in zip(one, tiny_model(**VARIANTS[variant]).get_weights()))
        report[variant] = {
            "max_weight_difference": max(float(np.abs(a - b).max()) for a, b in zip(one, two)),
            "max_weight_change": moved,
            "logs_one_replica": logs_one,
            "logs_two_replicas": logs_two,
        }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
