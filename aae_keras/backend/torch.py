"""The PyTorch backend: training phases, random draws from stateless seeds, checks.

Keras runs a PyTorch train step eagerly, so `phases` is a plain `torch.autograd.grad` of each
loss with respect to its variables, applied by its optimizer, and a data check is a
Python `if`. PyTorch has no stateless random numbers: a draw seeds a numpy generator from the
[2] seed (on the host, then moved to the training device), so the same seed gives the same
numbers on every run. One process trains
on one device here (`gather` and `replica_slice` are identities).

Example:
    >>> from aae_keras.backend import torch as torch_backend
    >>> tuple(torch_backend.normal((2, 3), [7, 0]).shape)
    (2, 3)
"""

import numpy as np
import torch
from keras.src.backend.torch.core import get_device

from aae_keras.backend.global_batch import gather, global_size, num_replicas, replica_slice
from aae_keras.backend.shuffling import seed_numpy
from aae_keras.backend.stateful import (
    check_batches,
    checks_in_step,
    fuse_steps,
    group_optimizers,
    jit_default,
    kept_state,
    run_step,
)

__all__ = [
    "categorical",
    "check_batches",
    "checked",
    "checks_in_step",
    "device_name",
    "fuse_steps",
    "gather",
    "global_size",
    "group_optimizers",
    "jit_default",
    "kept_state",
    "normal",
    "num_replicas",
    "phases",
    "replica_slice",
    "run_step",
    "seed_shuffling",
    "split",
    "step_logs",
    "uniform",
]


def seed_shuffling(value):
    """Seed the generators `fit` shuffles with: numpy's and torch's (Keras's PyTorch array
    adapter draws its batch order from torch's global generator)."""
    seed_numpy(value)
    torch.manual_seed(value)


# ------------------------------------------------------------------------------ training steps
def phases(loss_fn, updates):
    """Optimizer updates from one forward pass: `loss_fn()` returns (losses, logs), one loss per
    (variables, optimizer) of `updates`; every gradient is taken before any update is applied;
    returns logs (detached). `loss_fn` may itself run phases on values it has stopped."""
    losses, logs = loss_fn()
    applied = []
    for i, (loss, (variables, optimizer)) in enumerate(zip(losses, updates)):
        tensors = [v.value for v in variables]
        grads = torch.autograd.grad(
            optimizer.scale_loss(loss), tensors, allow_unused=True, retain_graph=i < len(updates) - 1
        )
        applied.append(
            ([torch.zeros_like(t) if g is None else g for g, t in zip(grads, tensors)], variables, optimizer)
        )
    with torch.no_grad():
        for grads, variables, optimizer in applied:
            optimizer.apply(grads, variables)
    return {name: value.detach() if isinstance(value, torch.Tensor) else value for name, value in logs.items()}


def checked(value, conditions):
    """`value`, once every (scalar bool tensor, message) of `conditions` holds, else a ValueError
    whose text holds the message."""
    for condition, message in conditions:
        if not bool(condition):
            raise ValueError(message)
    return value


def step_logs(results):
    return results


def device_name():
    """The device PyTorch trains on: the GPU's name, or "cpu"."""
    return torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"


# ------------------------------------------------------------------------------- random draws
def normal(shape, seed):
    """Standard normal float32 draws of `shape` from a stateless [2] seed."""
    return _tensor(_rng(seed).standard_normal(_shape(shape), np.float32))


def uniform(shape, seed):
    """U(0, 1) float32 draws of `shape` from a stateless [2] seed."""
    return _tensor(_rng(seed).random(_shape(shape), np.float32))


def categorical(logits, n, seed):
    """n int32 class indices drawn from `logits` [1, K]."""
    logits = np.asarray(logits.detach().cpu() if isinstance(logits, torch.Tensor) else logits, np.float64)[0]
    probs = np.exp(logits - logits.max())
    return _tensor(_rng(seed).choice(len(probs), size=int(n), p=probs / probs.sum()).astype(np.int32))


def split(seed, count):
    """`count` independent stateless seeds [count, 2] (int32) from one."""
    return _tensor(_rng(seed).integers(0, 2**31 - 1, size=(int(count), 2), dtype=np.int32))


def _shape(shape):
    return tuple(int(size) for size in shape)


def _rng(seed):
    """A numpy generator seeded from both parts of the [2] seed (PyTorch's CPU generator would
    keep only 32 bits of a combined seed)."""
    parts = seed.tolist() if isinstance(seed, torch.Tensor) else np.asarray(seed).tolist()
    return np.random.default_rng([int(part) % 2**31 for part in parts])


def _tensor(array):
    return torch.from_numpy(array).to(get_device())
