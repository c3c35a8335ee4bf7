"""Decoder and encoder export: parity with Keras for every model type and both formats,
metadata that carries the prior, and clear errors that leave nothing behind."""

import json

import keras
import numpy as np
import onnx
import onnxruntime
import pytest
import tensorflow as tf
from conftest import VARIANTS, tiny_model, tiny_variant

from aae_keras import export, models, priors

BUILDERS = {
    "mmd": lambda: tiny_model("mmd"),
    "adversarial_gaussian_posterior": lambda: tiny_model("adversarial", posterior="gaussian"),
    "sample_mmd_swiss_roll": lambda: tiny_model("mmd", prior=priors.swiss_roll(), regularizer="sample_mmd"),
    **{name: (lambda name=name: tiny_variant(name)) for name in VARIANTS},
}


@pytest.mark.parametrize("format", ["onnx", "tf_saved_model"])
@pytest.mark.parametrize("name", list(BUILDERS))
def test_export_matches_keras(tmp_path, name, format):
    model = BUILDERS[name]()
    suffix = ".onnx" if format == "onnx" else ""
    decoder = export.export_decoder(model, tmp_path / f"decoder{suffix}")
    encoder = export.export_encoder(model, tmp_path / f"encoder{suffix}", format=format)
    assert decoder["format"] == encoder["format"] == format
    assert decoder["max_difference"] <= export.TOLERANCE and encoder["max_difference"] <= export.TOLERANCE
    class_input = name in ("supervised", "semi_supervised", "clustering")
    assert decoder["inputs"] == (["z", "y"] if class_input else ["z"]) and encoder["inputs"] == ["x"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"decoder{suffix}", f"encoder{suffix}"])

    # run the artifact independently on a batch size the export check did not use
    rng = np.random.default_rng(3)
    z = rng.normal(size=(9, model.latent_dim)).astype("float32")
    feeds = {"z": z}
    if class_input:
        feeds["y"] = np.eye(model.num_classes, dtype="float32")[rng.integers(model.num_classes, size=9)]
        expected = model.decode(z, feeds["y"])
    else:
        expected = model.decode(z)
    if format == "onnx":
        session = onnxruntime.InferenceSession(str(tmp_path / "decoder.onnx"))
        assert [i.name for i in session.get_inputs()] == list(feeds)
        assert session.get_inputs()[0].shape[0] == "batch"
        got = session.run(None, feeds)[0]
    else:
        loaded = tf.saved_model.load(str(tmp_path / "decoder"))
        got = np.asarray(loaded.serve(list(feeds.values()) if class_input else z))
        assert json.loads((tmp_path / "decoder" / export.METADATA_FILE).read_text())["part"] == "decoder"
    np.testing.assert_allclose(got, expected, atol=export.TOLERANCE)


def test_onnx_metadata_describes_the_prior(tmp_path):
    model = tiny_model("mmd", prior=priors.gaussian_mixture(10, 2))
    export.export_decoder(model, tmp_path / "d.onnx")
    meta = {p.key: json.loads(p.value) for p in onnx.load(tmp_path / "d.onnx").metadata_props}
    assert meta["aae_keras.latent_dim"] == 2 and meta["aae_keras.output_shape"] == [8, 8]
    assert meta["aae_keras.model_class"] == "MMDAutoencoder" and meta["aae_keras.library_version"]
    prior = priors.from_config(meta["aae_keras.prior"])  # the prior travels with the decoder
    np.testing.assert_allclose(priors.describe(prior)["means"], priors.describe(model.prior)["means"], atol=1e-6)
    roll = tiny_model("mmd", prior=priors.swiss_roll(), regularizer="sample_mmd")
    export.export_decoder(roll, tmp_path / "roll.onnx")
    meta = {p.key: json.loads(p.value) for p in onnx.load(tmp_path / "roll.onnx").metadata_props}
    assert meta["aae_keras.prior"]["kind"] == "swiss_roll"


def test_export_errors_leave_nothing_behind(tmp_path):
    model = tiny_model("mmd")
    export.export_decoder(model, tmp_path / "d.onnx")
    before = (tmp_path / "d.onnx").read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export.export_decoder(model, tmp_path / "d.onnx")
    assert (tmp_path / "d.onnx").read_bytes() == before
    export.export_decoder(model, tmp_path / "d.onnx", overwrite=True)
    with pytest.raises(ValueError, match="Unknown export format 'tflite'"):
        export.export_decoder(model, tmp_path / "x.onnx", format="tflite")
    with pytest.raises(ValueError, match="ONNX files end in .onnx"):
        export.export_decoder(model, tmp_path / "saved", format="onnx")
    unbuilt = models.MMDAutoencoder(
        keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(2)]),
        keras.Sequential([keras.layers.Dense(64), keras.layers.Reshape((8, 8))]),
        priors.gaussian(2),
    )
    with pytest.raises(ValueError, match="not built"):
        export.export_decoder(unbuilt, tmp_path / "u.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.onnx"]  # no temp files left
