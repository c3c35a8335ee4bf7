"""Replica helpers where every array is the global batch: one "replica" (the JAX backend, whose
arrays stay global under `keras.distribution.DataParallel`, and the PyTorch backend on one device).

Example:
    >>> from aae_keras.backend import global_batch
    >>> global_batch.num_replicas(), global_batch.global_size(64)
    (1, 64)
"""

__all__ = ["gather", "global_size", "num_replicas", "replica_slice"]


def num_replicas():
    """1: gradients are of the global loss."""
    return 1


def gather(x):
    """The global batch: `x` itself."""
    return x


def replica_slice(x_global, local_size):
    """The rows of the (global) batch: all of them."""
    return x_global


def global_size(local_size):
    return local_size
