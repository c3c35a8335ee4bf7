"""Training guards for `model.fit`: stop with a clear error as soon as a run diverges, and
resume a killed run exactly where it stopped.

`StopOnNonFinite` raises `NonFiniteError` at the first batch whose loss is NaN or inf, and
at the end of an epoch if any weight is (a loss can stay finite on NaN weights: in TensorFlow's
fused layers a ReLU turns NaN into 0), so a diverged model is never saved by mistake.
`ResumeFromBackup` writes the whole training state (weights, optimizers, early stopping) into
a folder after every epoch, atomically, and a later `fit` with the same callback picks it up:
an interrupted and resumed run ends with the same weights as an uninterrupted one.
`aae-keras train` and `aae-keras zoo build` use both; pass them to your own `fit` calls too.
Every other stock Keras callback (TensorBoard, BackupAndRestore, ModelCheckpoint, ...)
works with the models as is.

Example:
    >>> from aae_keras import callbacks
    >>> guard = callbacks.StopOnNonFinite()   # then model.fit(x, callbacks=[guard])
"""

import json
import math
import os
import shutil
import tempfile
import time

import keras
import numpy as np

from aae_keras import files

__all__ = ["NonFiniteError", "ResumeFromBackup", "StopOnNonFinite", "check_finite_weights"]

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


class ResumeFromBackup(keras.callbacks.Callback):
    """Back up the training state after every epoch into `directory`; restore it when `fit` starts.

    Like `keras.callbacks.BackupAndRestore`, with what an exact resume of a long run also needs:
    the state (weights with every optimizer, the next epoch, the seconds trained so far and an
    `early_stopping` callback's counters and best weights) is written as one folder and renamed
    into place, so a kill at any moment leaves the last complete epoch's state; and the
    generators that shuffle the batches (numpy's, and torch's on PyTorch) are seeded from `seed`
    and the epoch at the start of every epoch, so a resumed epoch sees the batches the
    uninterrupted run saw. The state is written after every epoch, except that epochs shorter than a twentieth
    of what a backup costs are backed up together (at most 5% of the training time goes to
    backups; the last epoch is always written). The folder is kept when training ends (the caller removes it once its outputs are
    written); a run that early stopping ended resumes with no epoch left to train. List it after
    `early_stopping` in `callbacks`.

    >>> import numpy as np, tempfile
    >>> from aae_keras import models, networks, priors
    >>> encoder, decoder, _ = networks.build("mlp", (8, 8), 2, hidden=(16,))
    >>> model = models.MMDAutoencoder(encoder, decoder, priors.gaussian(2))
    >>> model.compile()
    >>> x = np.random.default_rng(0).uniform(size=(64, 8, 8)).astype("float32")
    >>> backup = ResumeFromBackup(tempfile.mkdtemp())
    >>> _ = model.fit(x, epochs=2, verbose=0, callbacks=[backup])
    >>> backup.epochs_done, backup.restored_epoch
    (2, 0)
    """

    STATE = "state"  # the folder, inside `directory`, of the last complete epoch
    COST_RATIO = 20  # back up when the training since the last backup took 20 times what one costs

    def __init__(self, directory, seed=0, early_stopping=None):
        super().__init__()
        self.directory, self.seed, self.early_stopping = os.fspath(directory), int(seed), early_stopping
        self.epochs_done = 0  # epochs completed, those of earlier runs included
        self.restored_epoch = 0  # the epoch this run resumed at (0: started afresh)
        self.fit_seconds = 0.0  # seconds in fit, those of earlier runs included
        self.logs = {}  # the logs of the last epoch completed (in this run or an earlier one)
        self._earlier_seconds, self._start = 0.0, None

    def state_path(self):
        """The folder of the last complete epoch's state, or None if there is none."""
        path = os.path.join(self.directory, self.STATE)
        if os.path.isdir(path):
            return path
        # a kill between the two renames of files.replace_directory leaves the previous state aside
        aside = (
            [n for n in os.listdir(self.directory) if n.endswith(f"-old-{self.STATE}")]
            if os.path.isdir(self.directory)
            else []
        )
        return os.path.join(self.directory, sorted(aside)[-1]) if aside else None

    def on_train_begin(self, logs=None):
        self._start, self._earlier_seconds = time.perf_counter(), 0.0
        self._saved_at, self._save_cost = self._start, 0.0
        path = self.state_path()
        if path is None:
            return
        with open(os.path.join(path, "state.json")) as f:
            state = json.load(f)
        self.model.load_weights(os.path.join(path, "model.weights.h5"))
        self.restored_epoch = self.epochs_done = int(state["epoch"])
        self._earlier_seconds = self.fit_seconds = float(state["fit_seconds"])
        self.logs = state.get("logs", {})
        self.model._initial_epoch = self.params["epochs"] if state["stopped"] else self.epochs_done
        if self.early_stopping is not None and state.get("early_stopping"):
            stopper = self.early_stopping
            for name, value in state["early_stopping"].items():
                setattr(stopper, name, value)
            best = os.path.join(path, "best_weights.npz")
            if os.path.isfile(best):
                with np.load(best) as arrays:
                    stopper.best_weights = [arrays[f"arr_{i}"] for i in range(len(arrays.files))]

    def on_epoch_begin(self, epoch, logs=None):
        from aae_keras import backend

        backend.current().seed_shuffling((self.seed * 1_000_003 + epoch) % 2**32)

    def on_epoch_end(self, epoch, logs=None):
        self.epochs_done, self.logs = epoch + 1, {k: float(np.asarray(v)) for k, v in (logs or {}).items()}
        now = time.perf_counter()
        self.fit_seconds = self._earlier_seconds + now - self._start
        last = self.epochs_done == self.params.get("epochs") or self.model.stop_training
        if not last and now - self._saved_at < self.COST_RATIO * self._save_cost:
            return  # epochs shorter than the backup itself: back up once the training time makes it cheap
        self._save()
        self._saved_at = time.perf_counter()
        self._save_cost = self._saved_at - now

    def _save(self):
        """Write the state of the epoch just completed into `directory`/STATE, atomically."""
        os.makedirs(self.directory, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=files.TEMP_PREFIX, dir=self.directory)
        try:
            self.model.save_weights(os.path.join(staging, "model.weights.h5"))
            state = {
                "epoch": self.epochs_done,
                "fit_seconds": self.fit_seconds,
                "stopped": bool(self.model.stop_training),
                "logs": self.logs,
                "early_stopping": None,
            }
            stopper = self.early_stopping
            if stopper is not None:
                state["early_stopping"] = {
                    "wait": int(stopper.wait),
                    "best_epoch": int(stopper.best_epoch),
                    "stopped_epoch": int(stopper.stopped_epoch),
                    "best": None if stopper.best is None else float(stopper.best),
                }
                if stopper.best_weights is not None:
                    np.savez(os.path.join(staging, "best_weights.npz"), *stopper.best_weights)
            with open(os.path.join(staging, "state.json"), "w") as f:
                json.dump(state, f)
            files.replace_directory(staging, os.path.join(self.directory, self.STATE))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
