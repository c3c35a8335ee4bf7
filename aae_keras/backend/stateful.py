"""The trainer hooks of backends whose trainers call a stateful `train_step(data)` (TensorFlow,
PyTorch): the step runs as written, one optimizer per phase, data checked inside the step (TensorFlow overrides the checks and
the XLA default: see `aae_keras/backend/tensorflow.py`).

The JAX backend defines its own (`aae_keras/backend/jax.py`): a stateless step, the optimizers
grouped in the trainer's state, data checked on the host, fused steps.

Example:
    >>> from aae_keras.backend import stateful
    >>> stateful.run_step(None, lambda data: data + 1, 1)
    2
"""

import contextlib

__all__ = ["check_batches", "checks_in_step", "fuse_steps", "group_optimizers", "jit_default", "kept_state", "run_step"]


def run_step(model, step_fn, data):
    """`step_fn(data)`: the trainer calls `train_step(data)` (TensorFlow: inside a tf.function)."""
    return step_fn(data)


def group_optimizers(primary, members, groups):
    """`model.optimizer`: the reconstruction optimizer (each phase applies its own)."""
    return primary


def fuse_steps(model):
    """Nothing: the trainer runs `steps_per_execution` steps its own way."""


def kept_state(model):
    """A context that changes nothing: a refused batch leaves the variables as they were."""
    return contextlib.nullcontext()


def check_batches(data, model, training):
    """`data` unchanged: the checks run inside the step (`checked`)."""
    return data


def checks_in_step(model):
    """True: the step runs the data checks itself (`checked`)."""
    return True


def jit_default(model):
    """What compile's `jit_compile="auto"` means here: Keras's own choice."""
    return "auto"
