"""Saving that never loses a model: `save`, `save_weights` and `export` write atomically.

Keras writes a `.keras` file in place: a save that fails half-way (an uncompiled model in an
older release, a full disk, a kill) leaves an empty or truncated file where the previous model
was. The library's models write to a temporary file in the target's folder and rename it onto
the target only once complete, so a failure leaves the previous file exactly as it was and no
partial file behind. The legacy `.h5` format cannot hold a model with several optimizers and is
refused with a message that names `.keras`. `export` (Keras's own, for serving) works on a model
that was trained with `fit` but never called: the serving signature comes from the encoder's
input shape.

Example:
    >>> import os, tempfile
    >>> from aae_keras import models, networks, priors
    >>> enc, dec, _ = networks.build("mlp", (8, 8), 2, hidden=(16,))
    >>> model = models.MMDAutoencoder(enc, dec, priors.gaussian(2))  # built, never compiled
    >>> path = os.path.join(tempfile.mkdtemp(), "m.keras")
    >>> model.save(path); sorted(os.listdir(os.path.dirname(path)))
    ['m.keras']
    >>> model.save(path.replace(".keras", ".h5"))
    Traceback (most recent call last):
    ...
    ValueError: aae-keras models save in the native Keras format only: ...
"""

import os

import keras

from aae_keras import files

__all__ = ["AtomicSaving", "LEGACY_SUFFIXES", "image_signature", "load_model", "unreadable"]

LEGACY_SUFFIXES = (".h5", ".hdf5")


class AtomicSaving:
    """A mixin for `keras.Model` subclasses: atomic `save` / `save_weights`, `export` without a
    prior call (see the module docstring)."""

    def save(self, filepath, overwrite=True, zipped=None, **kwargs):
        """`keras.Model.save` to a temporary file renamed onto `filepath` once complete."""
        path = os.fspath(filepath) if isinstance(filepath, os.PathLike) else filepath
        if isinstance(path, str) and path.lower().endswith(LEGACY_SUFFIXES):
            raise ValueError(
                f"aae-keras models save in the native Keras format only: {path!r} asks for the legacy HDF5 "
                "format, which cannot hold a model with several optimizers; save to a path ending in .keras "
                "(model.save('model.keras')), or save the weights alone with save_weights('model.weights.h5')."
            )
        if not _local(path) or zipped is False:
            return super().save(filepath, overwrite=overwrite, zipped=zipped, **kwargs)
        if os.path.exists(path) and not overwrite and not _may_overwrite(path):
            return None
        with files.atomic_path(path) as tmp:
            super().save(tmp, overwrite=True, zipped=zipped, **kwargs)
        return None

    def save_weights(self, filepath, overwrite=True, max_shard_size=None):
        """`keras.Model.save_weights` to a temporary file renamed onto `filepath` once complete
        (sharded weights, with `max_shard_size`, are written as Keras writes them)."""
        path = os.fspath(filepath) if isinstance(filepath, os.PathLike) else filepath
        if not _local(path) or max_shard_size is not None:
            return super().save_weights(filepath, overwrite=overwrite, max_shard_size=max_shard_size)
        if not path.endswith(".weights.h5"):  # Keras's own message
            return super().save_weights(filepath, overwrite=overwrite)
        if os.path.exists(path) and not overwrite and not _may_overwrite(path):
            return None
        with files.atomic_path(path) as tmp:
            super().save_weights(tmp, overwrite=True)
        return None

    def export(self, filepath, format="tf_saved_model", verbose=None, input_signature=None, **kwargs):
        """`keras.Model.export` (SavedModel, ONNX, ...) of the reconstruction `call`, written
        atomically; without `input_signature`, the one of `serving_signature()`.

        For the decoder or encoder alone, verified against Keras and with the prior's metadata,
        use `aae_keras.export.export_decoder` / `export_encoder` (`aae-keras export`).
        """
        if input_signature is None:
            input_signature = self.serving_signature()
        path = os.fspath(filepath)
        with files.atomic_path(path) as tmp:
            super().export(tmp, format=format, verbose=verbose, input_signature=input_signature, **kwargs)
        return None

    def serving_signature(self):
        """The input signature `export` uses when given none: a list of `keras.InputSpec`s."""
        raise NotImplementedError(f"{type(self).__name__} does not define serving_signature().")


def image_signature(image_shape):
    """`[keras.InputSpec]` of one float32 batch of images `x` of shape `image_shape`."""
    return [keras.InputSpec(shape=(None, *image_shape), dtype="float32", name="x")]


def load_model(path, **kwargs):
    """`keras.saving.load_model(path)` with a clear error for a file that is missing, empty,
    truncated or not a zip archive (Keras says "File not found" for all four).

    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile(suffix=".keras") as f:
    ...     load_model(f.name)
    Traceback (most recent call last):
    ...
    ValueError: ... is not a readable .keras model: the file is empty; ...
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"{path!r} does not exist (or is not a file); pass the path of a .keras model.")
    problem = unreadable(path)
    if problem:
        raise ValueError(
            f"{path!r} is not a readable .keras model: the file is {problem}; save the model again "
            "(the library's model.save writes atomically, so a save that fails leaves the previous file)."
        )
    return keras.saving.load_model(path, **kwargs)


def unreadable(path):
    """Why the file `path` cannot be a .keras model, in words, or None (see `files.zip_problem`)."""
    problem = files.zip_problem(path)
    return {
        None: None,
        "empty": "empty",
        "truncated": "truncated: a .keras zip archive whose end is missing",
        "not a zip archive": "not a zip archive, so not a .keras model",
    }[problem]


def _local(path):
    """Whether `path` names a local file (not a remote or hf:// location, which Keras handles)."""
    return isinstance(path, str) and "://" not in path


def _may_overwrite(path):
    from keras.src.utils import io_utils

    return io_utils.ask_to_proceed_with_overwrite(path)
