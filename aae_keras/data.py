"""Datasets: loading image benchmarks, validating user arrays, and building tf.data pipelines.

`load` returns a `Dataset` of float32 images in [0, 1] and int64 labels. The "digits" set ships
with scikit-learn and works offline; "mnist" and "fashion_mnist" are read from a directory of
the four standard IDX files (`data_dir=`) or downloaded through `keras.datasets`.

Example:
    >>> from aae_keras import data
    >>> digits = data.load("digits")
    >>> digits.x_train.shape, digits.image_shape, digits.num_classes
    ((1437, 8, 8), (8, 8), 10)
    >>> batches = data.make_pipeline(digits.x_train, batch_size=64)
"""

import dataclasses
import functools
import gzip
import hashlib
import json
import os
import zlib

import numpy as np

__all__ = [
    "checksum",
    "KNOWN_DATASETS",
    "Dataset",
    "check_finite",
    "provenance",
    "check_images",
    "from_arrays",
    "keep_labels",
    "labeled_batches",
    "labeled_fit_arguments",
    "load",
    "make_pipeline",
    "numeric",
    "PROBLEMS",
]

KNOWN_DATASETS = ("digits", "mnist", "fashion_mnist")
# What is wrong with images a model was given, by problem: the numpy checks below and the
# models' in-graph checks of datasets share these messages ({what}: which data).
PROBLEMS = {
    "non_finite": "{what} contains non-finite values (NaN or inf); clean or drop them "
    "(aae_keras.data.check_finite finds them).",
    "outside_unit_range": "{what} holds values outside [0, 1], which the binary cross-entropy "
    "reconstruction cannot fit; scale the images to [0, 1] (e.g. x / 255 for uint8 images, as "
    'aae_keras.data.from_arrays does) or build the model with reconstruction="mse".',
}

_SOURCES = {
    "mnist": "https://yann.lecun.com/exdb/mnist or keras.datasets.mnist.load_data()",
    "fashion_mnist": ("https://github.com/zalandoresearch/fashion-mnist or Debian's `dataset-fashion-mnist` package"),
}
_IDX_FILES = {  # (split, part) -> file name without ".gz"
    ("train", "x"): "train-images-idx3-ubyte",
    ("train", "y"): "train-labels-idx1-ubyte",
    ("test", "x"): "t10k-images-idx3-ubyte",
    ("test", "y"): "t10k-labels-idx1-ubyte",
}
_IDX_MAGIC = {2051: 3, 2049: 1}  # magic number -> number of dimensions (images, labels)


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A train/test image dataset: float32 images in [0, 1], int64 labels.

    >>> d = load("digits")
    >>> d.name, d.x_test.shape, d.y_test.dtype
    ('digits', (360, 8, 8), dtype('int64'))
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str
    num_classes: int

    @property
    def image_shape(self):
        """Shape of one image, e.g. `(28, 28)`."""
        return tuple(self.x_train.shape[1:])


