"""The TensorFlow backend: training phases, tf.distribute replicas, checks, random draws, TFP.

Everything the models need from TensorFlow itself lives here: the `phases` primitive (optimizer
updates under a gradient tape), the replica helpers of `tf.distribute` (the MMD and
the prior draws are global-batch statistics), in-graph data checks, stateless random draws and
TensorFlow Probability in and out. TensorFlow Probability is imported only when a TFP
distribution is converted or sampled, so `import aae_keras` does not import it.

Example:
    >>> from aae_keras.backend import tensorflow as tf_backend
    >>> tf_backend.categorical([[0.0, 0.0]], 3, [1, 2]).shape.as_list()
    [3]
"""

import os

import numpy as np
import tensorflow as tf

from aae_keras.backend import host_checks
from aae_keras.backend.shuffling import seed_numpy as seed_shuffling
from aae_keras.backend.stateful import fuse_steps, group_optimizers, kept_state, run_step

__all__ = [
    "categorical",
    "check_batches",
    "checked",
    "checks_in_step",
    "describe_distribution",
    "device_name",
    "fuse_steps",
    "gather",
    "global_size",
    "group_optimizers",
    "jit_default",
    "kept_state",
    "multi_worker",
    "normal",
    "num_replicas",
    "phases",
    "replica_slice",
    "run_step",
    "sample_distribution",
    "seed_shuffling",
    "split",
    "step_logs",
    "to_distribution",
    "uniform",
]


# ------------------------------------------------------------------------------ training steps
def phases(loss_fn, updates):
    """Optimizer updates from one forward pass: `loss_fn()` returns (losses, logs), one loss per
    (variables, optimizer) of `updates`; each loss's gradient with respect to its variables is
    taken before any update is applied; returns logs. `loss_fn` may itself run phases (their
    updates happen inside it, on values it has stopped).

    Each loss is divided by the replica count (replica gradients are summed) and scaled by its
    optimizer's loss scale (a LossScaleOptimizer under mixed_float16)."""
    with tf.GradientTape(persistent=len(updates) > 1) as tape:
        losses, logs = loss_fn()
        scaled = [optimizer.scale_loss(loss / num_replicas()) for loss, (_, optimizer) in zip(losses, updates)]
    grads = [tape.gradient(loss, variables) for loss, (variables, _) in zip(scaled, updates)]
    with tf.control_dependencies([g for group in grads for g in group if g is not None]):  # no update (step
        for group, (variables, optimizer) in zip(grads, updates):  # count included)
            optimizer.apply(group, variables)  # before the checks pass
    return logs


def checked(value, conditions):
    """`value` (a tensor or a tuple of them), once every (scalar bool tensor, message) of
    `conditions` holds; a failed check raises an error whose text holds the message."""
    asserts = [tf.debugging.Assert(condition, [message]) for condition, message in conditions]
    with tf.control_dependencies(asserts):
        return tf.nest.map_structure(tf.identity, value)


def jit_default(model):
    """compile's `jit_compile="auto"`: XLA, on CPUs too (Keras turns it off there; it is faster
    for these models, see benchmarks/step_time.py), except under a tf.distribute strategy or
    where the environment sets AAE_KERAS_XLA=0: there Keras's choice stands."""
    if os.environ.get("AAE_KERAS_XLA", "1").strip() == "0":
        return "auto"
    if tf.distribute.has_strategy() or getattr(model, "_distribute_strategy", None) is not None:
        return "auto"
    return True


def checks_in_step(model):
    """Whether the step checks its data itself: not under XLA, which drops in-graph asserts
    (the batches are checked before the step instead, see `check_batches`)."""
    return not model.jit_compile


def check_batches(data, model, training):
    """`data` whose batches are checked before an XLA-compiled step sees them: a tf.data
    dataset gets the in-graph checks in a `map` (outside XLA), a PyDataset or an iterator is
    checked on the host; without XLA the step checks its batches itself."""
    if not model.jit_compile:
        return data
    if isinstance(data, tf.data.Dataset):

        @tf.autograph.experimental.do_not_convert
        def checked_batch(*batch):
            return model._checked_batch(batch[0] if len(batch) == 1 else batch, training)

        return data.map(checked_batch)
    return host_checks.wrap(data, model._check_batch, training)


