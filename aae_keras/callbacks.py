"""A training guard for `model.fit`: stop with a clear error as soon as a run diverges.

`StopOnNonFinite` raises `NonFiniteError` at the first batch whose loss is NaN or inf, and
at the end of an epoch if any weight is (a loss can stay finite on NaN weights: in TensorFlow's
fused layers a ReLU turns NaN into 0), so a diverged model is never saved by mistake.
`aae-keras train` and `aae-keras zoo build` use it; pass it to your own `fit` calls too.
Every other stock Keras callback (TensorBoard, BackupAndRestore, ModelCheckpoint, ...)
works with the models as is.

Example:
    >>> from aae_keras import callbacks
    >>> guard = callbacks.StopOnNonFinite()   # then model.fit(x, callbacks=[guard])
"""

import math

import keras
import numpy as np

__all__ = ["NonFiniteError", "StopOnNonFinite", "check_finite_weights"]

_ADVICE = "lower the learning rate (--lr on the command line) or check the data for extreme values"


class NonFiniteError(RuntimeError):
    """Training produced a NaN or infinite loss or weight."""


class StopOnNonFinite(keras.callbacks.Callback):
    """Raise `NonFiniteError` when the logged `monitor` turns NaN or inf, or a weight does.

    The loss is checked at the end of every training batch (the error names the epoch and
    batch, counted from 1), the weights at the end of every epoch. A model that does not log
    `monitor` has every logged value checked instead.

    >>> import numpy as np
    >>> from aae_keras import models, networks, priors
    >>> encoder, decoder, _ = networks.build("mlp", (8, 8), 2, hidden=(16,))
    >>> model = models.MMDAutoencoder(encoder, decoder, priors.gaussian(2))
    >>> model.compile(optimizer="adam")
    >>> x = np.random.default_rng(0).uniform(size=(64, 8, 8)).astype("float32")
    >>> history = model.fit(x, epochs=1, verbose=0, callbacks=[StopOnNonFinite()])
    >>> _ = model.decoder.weights[0].assign(np.full(model.decoder.weights[0].shape, np.nan))
    >>> model.fit(x, epochs=1, verbose=0, callbacks=[StopOnNonFinite()])
    Traceback (most recent call last):
    ...
    aae_keras.callbacks.NonFiniteError: training diverged: loss is nan at epoch 1, batch ...; lower the learning rate ...
    """

    def __init__(self, monitor="loss"):
        super().__init__()
        self.monitor = monitor
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        watched = {self.monitor: logs[self.monitor]} if self.monitor in logs else logs
        for name, value in watched.items():
            value = float(np.asarray(value))
            if not math.isfinite(value):
                raise NonFiniteError(
                    f"training diverged: {name} is {value} at epoch {self._epoch + 1}, batch {batch + 1}; {_ADVICE}."
                )

    def on_epoch_end(self, epoch, logs=None):
        check_finite_weights(self.model, when=f"after epoch {epoch + 1}")


def check_finite_weights(model, when="now"):
    """Raise `NonFiniteError` if any floating-point weight of `model` is NaN or inf (`when`: for the message).

    >>> layer = keras.layers.Dense(1, name="head")
    >>> layer.build((None, 2))
    >>> check_finite_weights(layer)                        # all finite: returns None
    >>> _ = layer.kernel.assign([[np.nan], [0.0]])
    >>> check_finite_weights(layer)
    Traceback (most recent call last):
    ...
    aae_keras.callbacks.NonFiniteError: training diverged: 1 weight values are NaN or inf now, in 1 variables (first: head/kernel); ...
    """
    bad = {}
    for variable in model.weights:
        values = keras.ops.convert_to_numpy(variable.value)
        if np.issubdtype(values.dtype, np.floating):
            count = int(np.size(values) - np.isfinite(values).sum())
            if count:
                bad[variable.path] = count
    if bad:
        first = next(iter(bad))
        raise NonFiniteError(
            f"training diverged: {sum(bad.values())} weight values are NaN or inf {when}, in {len(bad)} variables "
            f"(first: {first}); {_ADVICE}."
        )
