"""Decoder and encoder export: parity with Keras for every model type and both formats,
metadata that carries the prior, and clear errors that leave nothing behind."""

import json

import keras
import numpy as np
import onnx
import onnxruntime
import pytest
import tensorflow as tf

from aae_keras import export, models, priors
from conftest import VARIANTS, tiny_model, tiny_variant

BUILDERS = {
    "mmd": lambda: tiny_model("mmd"),
    "adversarial_gaussian_posterior": lambda: tiny_model("adversarial", posterior="gaussian"),
    "sample_mmd_swiss_roll": lambda: tiny_model("mmd", prior=priors.swiss_roll(), regularizer="sample_mmd"),
    **{name: (lambda name=name: tiny_variant(name)) for name in VARIANTS},
}


def decoder_feeds(model, class_input, n=9, seed=3):
    """ONNX feeds for `model`'s decoder (a batch size the export check does not use) and the
    images `model.decode` gives for them."""
    rng = np.random.default_rng(seed)
    feeds = {"z": rng.normal(size=(n, model.latent_dim)).astype("float32")}
    if not class_input:
        return feeds, model.decode(feeds["z"])
    feeds["y"] = np.eye(model.num_classes, dtype="float32")[rng.integers(model.num_classes, size=n)]
    return feeds, model.decode(feeds["z"], feeds["y"])


def onnx_metadata(path):
    return {p.key.removeprefix("aae_keras."): json.loads(p.value) for p in onnx.load(path).metadata_props}


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
    feeds, expected = decoder_feeds(model, class_input)
    z = feeds["z"]
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
    meta = onnx_metadata(tmp_path / "d.onnx")
    assert meta["latent_dim"] == 2 and meta["output_shape"] == [8, 8] and meta["outputs"] == ["images"]
    assert meta["model_class"] == "MMDAutoencoder" and meta["library_version"]
    assert meta["trained_dtype_policy"] == "float32"
    prior = priors.from_config(meta["prior"])  # the prior travels with the decoder
    np.testing.assert_allclose(priors.describe(prior)["means"], priors.describe(model.prior)["means"], atol=1e-6)
    roll = tiny_model("mmd", prior=priors.swiss_roll(), regularizer="sample_mmd")
    export.export_decoder(roll, tmp_path / "roll.onnx")
    assert onnx_metadata(tmp_path / "roll.onnx")["prior"]["kind"] == "swiss_roll"


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


def images(n, seed=4):
    return np.random.default_rng(seed).uniform(size=(n, 8, 8)).astype("float32")


@pytest.mark.parametrize("format", ["onnx", "tf_saved_model"])
def test_gaussian_posterior_encoder_exports_means_and_log_variances(tmp_path, format):
    model = tiny_model("adversarial", posterior="gaussian")
    path = tmp_path / ("encoder.onnx" if format == "onnx" else "encoder")
    info = export.export_encoder(model, path)
    x = images(9)
    if format == "onnx":
        session = onnxruntime.InferenceSession(str(path))
        assert [(o.name, o.shape) for o in session.get_outputs()] == [
            ("codes", ["batch", 2]),
            ("log_variances", ["batch", 2]),
        ]
        codes, log_variances = session.run(["codes", "log_variances"], {"x": x})
        metadata = onnx_metadata(path)
    else:
        loaded = tf.saved_model.load(str(path))
        result = loaded.serve(x)
        assert isinstance(result, dict), "the SavedModel returns {codes, log_variances}"
        codes, log_variances = np.asarray(result["codes"]), np.asarray(result["log_variances"])
        metadata = json.loads((path / export.METADATA_FILE).read_text())
    np.testing.assert_allclose(codes, model.encode(x), atol=1e-5)  # the means, as model.encode
    np.testing.assert_allclose(log_variances, np.asarray(model.encoder(x))[:, 2:], atol=1e-5)
    assert info["outputs"] == metadata["outputs"] == ["codes", "log_variances"]
    assert metadata["latent_dim"] == 2 and metadata["output_shape"] == [2]
    # deterministic encoders and all decoders keep their single output
    plain = tiny_model("mmd")
    assert export.export_encoder(plain, tmp_path / "plain.onnx")["outputs"] == ["codes"]
    assert export.export_decoder(model, tmp_path / "decoder.onnx")["metadata"]["outputs"] == ["images"]
    assert [o.name for o in onnxruntime.InferenceSession(str(tmp_path / "plain.onnx")).get_outputs()] == ["codes"]


