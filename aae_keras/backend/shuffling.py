"""Seeding the generators that `fit` shuffles numpy data with, so an epoch's batch order can be
replayed (`callbacks.ResumeFromBackup` seeds every epoch from the run's seed and the epoch).

On TensorFlow and JAX that is numpy's global generator; on PyTorch, Keras's array adapter also
draws its batch order from torch's global generator (`torch.utils.data.RandomSampler`), which
the PyTorch backend seeds as well (`aae_keras/backend/torch.py`).

Example:
    >>> import numpy as np
    >>> seed_numpy(7); first = np.random.permutation(5)
    >>> seed_numpy(7); bool((np.random.permutation(5) == first).all())
    True
"""

import numpy as np

__all__ = ["seed_numpy"]


def seed_numpy(value):
    """Seed numpy's global generator with `value` (0 <= value < 2**32)."""
    np.random.seed(value)