def step_logs(results):
    """A step's logs as Keras reduces them. Under a multi-worker strategy Keras 3 reduces a
    step's outputs with `strategy.reduce("MEAN", value, axis=0)`, which fails on scalars
    ("Invalid reduction dimension 0 for input with 0 dimensions", tensorflow/tensorflow#72388);
    shape-[1] results reduce to the scalar mean over replicas."""
    if multi_worker():
        return {name: tf.reshape(value, [1]) for name, value in results.items()}
    return results


def device_name():
    """The first GPU's name TensorFlow sees, or "cpu"."""
    gpus = tf.config.list_physical_devices("GPU")
    return tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU") if gpus else "cpu"


# ---------------------------------------------------------------------------- tf.distribute
def num_replicas():
    """Number of replicas training in sync (1 outside any strategy)."""
    in_replica = tf.distribute.in_cross_replica_context() is False and tf.distribute.get_replica_context() is not None
    return tf.distribute.get_replica_context().num_replicas_in_sync if in_replica else 1


def multi_worker(strategy=None):
    """Whether `strategy` (default: the current one) is a MultiWorkerMirroredStrategy over
    several workers - the case where Keras 3 reduces a train step's logs across workers."""
    strategy = strategy or tf.distribute.get_strategy()
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and (
        strategy.extended._in_multi_worker_mode()
    )


def gather(x):
    """The global batch: `x` all-gathered along axis 0 across replicas (identity for one)."""
    if num_replicas() == 1:
        return x
    return tf.distribute.get_replica_context().all_gather(x, axis=0)


def replica_slice(x_global, local_size):
    """This replica's rows of a tensor computed for the whole global batch.

    `local_size` is this replica's batch size; replicas may hold unequal slices (the last
    batch of an epoch), so offsets come from the gathered sizes.
    """
    if num_replicas() == 1:
        return x_global
    context = tf.distribute.get_replica_context()
    sizes = context.all_gather(tf.reshape(tf.cast(local_size, tf.int32), [1]), axis=0)
    replica = tf.cast(context.replica_id_in_sync_group, tf.int32)
    offset = tf.reduce_sum(sizes[:replica])
    return x_global[offset : offset + local_size]


def global_size(local_size):
    """The global batch size from this replica's batch size."""
    if num_replicas() == 1:
        return local_size
    context = tf.distribute.get_replica_context()
    return tf.reduce_sum(context.all_gather(tf.reshape(tf.cast(local_size, tf.int32), [1]), axis=0))


# ------------------------------------------------------------------------------- random draws
# Inside an XLA-compiled step TensorFlow's stateless float draws give other numbers than
# outside one (the conversions to floats differ, and so do the bits of a negative seed's
# draws): an XLA run and a run without XLA draw different prior samples and noise from the
# same seeds. Each is reproducible.


def normal(shape, seed):
    """Standard normal float32 draws of `shape` from a stateless [2] seed."""
    return tf.random.stateless_normal(shape, seed=_seed(seed))


def uniform(shape, seed):
    """U(0, 1) float32 draws of `shape` from a stateless [2] seed."""
    return tf.random.stateless_uniform(shape, seed=_seed(seed))


def categorical(logits, n, seed):
    """n int32 class indices drawn from `logits` [1, K]."""
    return tf.random.stateless_categorical(
        tf.convert_to_tensor(logits, tf.float32), n, seed=_seed(seed), dtype=tf.int32
    )[0]


def split(seed, count):
    """`count` independent stateless seeds [count, 2] from one."""
    return tf.random.experimental.stateless_split(_seed(seed), count)


def _seed(seed):
    return tf.cast(tf.convert_to_tensor(seed), tf.int32)


# ----------------------------------------------------------------------- TensorFlow Probability
def is_distribution(obj):
    """Whether `obj` is a TFP distribution (without importing TFP when it cannot be one)."""
    if not type(obj).__module__.startswith("tensorflow_probability"):
        return False
    import tensorflow_probability as tfp

    return isinstance(obj, tfp.distributions.Distribution)