def checksum(dataset):
    """sha256 of a Dataset's four arrays (train/test images and labels) as loaded.

    >>> len(checksum(load("digits")))
    64
    """
    digest = hashlib.sha256()
    for array in (dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test):
        digest.update(str((array.dtype.str, array.shape)).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def provenance(dataset):
    """What a run or preset records of its data: {"name", "sha256" (`checksum`), "train_size",
    "test_size"}.

    >>> sorted(provenance(load("digits")))
    ['name', 'sha256', 'test_size', 'train_size']
    """
    return {
        "name": dataset.name,
        "sha256": checksum(dataset),
        "train_size": len(dataset.x_train),
        "test_size": len(dataset.x_test),
    }


def check_finite(x, what="training data"):
    """Raise ValueError if `x` contains NaN or inf; return `x` as a numpy array otherwise.

    >>> check_finite(np.array([[0.0, np.nan]]))
    Traceback (most recent call last):
    ...
    ValueError: training data contains 1 non-finite values (NaN or inf), first at index (0, 1) (row 0); clean or drop them
    """
    x = np.asarray(x)
    bad = ~np.isfinite(x)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        where = f"{first[0]}" if len(first) == 1 else f"{first} (row {first[0]})"
        raise ValueError(
            f"{what} contains {int(bad.sum())} non-finite values (NaN or inf), first at index "
            f"{where}; clean or drop them"
        )
    return x


def numeric(x, what):
    """`x` as a numpy array, or a clear error for non-numeric input."""
    x = np.asarray(x)
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise ValueError(f"{what} must be numeric, got an array of dtype {x.dtype}.")
    return x


def check_images(x, what="training data", unit_range=True):
    """`x` as a numpy array once it is numeric, non-empty, finite and, with `unit_range` (the
    binary cross-entropy reconstruction), in [0, 1]; else a clear ValueError naming `what`.

    >>> check_images(np.full((2, 3), 2.0), unit_range=True)
    Traceback (most recent call last):
    ...
    ValueError: The training data (values 2.0..2.0) holds values outside [0, 1], which the binary cross-entropy reconstruction cannot fit; scale the images to [0, 1] (e.g. x / 255 for uint8 images, as aae_keras.data.from_arrays does) or build the model with reconstruction="mse".
    """
    x = numeric(x, what)
    if len(x) == 0:
        raise ValueError(f"The {what} is empty (shape {x.shape}); pass at least one example.")
    check_finite(x, what=f"The {what}")
    if unit_range and (x.min() < 0 or x.max() > 1):
        raise ValueError(PROBLEMS["outside_unit_range"].format(what=f"The {what} (values {x.min()}..{x.max()})"))
    return x


def from_arrays(x, y=None, name="arrays"):
    """Validate user arrays and return `(x, y)`: x float32, y int64 (or None).

    `x` must be numeric, at least 2-D (samples first) and finite. Integer-valued data in
    0..255 with a maximum above 1 (e.g. uint8 images) is scaled by 1/255; anything else is
    only cast to float32, so values outside [0, 1] are kept as given (a sigmoid decoder
    cannot reproduce them; rescaling is the caller's choice). `y`, if given, must be 1-D
    integer labels, one per sample.

    >>> x, y = from_arrays(np.full((4, 3, 3), 255, np.uint8), [0, 1, 2, 3])
    >>> x.dtype, float(x.max()), y.dtype
    (dtype('float32'), 1.0, dtype('int64'))
    """
    x = _validated(x, name)
    looks_uint8 = x.max() > 1 and x.min() >= 0 and x.max() <= 255 and np.all(x == np.round(x))
    x = x.astype(np.float32) / np.float32(255 if looks_uint8 else 1)
    return x, _labels(y, len(x), name)


def make_pipeline(x, y=None, batch_size=100, shuffle=True, seed=0, drop_remainder=True, repeat=False):
    """A `tf.data.Dataset` of float32 batches of `x` (or `(x, y)` tuples if `y` is given); on
    the JAX and PyTorch backends a `keras.utils.PyDataset` of the same batches.

    `x` is checked with `check_finite` and cast to float32 as is (no rescaling: call
    `from_arrays` first for uint8 images). With `shuffle`, the order is reshuffled every
    iteration from `seed` (None: unseeded).

    >>> ds = make_pipeline(np.zeros((10, 8, 8)), batch_size=4)
    >>> [tuple(b.shape) for b in ds]
    [(4, 8, 8), (4, 8, 8)]
    """
    import keras  # lazily: the command line parses its arguments without TensorFlow

    x = _validated(x, "training data").astype(np.float32)
    n = len(x)
    y = _labels(y, n, "training data")
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if drop_remainder and batch_size > n:
        raise ValueError(
            f"batch_size={batch_size} is larger than the dataset ({n} samples), so "
            "drop_remainder=True would yield no batches; use a smaller batch_size or "
            "drop_remainder=False"
        )
    if keras.backend.backend() != "tensorflow":
        if repeat:
            raise ValueError(
                "repeat=True needs tf.data (the TensorFlow backend); without it, pass "
                "steps_per_epoch to fit and let the batches run epoch by epoch."
            )
        return _index_batches_class()(
            (x,) if y is None else (x, y), _shuffled_rows(n, batch_size, shuffle, seed, drop_remainder)
        )
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices(x if y is None else (x, y))
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


def _shuffled_rows(n, batch_size, shuffle, seed, drop_remainder):
    """Epoch e's batches of row indices of `make_pipeline` without tf.data (a list of arrays)."""

    def rows(e):
        order = np.random.default_rng(None if seed is None else [seed, e]).permutation(n) if shuffle else np.arange(n)
        stop = n - n % batch_size if drop_remainder else n
        return [order[start : start + batch_size] for start in range(0, stop, batch_size)]

    return rows


def keep_labels(y, num_labeled, seed=0):
    """A copy of labels `y` with all but `num_labeled` of them set to -1 (unlabeled).

    The kept labels are balanced over the classes (the paper's 100 labels are 10 per class
    of MNIST); the choice within each class is random with `seed`.

    >>> y = keep_labels(np.repeat(np.arange(10), 50), 20)
    >>> int((y >= 0).sum()), np.bincount(y[y >= 0]).tolist()
    (20, [2, 2, 2, 2, 2, 2, 2, 2, 2, 2])
    """
    y = _labels(y, len(np.asarray(y)), "labels")
    classes = np.unique(y[y >= 0])
    if not 0 < num_labeled <= int((y >= 0).sum()):
        raise ValueError(
            f"Cannot keep {num_labeled} labels: the data has {int((y >= 0).sum())} labeled "
            "examples; ask for a number between 1 and that."
        )
    rng = np.random.default_rng(seed)
    labeled = rng.permutation(np.flatnonzero(y >= 0))
    rank = np.zeros(len(labeled))  # position of each example within its class, in random order
    for c in classes:
        members = y[labeled] == c
        rank[members] = np.arange(members.sum())
    chosen = labeled[np.argsort(rank + rng.uniform(0, 0.5, len(labeled)), kind="stable")[:num_labeled]]
    kept = np.full_like(y, -1)
    kept[chosen] = y[chosen]
    return kept


def labeled_batches(x, y, batch_size=100, labeled_batch_size=None, seed=0, epochs=1, initial_epoch=0):
    """Batches for semi-supervised training: `batch_size` examples of (x, y), then
    `labeled_batch_size` examples drawn from the labeled ones (y >= 0), so every batch holds
    labels even when only a few examples have them.

    Yields `epochs - initial_epoch` epochs of `len(x) // batch_size` batches (pass that as
    `steps_per_epoch`). Epoch e's order is a stateless function of (seed, e), so the batches
    do not depend on how often the dataset is iterated (a 2-replica run sees the batches of
    a 1-replica run). `labeled_batch_size` defaults to min(batch_size, number labeled).

    >>> ds = labeled_batches(np.zeros((50, 4)), np.r_[[0, 1], np.full(48, -1)], 20)
    >>> [(tuple(b.shape), int(np.sum(l >= 0)) >= 2) for b, l in ds]   # 2 batches of 20 + 2
    [((22, 4), True), ((22, 4), True)]
    """
    import keras

    x = _validated(x, "training data").astype(np.float32)
    y = _labels(y, len(x), "training data")
    labeled = np.flatnonzero(y >= 0).astype(np.int32)
    if len(labeled) == 0:
        raise ValueError("labeled_batches needs some labels >= 0; all labels are -1 (unlabeled).")
    if not 1 <= batch_size <= len(x):
        raise ValueError(f"batch_size must be between 1 and the {len(x)} examples, got {batch_size}.")
    size = labeled_batch_size or min(batch_size, len(labeled))
    steps = len(x) // batch_size
    repeats = -(-steps * size // len(labeled))
    if keras.backend.backend() != "tensorflow":
        rows = _labeled_rows(len(x), labeled, batch_size, size, repeats, seed)
        return _index_batches_class()((x, y.astype(np.int32)), rows, initial_epoch)
    import tensorflow as tf

    def epoch(e):
        order = tf.random.experimental.stateless_shuffle(tf.range(len(x)), seed=tf.stack([seed, e]))
        picks = tf.random.experimental.stateless_shuffle(tf.tile(labeled, [repeats]), seed=tf.stack([seed + 1, e]))
        return tf.data.Dataset.from_tensor_slices(
            (
                tf.reshape(order[: steps * batch_size], [steps, batch_size]),
                tf.reshape(picks[: steps * size], [steps, size]),
            )
        )

    def gather(rows, extra):
        both = tf.concat([rows, extra], 0)
        return tf.gather(x, both), tf.gather(y, both)

    epochs = tf.data.Dataset.range(initial_epoch, epochs).map(lambda e: tf.cast(e, tf.int32))
    return epochs.flat_map(epoch).map(gather).prefetch(tf.data.AUTOTUNE)


def _labeled_rows(n, labeled, batch_size, size, repeats, seed):
    """Epoch e's rows of `labeled_batches` [steps, batch_size + size], drawn with numpy from (seed, e)."""
    steps = n // batch_size

    def rows(e):
        order = np.random.default_rng([seed, e]).permutation(n)[: steps * batch_size].reshape(steps, batch_size)
        picks = np.random.default_rng([seed + 1, e]).permutation(np.tile(labeled, repeats))[: steps * size]
        return np.concatenate([order, picks.reshape(steps, size)], axis=1)

    return rows


@functools.cache
def _index_batches_class():
    """The `keras.utils.PyDataset` of numpy batches used without TensorFlow (made on first use:
    this module imports Keras lazily)."""
    import keras

    class IndexBatches(keras.utils.PyDataset):
        """Batches `arrays[rows]` for each row of `rows_of_epoch(epoch)` [steps, batch]; the epoch
        counter starts at `initial_epoch` and advances at each epoch's end."""

        def __init__(self, arrays, rows_of_epoch, initial_epoch=0):
            super().__init__()
            self.arrays, self.rows_of_epoch, self.epoch = arrays, rows_of_epoch, initial_epoch
            self.rows = rows_of_epoch(initial_epoch)

        def __len__(self):
            return len(self.rows)

        def __getitem__(self, index):
            batch = tuple(array[self.rows[index]] for array in self.arrays)
            return batch if len(batch) > 1 else batch[0]

        def on_epoch_end(self):
            self.epoch += 1
            self.rows = self.rows_of_epoch(self.epoch)

    return IndexBatches


def labeled_fit_arguments(x, y, batch_size, labeled_batch_size, seed, fit_kwargs):
    """(dataset, fit keywords) for `fit` on numpy data whose labels are partly -1: the
    `labeled_batches` of (x, y), from the epoch training starts at, and the steps per epoch.

    `validation_split` takes the last examples (and labels) as validation data, as Keras does;
    a run resumed by a `keras.callbacks.BackupAndRestore` among the callbacks continues the
    labeled batches from the restored epoch, so it ends where an uninterrupted run does.

    >>> x, y = np.zeros((40, 4), np.float32), np.r_[[0, 1], np.full(38, -1)]
    >>> dataset, kwargs = labeled_fit_arguments(x, y, 10, None, 0, {"epochs": 2, "validation_split": 0.5})
    >>> kwargs["steps_per_epoch"], len(kwargs["validation_data"][0])
    (2, 20)
    """
    x, y, kwargs = _split_validation(x, y, dict(fit_kwargs))
    initial_epoch = _restored_epoch(kwargs.get("callbacks"), kwargs.get("initial_epoch", 0))
    dataset = labeled_batches(x, y, batch_size, labeled_batch_size, seed, kwargs.get("epochs", 1), initial_epoch)
    return dataset, {**kwargs, "shuffle": False, "steps_per_epoch": len(y) // batch_size}  # the pipeline shuffles


def _split_validation(x, y, kwargs):
    """Keras's `validation_split` done by hand: the last fraction of (x, y) becomes
    `validation_data` (fit then builds labeled batches from the rest)."""
    split = kwargs.pop("validation_split", None)
    if not split:
        return x, y, kwargs
    if kwargs.get("validation_data") is not None:
        raise ValueError("Pass validation_split or validation_data, not both.")
    if not 0 < split < 1:
        raise ValueError(f"validation_split must lie strictly between 0 and 1, got {split}.")
    keep = int(len(x) * (1 - split))
    if keep < 1 or keep == len(x):
        raise ValueError(f"validation_split={split} leaves no training or no validation examples of {len(x)}.")
    if not (y[:keep] >= 0).any():
        raise ValueError(f"validation_split={split} leaves no labeled example to train on; lower it.")
    return x[:keep], y[:keep], {**kwargs, "validation_data": (x[keep:], y[keep:])}


def _restored_epoch(callbacks, initial_epoch):
    """The epoch a `keras.callbacks.BackupAndRestore` among `callbacks` will resume from (it
    restores the model in on_train_begin, after fit has built its batches), else `initial_epoch`."""
    import keras

    for callback in callbacks or []:
        if isinstance(callback, keras.callbacks.BackupAndRestore):
            path = os.path.join(callback.backup_dir, "training_metadata.json")
            try:
                with open(path) as f:
                    return int(json.load(f)["epoch"])
            except (OSError, ValueError, KeyError, TypeError):
                return initial_epoch
    return initial_epoch


def _validated(x, what):
    """`x` as a numpy array after checking it is numeric, at least 2-D, non-empty and finite."""
    x = np.asarray(x)
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise ValueError(f"{what}: x must be a numeric array, got dtype {x.dtype}")
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(
            f"{what}: x must be a non-empty array of shape (num_samples, ...) with at least 2 "
            f"dimensions, got shape {x.shape}; reshape a single sample with x[None]"
        )
    return check_finite(x, what=what)


def _labels(y, n, what):
    """`y` as 1-D int64 labels, one per sample (None stays None)."""
    if y is None:
        return None
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"{what}: y must be 1-D with one label per sample ({n}), got shape {y.shape}")
    integral = np.issubdtype(y.dtype, np.integer) or (np.issubdtype(y.dtype, np.floating) and np.all(y == np.round(y)))
    if not integral:
        raise ValueError(f"{what}: y must hold integer class labels, got dtype {y.dtype}")
    return y.astype(np.int64)


def load(name, data_dir=None, split=None):
    """Load a dataset by name: a `Dataset`, or `(x, y)` of one split if `split` is given.

    `name` is one of "digits" (scikit-learn, offline, 8x8, fixed stratified 80/20 split),
    "mnist" or "fashion_mnist" (28x28). For the latter two, `data_dir` is a directory with
    `train-images-idx3-ubyte.gz`, `train-labels-idx1-ubyte.gz`, `t10k-images-idx3-ubyte.gz`
    and `t10k-labels-idx1-ubyte.gz` (or the same names without `.gz`); without it the data
    is downloaded through `keras.datasets` (which keeps it in `~/.keras/datasets` for the next
    call), unless the environment variable `AAE_KERAS_DATA_DIR` names a folder that holds a
    `mnist/` or `fashion-mnist/` (or `fashion_mnist/`) directory of those files: the offline route.

    >>> x, y = load("digits", split="test")
    >>> x.shape, float(x.max()) <= 1.0
    ((360, 8, 8), True)
    """
    if name not in KNOWN_DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(KNOWN_DATASETS)}")
    if split not in (None, "train", "test"):
        raise ValueError(f"split must be None, 'train' or 'test', got {split!r}")
    data_dir = data_dir if data_dir is not None or name == "digits" else _data_dir_from_environment(name)
    if name == "digits":
        arrays = _load_digits()
    elif data_dir is not None:
        arrays = _load_idx_dir(name, os.fspath(data_dir))
    else:
        arrays = _download(name)
    (x_train, y_train), (x_test, y_test) = arrays
    scale = np.float32(16 if name == "digits" else 255)
    data = Dataset(
        x_train=x_train.astype(np.float32) / scale,
        y_train=y_train.astype(np.int64),
        x_test=x_test.astype(np.float32) / scale,
        y_test=y_test.astype(np.int64),
        name=name,
        num_classes=10,
    )
    if split is None:
        return data
    return getattr(data, f"x_{split}"), getattr(data, f"y_{split}")


def _load_digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.images, digits.target, test_size=0.2, random_state=0, stratify=digits.target
    )
    return (x_train, y_train), (x_test, y_test)


