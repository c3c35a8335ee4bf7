"""Train each model on 1 replica and on 2 (two logical CPUs), print the max weight difference.

Run as a script (a fresh process, since logical devices must be set before TensorFlow starts):
    python tests/mirrored_job.py
"""

import json

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import numpy as np  # noqa: E402

from aae_keras import distribute  # noqa: E402
from conftest import tiny_model, tiny_variant, variant_labels  # noqa: E402

VARIANTS = {
    "mmd": dict(kind="mmd"),
    "sample_mmd": dict(kind="mmd", regularizer="sample_mmd"),
    "adversarial": dict(
        kind="adversarial", schedule="paper", posterior="gaussian", instance_noise=0.1, discriminator_steps=2
    ),
}
FAMILY = {  # the paper's variants, with half of the labels hidden where labels are used
    f"{name}-{regularizer}": (name, regularizer)
    for name in ("semi_supervised", "label_conditioned", "dim_reduction")
    for regularizer in ("mmd", "adversarial")
}


def build(variant):
    if variant in FAMILY:
        return tiny_variant(*FAMILY[variant])
    return tiny_model(**VARIANTS[variant])


def train(variant, strategy, x, y):
    with strategy.scope():
        model = build(variant)
    labels = variant_labels(FAMILY[variant][0], y) if variant in FAMILY else None
    history = model.fit(x, labels, batch_size=64, epochs=2, shuffle=False, verbose=0)
    return model.get_weights(), {k: float(v[-1]) for k, v in history.history.items()}


def main():
    x = np.random.default_rng(0).uniform(size=(256, 8, 8)).astype("float32")
    y = np.random.default_rng(1).integers(0, 10, 256)
    mirrored = distribute.get_strategy("mirrored", devices=["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2
    report = {}
    for variant in [*VARIANTS, *FAMILY]:
        one, logs_one = train(variant, distribute.get_strategy("none"), x, y)
        two, logs_two = train(variant, mirrored, x, y)
        moved = max(float(np.abs(a - b).max()) for a, b in zip(one, build(variant).get_weights()))
        report[variant] = {
            "max_weight_difference": max(float(np.abs(a - b).max()) for a, b in zip(one, two)),
            "max_weight_change": moved,
            "logs_one_replica": logs_one,
            "logs_two_replicas": logs_two,
        }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
