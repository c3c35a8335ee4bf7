import gzip
import os
import pathlib

import numpy as np
import pytest

from aae_keras import data

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
FASHION_DIR = pathlib.Path(
    os.environ.get("AAE_KERAS_FASHION_MNIST_DIR", REPO_ROOT / ".." / "shared" / "data" / "fashion-mnist")
)


def write_idx(path, array, magic):
    """Tiny IDX writer: big-endian magic and dimensions, then uint8 data."""
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    payload = header + np.asarray(array, np.uint8).tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(payload)


def write_idx_dir(directory, n_train=6, n_test=4, gz=True):
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": (rng.integers(0, 256, (n_train, 28, 28)), 2051),
        "train-labels-idx1-ubyte": (rng.integers(0, 10, n_train), 2049),
        "t10k-images-idx3-ubyte": (rng.integers(0, 256, (n_test, 28, 28)), 2051),
        "t10k-labels-idx1-ubyte": (rng.integers(0, 10, n_test), 2049),
    }
    for base, (array, magic) in arrays.items():
        write_idx(directory / (base + (".gz" if gz else "")), array, magic)
    return {base: array for base, (array, _) in arrays.items()}


def test_digits_shapes_ranges_and_determinism():
    d = data.load("digits")
    assert d.x_train.shape == (1437, 8, 8) and d.x_test.shape == (360, 8, 8)
    assert d.image_shape == (8, 8) and d.num_classes == 10 and d.name == "digits"
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int64
    assert d.x_train.min() >= 0 and d.x_train.max() == 1.0
    assert set(np.unique(d.y_train)) == set(range(10)) == set(np.unique(d.y_test))
    x, y = data.load("digits", split="train")
    np.testing.assert_array_equal(x, d.x_train)
    np.testing.assert_array_equal(y, d.y_train)


@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip(tmp_path, gz):
    written = write_idx_dir(tmp_path, gz=gz)
    d = data.load("fashion_mnist", data_dir=tmp_path)
    assert d.x_train.shape == (6, 28, 28) and d.x_test.shape == (4, 28, 28)
    assert d.x_train.dtype == np.float32 and d.y_test.dtype == np.int64
    np.testing.assert_allclose(d.x_train * 255, written["train-images-idx3-ubyte"], atol=1e-4)
    np.testing.assert_array_equal(d.y_test, written["t10k-labels-idx1-ubyte"])
    x, y = data.load("mnist", data_dir=str(tmp_path), split="test")
    assert x.shape == (4, 28, 28) and len(y) == 4


@pytest.mark.parametrize(
    "name, folder", [("mnist", "mnist"), ("fashion_mnist", "fashion-mnist"), ("fashion_mnist", "fashion_mnist")]
)
def test_the_data_dir_variable_is_the_offline_route(tmp_path, monkeypatch, name, folder):
    (tmp_path / folder).mkdir()
    written = write_idx_dir(tmp_path / folder)
    monkeypatch.setenv(data.DATA_DIR_VARIABLE, str(tmp_path))
    loaded = data.load(name)
    np.testing.assert_array_equal(loaded.y_train, written["train-labels-idx1-ubyte"])
    assert data.provenance(loaded) == {"name": name, "sha256": data.checksum(loaded), "train_size": 6, "test_size": 4}
    monkeypatch.setenv(data.DATA_DIR_VARIABLE, str(tmp_path / "elsewhere"))
    with pytest.raises(FileNotFoundError, match=f"AAE_KERAS_DATA_DIR=.*holds no .*{name}"):
        data.load(name)
    assert data.load(name, data_dir=tmp_path / folder).name == name  # data_dir wins over the variable