DATA_DIR_VARIABLE = "AAE_KERAS_DATA_DIR"


def _data_dir_from_environment(name):
    """The folder of `name`'s IDX files under $AAE_KERAS_DATA_DIR, or None (download); a clear
    error when the variable names a folder without one."""
    root = os.environ.get(DATA_DIR_VARIABLE)
    if not root:
        return None
    candidates = [os.path.join(root, folder) for folder in dict.fromkeys((name, name.replace("_", "-")))]
    found = next((c for c in candidates if os.path.isdir(c)), None)
    if found is None:
        raise FileNotFoundError(
            f"{DATA_DIR_VARIABLE}={root!r} holds no {' or '.join(map(repr, candidates))} folder for "
            f"{name!r}; put the four IDX files there, pass data_dir= (--data-dir), or unset "
            f"{DATA_DIR_VARIABLE} to download through keras.datasets."
        )
    return found


def _download(name):
    import keras

    try:
        return getattr(keras.datasets, name).load_data()
    except Exception as err:
        raise OSError(
            f"could not download {name!r} through keras.datasets ({type(err).__name__}: {err}); "
            "pass data_dir= a directory with the four IDX files "
            f"({', '.join(f + '.gz' for f in _IDX_FILES.values())}) from {_SOURCES[name]}"
        ) from err