def describe_distribution(dist):
    """The parameters of a TFP prior, in the form of `aae_keras.priors.describe`.

    Gaussians (diagonal or full), mixtures of them, uniform boxes and one-hot categoricals
    are read exactly; anything else is "sample_only" (sampled through TFP).
    """
    tfd = _tfd()
    shape = dist.event_shape
    if shape.rank != 1 or shape[0] is None or dist.batch_shape.rank != 0:
        raise ValueError(
            f"A prior must have event shape [d] and no batch shape; got event shape {shape} and "
            f"batch shape {dist.batch_shape}. Wrap per-dimension distributions in "
            "tfd.Independent(..., reinterpreted_batch_ndims=1)."
        )
    dim = int(shape[0])
    if isinstance(dist, tfd.MixtureSameFamily):
        weights = _np(dist.mixture_distribution.probs_parameter())
        info = _gaussian_parameters(dist.components_distribution)
        if info is not None:
            return {"kind": "mixture", "dim": dim, "weights": weights, **info}
    info = _gaussian_parameters(dist)
    if info is not None:
        return {"kind": "mixture", "dim": dim, "weights": np.ones(1), **{k: v[None] for k, v in info.items()}}
    if isinstance(dist, tfd.Independent) and isinstance(dist.distribution, tfd.Uniform):
        low, high = (np.broadcast_to(_np(v), (dim,)) for v in (dist.distribution.low, dist.distribution.high))
        return {"kind": "uniform", "dim": dim, "low": low, "high": high}
    if isinstance(dist, tfd.OneHotCategorical):
        return {"kind": "categorical", "dim": dim, "probs": _np(dist.probs_parameter())}
    return {"kind": "sample_only", "dim": dim}


def to_distribution(info):
    """The TFP distribution of a described prior (mixture, uniform or categorical)."""
    tfd = _tfd()
    kind = info["kind"]
    if kind == "mixture":
        means = np.asarray(info["means"], np.float32)
        if "covariances" in info:
            components = tfd.MultivariateNormalTriL(
                means, np.linalg.cholesky(np.asarray(info["covariances"])).astype(np.float32)
            )
        else:
            components = tfd.MultivariateNormalDiag(means, np.sqrt(np.asarray(info["variances"])).astype(np.float32))
        if len(info["weights"]) == 1:
            return components[0]
        return tfd.MixtureSameFamily(tfd.Categorical(probs=np.asarray(info["weights"], np.float32)), components)
    if kind == "uniform":
        uniform_box = tfd.Uniform(np.asarray(info["low"], np.float32), np.asarray(info["high"], np.float32))
        return tfd.Independent(uniform_box, reinterpreted_batch_ndims=1)
    if kind == "categorical":
        return tfd.OneHotCategorical(probs=np.asarray(info["probs"], np.float32), dtype=tf.float32)
    raise ValueError(f"A prior of kind {kind!r} has no TensorFlow Probability form here; sample it with prior.sample.")


def sample_distribution(dist, n, seed):
    """n float32 samples of a TFP distribution from a stateless [2] seed."""
    return tf.cast(dist.sample(n, seed=_seed(seed)), tf.float32)


def _gaussian_parameters(dist):
    """means/variances (diagonal) or means/covariances (full) of a TFP Gaussian, else None."""
    tfd = _tfd()
    if isinstance(dist, tfd.MultivariateNormalDiag) or (
        isinstance(dist, tfd.Independent) and isinstance(dist.distribution, tfd.Normal)
    ):
        return {"means": _np(dist.mean()), "variances": _np(dist.variance())}
    if isinstance(dist, (tfd.MultivariateNormalTriL, tfd.MultivariateNormalFullCovariance)):
        return {"means": _np(dist.mean()), "covariances": _np(dist.covariance())}
    return None


def _np(tensor):
    return np.asarray(tf.convert_to_tensor(tensor), np.float64)


def _tfd():
    import tensorflow_probability as tfp

    return tfp.distributions
