"""Data checks on the host, batch by batch, for train steps that cannot check inside themselves.

A jitted step cannot raise cleanly on bad data: XLA drops TensorFlow's in-graph asserts, and
an error inside a JAX step loses the trainer's donated state. Where the step is compiled so,
`wrap` checks each batch of a `keras.utils.PyDataset` or a Python iterator with the model's
numpy checks before the step sees it (numpy arrays are checked whole before `fit`).

Example:
    >>> def check(batch, training):
    ...     if min(batch) < 0:
    ...         raise ValueError("aae_keras[train]: negative")
    >>> list(wrap(iter([[1, 2], [3]]), check, True))
    [[1, 2], [3]]
"""

import types

import keras

__all__ = ["wrap"]


def wrap(data, check, training):
    """`data` whose batches pass `check(batch, training)` on the host: a PyDataset or a Python
    iterator is wrapped; anything else passes unchanged."""
    if isinstance(data, keras.utils.PyDataset):
        return _CheckedBatches(data, check, training)
    if isinstance(data, types.GeneratorType) or (hasattr(data, "__next__") and hasattr(data, "__iter__")):
        return (_checked(batch, check, training) for batch in data)
    return data


def _checked(batch, check, training):
    check(batch, training)
    return batch


class _CheckedBatches(keras.utils.PyDataset):
    """A PyDataset's batches, each checked on the host (see `wrap`)."""

    def __init__(self, dataset, check, training):
        super().__init__(
            workers=dataset.workers,
            use_multiprocessing=dataset.use_multiprocessing,
            max_queue_size=dataset.max_queue_size,
        )
        self.dataset, self.check, self.training = dataset, check, training

    def __len__(self):
        return len(self.dataset)

    @property
    def num_batches(self):
        return self.dataset.num_batches

    def __getitem__(self, index):
        return _checked(self.dataset[index], self.check, self.training)

    def on_epoch_begin(self):
        self.dataset.on_epoch_begin()

    def on_epoch_end(self):
        self.dataset.on_epoch_end()