def _load_idx_dir(name, data_dir):
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(
            f"data_dir {data_dir!r} for {name!r} is not a directory; it should hold the four IDX "
            f"files ({', '.join(f + '.gz' for f in _IDX_FILES.values())}) from {_SOURCES[name]}"
        )
    paths = {}
    for key, base in _IDX_FILES.items():
        path = next(
            (p for p in (os.path.join(data_dir, base + ".gz"), os.path.join(data_dir, base)) if os.path.isfile(p)), None
        )
        if path is None:
            raise FileNotFoundError(
                f"{base}.gz (or {base}) is missing from {data_dir!r}; get the {name!r} IDX files from {_SOURCES[name]}"
            )
        paths[key] = path
    arrays = {key: _read_idx(path, 2051 if key[1] == "x" else 2049) for key, path in paths.items()}
    for split in ("train", "test"):
        if len(arrays[split, "x"]) != len(arrays[split, "y"]):
            raise ValueError(
                f"{split} images and labels in {data_dir!r} disagree: "
                f"{len(arrays[split, 'x'])} images, {len(arrays[split, 'y'])} labels"
            )
    return [(arrays[s, "x"], arrays[s, "y"]) for s in ("train", "test")]


def _read_idx(path, magic):
    """Read one uint8 IDX file (optionally gzipped) whose header must carry `magic`."""
    try:
        with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(
            f"cannot read IDX file {path!r} ({err}); the file is corrupt or truncated, download it again"
        ) from err
    ndim = _IDX_MAGIC[magic]
    header = 4 * (1 + ndim)
    if len(raw) < header or int.from_bytes(raw[:4], "big") != magic:
        found = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
        raise ValueError(
            f"IDX file {path!r} has magic number {found}, expected {magic}; the "
            "file is corrupt or not the expected images/labels file"
        )
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    if len(raw) - header != int(np.prod(shape)):
        raise ValueError(
            f"IDX file {path!r} holds {len(raw) - header} data bytes but its header "
            f"promises shape {shape}; the file is truncated or corrupt"
        )
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)
