"""Distribution strategies: pick a `tf.distribute` strategy (or its JAX equivalent) from a flag.

On TensorFlow each replica of a strategy sees a slice of the global batch and gradients are
summed across replicas. The train step's replica helpers (gather the global batch of codes,
this replica's slice of global random draws, the loss divided by the replica count) live in
`aae_keras.backend.tensorflow`, so an R-replica run matches a 1-replica run with the same seeds.
On JAX, "mirrored" (and "auto" with several local devices) is `keras.distribution.DataParallel`
over the local devices: arrays are global there, so the MMD is a global-batch statistic with
no gathering. On PyTorch a run trains on one device.

Example:
    >>> from aae_keras import distribute
    >>> strategy = distribute.get_strategy("auto")      # default strategy on one CPU
    >>> with strategy.scope():
    ...     pass   # build and compile the model here, then model.fit(...)
"""

import contextlib
import json
import os

__all__ = ["OneDevice", "STRATEGIES", "get_strategy"]

STRATEGIES = ("auto", "none", "mirrored", "multiworker", "tpu")


def get_strategy(name="auto", devices=None):
    """A `tf.distribute.Strategy` for `name` in STRATEGIES (on JAX and PyTorch, see `_other_backend`).

    "auto": TPU if one is reachable (TPU_NAME set), multi-worker if TF_CONFIG names several
    workers, mirrored over all GPUs if there are several, else the default (one device).
    "mirrored" takes an optional device list, e.g. ["/cpu:0", "/cpu:1"].

    >>> get_strategy("none").num_replicas_in_sync
    1
    """
    if name not in STRATEGIES:
        raise ValueError(f"Unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}.")
    import keras

    if keras.backend.backend() != "tensorflow":
        return _other_backend(name, devices, keras.backend.backend())
    import tensorflow as tf  # here, not at the top: the command line reads STRATEGIES without TensorFlow

    if name == "auto":
        if os.environ.get("TPU_NAME"):
            name = "tpu"
        elif len(json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {}).get("worker", [])) > 1:
            name = "multiworker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "none"
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    tpu_name = os.environ.get("TPU_NAME", "")
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_name)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except Exception as error:  # noqa: BLE001 - ValueError, OpError, urllib's URLError (a name that resolves nowhere), ...
        named = f"named by TPU_NAME ({tpu_name!r})" if tpu_name else "of this machine (TPU_NAME is not set)"
        raise RuntimeError(
            f"The TPU {named} could not be reached: {error}. To train without it, pick --strategy none "
            '(strategy="none") or mirrored, or unset TPU_NAME so that "auto" does not look for a TPU.'
        ) from None
    return tf.distribute.TPUStrategy(resolver)


class OneDevice:
    """The strategy of a single device: `scope()` changes nothing (JAX and PyTorch)."""

    num_replicas_in_sync = 1

    def scope(self):
        return contextlib.nullcontext()


def _other_backend(name, devices, backend_name):
    """The JAX and PyTorch strategies: `keras.distribution.DataParallel` over the local devices
    (or `devices`, e.g. ["cpu:0", "cpu:1"]) for "mirrored", and for "auto" when there are several;
    `OneDevice` for "none" (and PyTorch's "auto"); a clear error for what has no equivalent.
    A DataParallel's `scope()` builds and trains the model under it, as a strategy's does."""
    import keras

    if backend_name == "jax" and name in ("auto", "mirrored"):
        devices = devices or keras.distribution.list_devices()
        if name == "mirrored" or len(devices) > 1:
            return keras.distribution.DataParallel(devices=devices)
    if name in ("auto", "none"):
        return OneDevice()
    what = (
        '"mirrored" (keras.distribution.DataParallel over the local devices), "auto" or "none"'
        if backend_name == "jax"
        else '"auto" or "none" (one device)'
    )
    raise ValueError(
        f"Strategy {name!r} is a tf.distribute strategy; on the Keras {backend_name} backend use {what}, "
        "or set KERAS_BACKEND=tensorflow."
    )