def test_missing_file_and_directory(tmp_path):
    write_idx_dir(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte.gz.*zalandoresearch"):
        data.load("fashion_mnist", data_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="not a directory"):
        data.load("mnist", data_dir=tmp_path / "nope")


def test_truncated_gzip_names_file(tmp_path):
    write_idx_dir(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz"):
        data.load("fashion_mnist", data_dir=tmp_path)


def test_wrong_magic_and_size_name_file(tmp_path):
    write_idx_dir(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(6), magic=2051)
    with pytest.raises(ValueError, match="labels-idx1-ubyte.gz.*magic number 2051, expected 2049"):
        data.load("fashion_mnist", data_dir=tmp_path)
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    with gzip.open(path, "wb") as f:  # header promises 6 labels, only 3 follow
        f.write((2049).to_bytes(4, "big") + (6).to_bytes(4, "big") + bytes(3))
    with pytest.raises(ValueError, match="train-labels-idx1-ubyte.gz.*truncated"):
        data.load("fashion_mnist", data_dir=tmp_path)


def test_unknown_name_and_split():
    with pytest.raises(ValueError, match="digits, mnist, fashion_mnist"):
        data.load("cifar10")
    with pytest.raises(ValueError, match="split"):
        data.load("digits", split="val")


def test_from_arrays_validation():
    x, y = data.from_arrays(np.arange(8, dtype=np.uint8).reshape(2, 4) * 30, [1, 0])
    assert x.dtype == np.float32 and np.isclose(x.max(), 210 / 255) and y.dtype == np.int64
    x, _ = data.from_arrays(np.array([[0.5, 2.5]]))  # not uint8-like: kept as is
    np.testing.assert_allclose(x, [[0.5, 2.5]])
    bad = np.zeros((3, 4))
    bad[1, 2] = np.nan
    bad[2, 0] = np.inf
    with pytest.raises(ValueError, match=r"2 non-finite values.*first at index \(1, 2\)"):
        data.from_arrays(bad)
    with pytest.raises(ValueError, match="at least 2"):
        data.from_arrays(np.zeros(5))
    with pytest.raises(ValueError, match="numeric"):
        data.from_arrays(np.array([["a", "b"]]))
    with pytest.raises(ValueError, match="one label per sample"):
        data.from_arrays(np.zeros((3, 2)), [0, 1])


def test_check_finite():
    with pytest.raises(ValueError, match="my data contains 1 non-finite values.*index 2"):
        data.check_finite([0.0, 1.0, np.inf], what="my data")
    assert data.check_finite(np.ones((2, 2))).shape == (2, 2)


def test_pipeline_batches_and_determinism():
    x = np.arange(10 * 4, dtype=np.float32).reshape(10, 4) / 40
    y = np.arange(10)
    batches = [b.numpy() for b in data.make_pipeline(x, batch_size=4)]
    assert [b.shape for b in batches] == [(4, 4), (4, 4)] and batches[0].dtype == np.float32
    again = [b.numpy() for b in data.make_pipeline(x, batch_size=4)]
    np.testing.assert_array_equal(np.concatenate(batches), np.concatenate(again))
    ordered = [b.numpy() for b in data.make_pipeline(x, batch_size=3, shuffle=False, drop_remainder=False)]
    assert [len(b) for b in ordered] == [3, 3, 3, 1]
    np.testing.assert_array_equal(np.concatenate(ordered), x)
    xb, yb = next(iter(data.make_pipeline(x, y, batch_size=5)))
    np.testing.assert_array_equal(xb.numpy(), x[yb.numpy()])
    repeated = data.make_pipeline(x, batch_size=4, repeat=True)
    assert len(list(repeated.take(7))) == 7


def test_pipeline_errors():
    with pytest.raises(ValueError, match="larger than the dataset \\(10 samples\\)"):
        data.make_pipeline(np.zeros((10, 3)), batch_size=11)
    with pytest.raises(ValueError, match="batch_size"):
        data.make_pipeline(np.zeros((10, 3)), batch_size=0)
    with pytest.raises(ValueError, match="non-finite"):
        data.make_pipeline(np.full((10, 3), np.nan), batch_size=2)
    with pytest.raises(ValueError, match="at least 2"):
        data.make_pipeline(np.zeros(10), batch_size=2)
    # no rescaling in the pipeline: integer-valued floats pass through unchanged
    batch = next(iter(data.make_pipeline(np.full((4, 2), 7.0), batch_size=4)))
    np.testing.assert_array_equal(batch.numpy(), np.full((4, 2), 7.0))


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason=f"no Fashion-MNIST files at {FASHION_DIR}")
def test_real_fashion_mnist():
    d = data.load("fashion_mnist", data_dir=FASHION_DIR)
    assert d.x_train.shape == (60000, 28, 28) and d.x_test.shape == (10000, 28, 28)
    assert d.image_shape == (28, 28)
    assert set(np.unique(d.y_train)) == set(range(10)) == set(np.unique(d.y_test))
    assert 0.0 <= d.x_train.min() and d.x_train.max() <= 1.0


def test_missing_file_reported_before_reading(tmp_path):
    write_idx_dir(tmp_path)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"garbage")
    (tmp_path / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte"):
        data.load("fashion_mnist", data_dir=tmp_path)


def test_keep_labels_is_balanced_exact_and_seeded():
    y = np.r_[np.zeros(3, int), np.ones(100, int), np.full(50, 2), np.full(5, -1)]
    kept = data.keep_labels(y, 30, seed=1)
    assert int((kept >= 0).sum()) == 30
    assert sorted(np.bincount(kept[kept >= 0]).tolist()) == [3, 13, 14]  # class 0 has only 3
    assert np.all(kept[kept >= 0] == y[kept >= 0])
    np.testing.assert_array_equal(kept, data.keep_labels(y, 30, seed=1))
    with pytest.raises(ValueError, match="Cannot keep 154 labels: the data has 153 labeled"):
        data.keep_labels(y, 154)


def test_labeled_batches_hold_labels_and_replay_by_epoch():
    x = np.arange(50, dtype="float32")[:, None] * np.ones((1, 3), "float32")
    y = np.r_[[3, 4, 5], np.full(47, -1)]
    batches = list(data.labeled_batches(x, y, batch_size=20, labeled_batch_size=2, seed=0, epochs=2))
    assert len(batches) == 4 and all(b.shape == (22, 3) for b, _ in batches)
    for rows, labels in batches:
        assert np.all(labels[-2:].numpy() >= 0)  # the appended labeled examples
        np.testing.assert_array_equal(y[rows.numpy()[:, 0].astype(int)], labels.numpy())
    resumed = list(data.labeled_batches(x, y, batch_size=20, labeled_batch_size=2, seed=0, epochs=2, initial_epoch=1))
    np.testing.assert_array_equal(resumed[0][0], batches[2][0])  # epoch 1 is the same batches
    assert not np.array_equal(batches[0][0], batches[2][0])  # and differs from epoch 0
    with pytest.raises(ValueError, match="all labels are -1"):
        data.labeled_batches(x, np.full(50, -1), batch_size=20)
