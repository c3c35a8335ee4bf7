"""What differs between Keras backends, behind one small interface.

The models, priors and regularizers are written in `keras.ops`; the few operations that need a
backend's own API live in one module per backend (`aae_keras/backend/<name>.py`), chosen by
`keras.backend.backend()`. Today: stateless random draws from a [2] integer seed (the same
numbers on every replica and every run) and the conversion of TensorFlow Probability
distributions. A backend without a module raises a clear error naming it.

Example:
    >>> from aae_keras import backend
    >>> seed = backend.to_seed(7)
    >>> tuple(backend.current().normal((2, 3), seed).shape)
    (2, 3)
"""

import importlib

import numpy as np

__all__ = ["current", "to_seed"]

_SUPPORTED = ("tensorflow",)


def current():
    """The aae_keras module of the active Keras backend (clear error if there is none yet)."""
    import keras

    name = keras.backend.backend()
    if name not in _SUPPORTED:
        raise RuntimeError(
            f"aae-keras does not run on the Keras {name!r} backend yet (supported: {', '.join(_SUPPORTED)}); "
            "set KERAS_BACKEND=tensorflow."
        )
    return importlib.import_module(f"aae_keras.backend.{name}")


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