def mixed_model(name, policy):
    """BUILDERS[name] under the (already set) mixed `policy`, called once, and its float32 twin."""
    model = BUILDERS[name]()
    model(images(4))
    assert model.decoder.output.dtype == policy.removeprefix("mixed_")  # really mixed
    keras.mixed_precision.set_global_policy("float32")
    twin = BUILDERS[name]()
    twin.set_weights(model.get_weights())
    keras.mixed_precision.set_global_policy(policy)
    return model, twin


def assert_close_to_mixed(got, mixed):
    """Within MIXED_TOLERANCE of the mixed-precision Keras output, relative to its largest value above 1."""
    assert np.max(np.abs(got - mixed)) <= export.MIXED_TOLERANCE * max(1.0, np.max(np.abs(mixed)))


@pytest.mark.parametrize("name", ["mmd", "adversarial_gaussian_posterior", "semi_supervised"])
def test_mixed_precision_model_exports_float32_onnx(tmp_path, mixed_policy, name):
    model, twin = mixed_model(name, mixed_policy)
    decoder = export.export_decoder(model, tmp_path / "decoder.onnx")
    encoder = export.export_encoder(model, tmp_path / "encoder.onnx")
    assert keras.config.dtype_policy().name == mixed_policy  # export leaves the caller's policy alone
    for info in (decoder, encoder):
        assert info["metadata"]["trained_dtype_policy"] == mixed_policy
        assert info["max_difference"] <= export.TOLERANCE
        assert 0 < info["mixed_precision_difference"] <= export.MIXED_TOLERANCE
    assert onnx_metadata(tmp_path / "decoder.onnx")["trained_dtype_policy"] == mixed_policy

    feeds, mixed_images = decoder_feeds(model, class_input=name == "semi_supervised")
    session = onnxruntime.InferenceSession(str(tmp_path / "decoder.onnx"))
    assert {v.type for v in [*session.get_inputs(), *session.get_outputs()]} == {"tensor(float)"}
    got = session.run(None, feeds)[0]
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, decoder_feeds(twin, class_input=name == "semi_supervised")[1], atol=1e-5)
    assert_close_to_mixed(got, mixed_images)

    session = onnxruntime.InferenceSession(str(tmp_path / "encoder.onnx"))
    assert {v.type for v in [*session.get_inputs(), *session.get_outputs()]} == {"tensor(float)"}
    x = images(9)
    got = session.run(None, {"x": x})
    assert [o.name for o in session.get_outputs()] == encoder["outputs"]
    np.testing.assert_allclose(np.concatenate(got, axis=1), np.asarray(twin.encoder(x)), atol=1e-5)
    assert_close_to_mixed(np.concatenate(got, axis=1), np.asarray(model.encoder(x)).astype("float32"))


def test_mixed_precision_model_exports_float32_saved_model(tmp_path, mixed_policy):
    model, twin = mixed_model("adversarial_gaussian_posterior", mixed_policy)
    info = export.export_encoder(model, tmp_path / "encoder")
    assert json.loads((tmp_path / "encoder" / export.METADATA_FILE).read_text())["trained_dtype_policy"] == mixed_policy
    loaded = tf.saved_model.load(str(tmp_path / "encoder"))
    x = images(9)
    result = loaded.serve(x)
    assert info["mixed_precision_difference"] <= export.MIXED_TOLERANCE
    assert {v.dtype for v in result.values()} == {tf.float32}
    np.testing.assert_allclose(result["codes"], twin.encode(x), atol=1e-5)
    np.testing.assert_allclose(result["log_variances"], np.asarray(twin.encoder(x))[:, 2:], atol=1e-5)
    assert_close_to_mixed(np.asarray(result["codes"]), model.encode(x).astype("float32"))
