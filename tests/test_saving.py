"""Saving never loses a model (the README's Reliability section): atomic `save`, `save_weights`,
exports, presets and archives; uncompiled models save; `.h5` is refused; Keras's own
`model.export` works on a trained model."""

import os

import keras
import numpy as np
import onnxruntime
import pytest
import tensorflow as tf

from aae_keras import export, files, models, networks, presets, priors
from aae_keras.sample_quality import FashionClassifier
from conftest import VARIANTS, tiny_model, tiny_variant, variant_labels


@pytest.fixture(scope="module")
def small(digits):
    return digits.x_train[:128], digits.y_train[:128]


def trained_model(small):
    model = tiny_model("mmd")
    model.fit(small[0], epochs=1, batch_size=64, verbose=0)
    return model


def uncompiled_model():
    encoder, decoder, _ = networks.build("mlp", (8, 8), 2, hidden=(16,))
    return models.MMDAutoencoder(encoder, decoder, priors.gaussian(2))


def listing(directory):
    return sorted(os.listdir(directory))


class Boom(RuntimeError):
    pass


def raise_boom(*args, **kwargs):
    raise Boom("a failure half-way: a full disk, a kill")


def test_a_failed_save_keeps_the_previous_file(small, tmp_path, monkeypatch):
    path = tmp_path / "m.keras"
    model = trained_model(small)
    model.save(path)
    before = path.read_bytes()
    codes = model.encode(small[0][:4])

    def broken_save_model(*args, **kwargs):  # a save that fails half-way, as a full disk would
        open(args[1], "wb").write(b"PK\x03\x04 half a file")
        raise Boom("disk full")

    monkeypatch.setattr(keras.src.saving.saving_lib, "save_model", broken_save_model)
    with pytest.raises(Boom):
        uncompiled_model().save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before and listing(tmp_path) == ["m.keras"]  # no partial file either
    np.testing.assert_array_equal(keras.saving.load_model(path).encode(small[0][:4]), codes)


def test_a_failed_save_weights_keeps_the_previous_file(small, tmp_path, monkeypatch):
    path = tmp_path / "m.weights.h5"
    model = trained_model(small)
    model.save_weights(path)
    before = path.read_bytes()

    def broken_save_weights(model, filepath, *args, **kwargs):
        open(filepath, "wb").write(b"half the weights")
        raise Boom("killed")

    monkeypatch.setattr(keras.src.saving.saving_lib, "save_weights_only", broken_save_weights)
    with pytest.raises(Boom):
        model.save_weights(path)
    assert path.read_bytes() == before and listing(tmp_path) == ["m.weights.h5"]


def test_a_failed_export_or_pack_keeps_the_previous_artifact(small, tmp_path, monkeypatch):
    model = trained_model(small)
    export.export_decoder(model, tmp_path / "d.onnx")
    export.export_decoder(model, tmp_path / "saved")
    onnx_before = (tmp_path / "d.onnx").read_bytes()
    saved_before = listing(tmp_path / "saved")
    presets.save(model, tmp_path / "preset")
    presets.pack(tmp_path / "preset", tmp_path / "p.tar.gz")
    archive_before = (tmp_path / "p.tar.gz").read_bytes()
    monkeypatch.setattr(export, "_check", raise_boom)
    for target in ("d.onnx", "saved"):
        with pytest.raises(Boom):
            export.export_decoder(model, tmp_path / target, overwrite=True)
    monkeypatch.setattr(presets.tarfile.TarFile, "addfile", raise_boom)
    with pytest.raises(Boom):
        presets.pack(tmp_path / "preset", tmp_path / "p.tar.gz")
    assert (tmp_path / "d.onnx").read_bytes() == onnx_before and listing(tmp_path / "saved") == saved_before
    assert (tmp_path / "p.tar.gz").read_bytes() == archive_before
    assert listing(tmp_path) == ["d.onnx", "p.tar.gz", "preset", "saved"]  # no temporary file or folder left


def test_replacing_a_folder_keeps_the_old_one_until_the_new_one_is_in_place(tmp_path, monkeypatch):
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "old.txt").write_text("old")
    (tmp_path / "staging").mkdir()
    (tmp_path / "staging" / "new.txt").write_text("new")
    real_replace = os.replace

    def failing_second_rename(src, dst):
        if str(src).endswith("staging"):
            raise OSError("killed between the renames")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_second_rename)
    with pytest.raises(OSError):
        files.replace_directory(tmp_path / "staging", tmp_path / "target")
    monkeypatch.undo()
    assert listing(tmp_path / "target") == ["old.txt"]  # put back
    files.replace_directory(tmp_path / "staging", tmp_path / "target")
    assert listing(tmp_path / "target") == ["new.txt"] and listing(tmp_path) == ["target"]


def test_keras_own_weights_suffix_survives_the_temporary_name(small, tmp_path):
    model = trained_model(small)
    model.save_weights(tmp_path / "model.weights.h5")  # Keras insists on the suffix: the temp name keeps it
    fresh = tiny_model("mmd", seed=3)
    fresh.load_weights(tmp_path / "model.weights.h5")
    np.testing.assert_array_equal(fresh.encode(small[0][:3]), model.encode(small[0][:3]))
    with pytest.raises(ValueError, match="weights.h5"):  # Keras's own message for another suffix
        model.save_weights(tmp_path / "model.h5")


def test_a_legacy_h5_path_is_refused_naming_the_keras_format(small, tmp_path):
    with pytest.raises(ValueError, match=r"native Keras format only.*\.keras"):
        trained_model(small).save(tmp_path / "m.h5")
    assert listing(tmp_path) == []


@pytest.mark.parametrize("name", ["mmd", "adversarial", *VARIANTS])
def test_keras_export_serves_every_trained_model(small, tmp_path, name):
    model = tiny_model(name) if name in ("mmd", "adversarial") else tiny_variant(name, regularizer="adversarial")
    labels = variant_labels(name, small[1], labeled_fraction=1) if model.uses_labels else None
    model.fit(small[0], labels, epochs=1, batch_size=64, verbose=0)
    x = small[0][:5]
    inputs = (x, labels[:5].astype(np.int32)) if name == "supervised" else x
    expected = keras.ops.convert_to_numpy(model(inputs))
    model.export(tmp_path / "served", verbose=False)
    loaded = tf.saved_model.load(str(tmp_path / "served"))  # keep a reference: its variables live with it
    np.testing.assert_allclose(np.asarray(loaded.serve(inputs)), expected, atol=1e-5)
    model.export(tmp_path / "served.onnx", format="onnx", verbose=False)
    session = onnxruntime.InferenceSession(str(tmp_path / "served.onnx"))
    feeds = dict(zip([i.name for i in session.get_inputs()], inputs if name == "supervised" else [x]))
    np.testing.assert_allclose(session.run(None, feeds)[0], expected, atol=1e-5)
    assert listing(tmp_path) == ["served", "served.onnx"]


def test_keras_export_serves_the_classifier(tmp_path):
    classifier = FashionClassifier()
    classifier.export(tmp_path / "served", verbose=False)
    x = np.random.default_rng(0).uniform(size=(3, 28, 28)).astype(np.float32)
    loaded = tf.saved_model.load(str(tmp_path / "served"))
    np.testing.assert_allclose(np.asarray(loaded.serve(x)), keras.ops.convert_to_numpy(classifier(x)), atol=1e-5)
