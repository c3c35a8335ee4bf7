"""What differs between Keras backends, behind one small interface.

The models, priors and regularizers are written in `keras.ops`; the few operations that need a
backend's own API live in one module per backend (`aae_keras/backend/<name>.py`), chosen by
`keras.backend.backend()`. A backend module provides:

- `run_step(model, step_fn, *args)`: the model's train or test step, `step_fn(data)`, as the
  backend's trainer calls it (on JAX: `train_step(state, data)`, run statelessly);
- `phases(loss_fn, updates)`: optimizer updates from one forward pass, one loss per
  (variables, optimizer) of `updates`, every gradient taken before any update (the training
  phases of every model are written with it, or with `phase` here for a single update);
- `group_optimizers(primary, members, groups)`: `model.optimizer` (on JAX, all the phases'
  optimizers as one, so the trainer's state carries them);
- `gather`, `replica_slice`, `global_size`: the global batch across data-parallel replicas;
- `checked(value, conditions)`: in-graph data checks, where `checks_in_step(model)`; else
  `check_batches(data, model, training)` checks the batches before the step;
  `step_logs(results)`: logs as the trainer reduces them; `jit_default(model)`: what
  `jit_compile="auto"` means;
- stateless random draws from a [2] integer seed (`normal`, `uniform`, `categorical`, `split`:
  the same numbers on every replica and every run), and TensorFlow Probability in and out.

A backend without a module raises a clear error naming it.

Example:
    >>> from aae_keras import backend
    >>> seed = backend.to_seed(7)
    >>> tuple(backend.current().normal((2, 3), seed).shape)
    (2, 3)
"""

import importlib

import numpy as np

__all__ = ["current", "phase", "replica_normal", "to_seed"]

_SUPPORTED = ("tensorflow", "jax", "torch")


def current():
    """The aae_keras module of the active Keras backend (clear error if there is none yet)."""
    import keras

    name = keras.backend.backend()
    if name not in _SUPPORTED:
        raise RuntimeError(
            f"aae-keras does not run on the Keras {name!r} backend (supported: {', '.join(_SUPPORTED)}); "
            "set KERAS_BACKEND to one of them."
        )
    return importlib.import_module(f"aae_keras.backend.{name}")


def phase(loss_fn, variables, optimizer):
    """One optimizer update: `loss_fn()` returns (loss, logs); the loss's gradient with respect
    to `variables` is applied by `optimizer`; returns logs (`phases` with one update)."""

    def losses():
        loss, logs = loss_fn()
        return [loss], logs

    return current().phases(losses, [(variables, optimizer)])


def to_seed(seed):
    """A stateless [2] int32 seed from None (fresh), an int, a pair, or a [2] tensor (kept as is).

    >>> to_seed(5).tolist(), to_seed((3, 4)).tolist()
    ([5, 0], [3, 4])
    """
    if seed is None:
        return np.random.randint(0, 2**31 - 1, size=2).astype(np.int32)
    if isinstance(seed, (int, np.integer)):
        return np.array([int(seed) % (2**31 - 1), 0], np.int32)
    if isinstance(seed, (tuple, list, np.ndarray)):
        seed = np.asarray(seed)
        if seed.shape != (2,):
            raise ValueError(f"A seed is an int or a pair of ints, got shape {seed.shape}.")
        return (seed.astype(np.int64) % (2**31 - 1)).astype(np.int32)
    return seed  # a backend tensor of shape [2], e.g. derived from the step inside a train step


def replica_normal(local_size, dim, seed):
    """This replica's rows of standard normal draws [global batch, dim] from a [2] seed, so every
    replica count draws the same numbers for the same example."""
    local = current()
    return local.replica_slice(local.normal([local.global_size(local_size), dim], seed), local_size)
