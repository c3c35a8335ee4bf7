"""Train the MMD and adversarial autoencoders for tests/test_multiworker.py; save the weights.

Run as a script, one process per role (a MultiWorkerMirroredStrategy must be created before
TensorFlow runs anything, and only once per process):
    python tests/multiworker_job.py OUT_DIR single          # reference: one process, one replica
    TF_CONFIG=... python tests/multiworker_job.py OUT_DIR worker   # one per worker (task in TF_CONFIG)

Each role writes OUT_DIR/<role>.npz (every model's final weights, plus the initial weights)
and OUT_DIR/<role>.json (the last logs of each fit, and an evaluate's), where <role> is "single" or "worker<i>".
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from aae_keras import data, distribute, models, networks, priors  # noqa: E402

GLOBAL_BATCH = 64
STEPS_PER_EPOCH = 5
EPOCHS = 2  # 10 optimizer steps in all, across an epoch boundary
SEED = 1234

VARIANTS = {
    "mmd": dict(kind="mmd"),
    # Gaussian posterior, instance noise and two discriminator steps: every stateless draw
    # (reparameterization, prior samples, noise) is taken for the global batch and sliced.
    "adversarial": dict(
        kind="adversarial", schedule="paper", posterior="gaussian", instance_noise=0.1, discriminator_steps=2
    ),
}


def build(kind, posterior="deterministic", **kwargs):
    keras.utils.set_random_seed(SEED)  # same initial weights in every process
    prior = priors.gaussian_mixture(10, 2)  # the ring prior
    outputs = 4 if posterior == "gaussian" else 2
    encoder, decoder, discriminator = networks.build("mlp", (8, 8), 2, outputs, hidden=(32, 32))
    if kind == "mmd":  # regularizer="mmd" is regularizers.ClosedFormMMD(prior)
        model = models.MMDAutoencoder(
            encoder, decoder, prior, regularizer="mmd", weight=10.0, posterior=posterior, seed=7
        )
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
    else:
        model = models.AdversarialAutoencoder(
            encoder, decoder, discriminator, prior, posterior=posterior, seed=7, **kwargs
        )
        model.compile(
            ae_optimizer=keras.optimizers.Adam(1e-3),
            discriminator_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5),
            generator_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5),
        )
    return model


def dataset(x):
    """The full data batched by the GLOBAL batch size, in order; the strategy splits it.

    Keras' fit passes a tf.data.Dataset to `strategy.experimental_distribute_dataset`. Under
    MultiWorkerMirroredStrategy that (1) rebatches every global batch of 64 into
    num_replicas_in_sync = 2 consecutive sub-batches of 32, then (2) auto-shards the result
    across workers. With AutoShardPolicy.DATA worker i keeps every 2nd element starting at i,
    i.e. worker 0 gets rows [0:32] and worker 1 rows [32:64] of every global batch - exactly
    the replica order in which `distribute.replica_slice` cuts the global random draws and
    `distribute.gather` concatenates codes, so the run matches the one-process run.
    Checked on Dataset.range(256).batch(64) over two workers: DATA gives worker 0 rows
    0-31, 64-95, ... and worker 1 rows 32-63, 96-127, ...; AUTO does the same (FILE sharding
    finds no input files for in-memory data and falls back to DATA); OFF gives EVERY worker
    all eight sub-batches 0-31, 32-63, ..., so both would train on the same 32 rows per step,
    for twice the steps - not the one-process run. Hence DATA, set explicitly.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return tf.data.Dataset.from_tensor_slices(x).batch(GLOBAL_BATCH).with_options(options)


def main(out_dir, role):
    if role == "single":
        strategy = distribute.get_strategy("none")
        name = "single"
    else:
        strategy = distribute.get_strategy("multiworker")
        name = f"worker{json.loads(os.environ['TF_CONFIG'])['task']['index']}"
        assert strategy.num_replicas_in_sync == 2, strategy.num_replicas_in_sync

    x = data.load("digits", split="train")[0][: GLOBAL_BATCH * STEPS_PER_EPOCH]
    assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0

    arrays, logs = {}, {}
    for variant, options in VARIANTS.items():
        with strategy.scope():
            model = build(**options)
        for i, w in enumerate(model.get_weights()):
            arrays[f"{variant}/initial/{i}"] = w
        history = model.fit(dataset(x), epochs=EPOCHS, shuffle=False, verbose=0)
        for i, w in enumerate(model.get_weights()):
            arrays[f"{variant}/final/{i}"] = w
        logs[variant] = {k: float(v[-1]) for k, v in history.history.items()}
        logs[variant]["steps"] = int(model.optimizer.iterations.numpy())
        # test_step returns its logs through the same cross-worker reduction as train_step.
        evaluation = model.evaluate(dataset(x), verbose=0, return_dict=True)
        logs[variant].update({f"evaluate_{k}": float(v) for k, v in evaluation.items()})

    np.savez(os.path.join(out_dir, f"{name}.npz"), **arrays)
    with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
        json.dump(logs, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
