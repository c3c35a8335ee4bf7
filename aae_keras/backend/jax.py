"""The JAX backend (first part): stateless random draws, the global batch, checks and logs.

Under `keras.distribution.DataParallel` arrays are global, so a batch statistic such as the
MMD sees the whole batch with no gathering: `gather` and `replica_slice` are identities and
there is one "replica". Random draws take the project's [2] int32 seeds (the model seed and a
counter from the optimizer step) as raw JAX keys, so a run is reproducible. The training
phases (`phase`, with the optimizers carried in the trainer's state) are the next step; until
then `fit` and `evaluate` raise a clear error on JAX (`aae_keras.backend.check_trains`), while
loading, encoding, decoding and sampling work.

Example:
    >>> from aae_keras.backend import jax as jax_backend
    >>> tuple(jax_backend.normal((2, 3), [7, 0]).shape)
    (2, 3)
"""

import jax
import jax.numpy as jnp

TRAINS = False  # the training phases on JAX come next: backend.check_trains() says so

__all__ = ["categorical", "checked", "gather", "global_size", "normal", "num_replicas", "replica_slice", "split",
           "step_logs", "uniform"]


def normal(shape, seed):
    """Standard normal float32 draws of `shape` from a stateless [2] seed."""
    return jax.random.normal(_key(seed), tuple(shape), jnp.float32)


def uniform(shape, seed):
    """U(0, 1) float32 draws of `shape` from a stateless [2] seed."""
    return jax.random.uniform(_key(seed), tuple(shape), jnp.float32)


def categorical(logits, n, seed):
    """n int32 class indices drawn from `logits` [1, K]."""
    return jax.random.categorical(_key(seed), jnp.asarray(logits, jnp.float32)[0], shape=(n,)).astype(jnp.int32)


def split(seed, count):
    """`count` independent stateless seeds [count, 2] (int32) from one."""
    return jax.lax.bitcast_convert_type(jax.random.split(_key(seed), count), jnp.int32)


def _key(seed):
    """A raw JAX key (uint32 [2]) from a [2] int32 seed, bit for bit."""
    return jax.lax.bitcast_convert_type(jnp.asarray(seed, jnp.int32), jnp.uint32)


def num_replicas():
    """1: under `keras.distribution` arrays are global and gradients are of the global loss."""
    return 1


def gather(x):
    """The global batch: `x` itself (arrays are global under `keras.distribution`)."""
    return x


def replica_slice(x_global, local_size):
    """The rows of the (global) batch: all of them."""
    return x_global


def global_size(local_size):
    return local_size


def checked(value, conditions):
    """`value`; the conditions are checked on the host for numpy data before training (an
    in-graph check that raises is not available inside a jitted JAX step)."""
    return value


def step_logs(results):
    return results
