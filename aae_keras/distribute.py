"""Distribution strategies: pick one from a flag, and the replica helpers the train steps use.

Under a `tf.distribute` strategy each replica sees a slice of the global batch and gradients
are summed across replicas. The helpers below let a train step (1) gather the global batch of
codes (the MMD is a global-batch statistic), (2) draw random numbers for the global batch and
keep this replica's slice, so an R-replica run matches a 1-replica run with the same seeds,
and (3) scale a per-example-mean loss by 1 / R so summed gradients equal the global mean's.

Example:
    >>> from aae_keras import distribute
    >>> strategy = distribute.get_strategy("auto")      # default strategy on one CPU
    >>> with strategy.scope():
    ...     pass   # build and compile the model here, then model.fit(...)
"""

import json
import os

__all__ = [
    "STRATEGIES",
    "get_strategy",
    "num_replicas",
    "multi_worker",
    "gather",
    "replica_slice",
    "scale_loss",
]

STRATEGIES = ("auto", "none", "mirrored", "multiworker", "tpu")


def get_strategy(name="auto", devices=None):
    """A `tf.distribute.Strategy` for `name` in STRATEGIES.

    "auto": TPU if one is reachable (TPU_NAME set), multi-worker if TF_CONFIG names several
    workers, mirrored over all GPUs if there are several, else the default (one device).
    "mirrored" takes an optional device list, e.g. ["/cpu:0", "/cpu:1"].

    >>> get_strategy("none").num_replicas_in_sync
    1
    """
    import tensorflow as tf  # here, not at the top: the command line reads STRATEGIES without TensorFlow

    if name not in STRATEGIES:
        raise ValueError(f"Unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}.")
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
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=os.environ.get("TPU_NAME", ""))
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as error:
        raise RuntimeError(
            f"No TPU could be reached ({error}). Set TPU_NAME or run on a TPU VM, or pick "
            'strategy "none" or "mirrored".'
        ) from None
    return tf.distribute.TPUStrategy(resolver)


def num_replicas():
    """Number of replicas training in sync (1 outside any strategy)."""
    import tensorflow as tf

    return tf.distribute.get_replica_context().num_replicas_in_sync if _in_replica() else 1


def multi_worker(strategy=None):
    """Whether `strategy` (default: the current one) is a MultiWorkerMirroredStrategy over
    several workers - the case where Keras 3 reduces a train step's logs across workers."""
    import tensorflow as tf

    strategy = strategy or tf.distribute.get_strategy()
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and (
        strategy.extended._in_multi_worker_mode()
    )


def gather(x):
    """The global batch: `x` all-gathered along axis 0 across replicas (identity for one)."""
    import tensorflow as tf

    if num_replicas() == 1:
        return x
    return tf.distribute.get_replica_context().all_gather(x, axis=0)


def replica_slice(x_global, local_size):
    """This replica's rows of a tensor computed for the whole global batch.

    `local_size` is this replica's batch size; replicas may hold unequal slices (the last
    batch of an epoch), so offsets come from the gathered sizes.
    """
    import tensorflow as tf

    if num_replicas() == 1:
        return x_global
    context = tf.distribute.get_replica_context()
    sizes = context.all_gather(tf.reshape(tf.cast(local_size, tf.int32), [1]), axis=0)
    replica = tf.cast(context.replica_id_in_sync_group, tf.int32)
    offset = tf.reduce_sum(sizes[:replica])
    return x_global[offset : offset + local_size]


def global_size(local_size):
    """The global batch size from this replica's batch size."""
    import tensorflow as tf

    if num_replicas() == 1:
        return local_size
    context = tf.distribute.get_replica_context()
    return tf.reduce_sum(context.all_gather(tf.reshape(tf.cast(local_size, tf.int32), [1]), axis=0))


def scale_loss(loss):
    """A loss whose replica gradients, summed by the optimizer, give the global gradient."""
    return loss / num_replicas()


def _in_replica():
    import tensorflow as tf

    return tf.distribute.in_cross_replica_context() is False and tf.distribute.get_replica_context() is not None
