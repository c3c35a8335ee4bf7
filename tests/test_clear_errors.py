"""The last unclear errors (the README's Reliability section): every shipped preset exports, a
non-autoencoder says what it is, damaged files and presets, an unreachable TPU, an unknown flag
before the command, and NaN or inf given to encode, decode, predict or the deployment kit."""

import json
import os
import shutil

import numpy as np
import pytest

import aae_runtime
from aae_keras import distribute, export, models, presets
from conftest import run_cli as run
from conftest import tiny_model, tiny_variant

AUTOENCODERS = [
    name
    for name, entry in presets.manifest()["presets"].items()
    if entry.get("shipped") and entry.get("model_class") != "FashionClassifier"
]


@pytest.mark.parametrize("name", AUTOENCODERS)
def test_every_shipped_preset_exports_its_encoder_and_decoder(name, tmp_path):
    model = presets.load(name)
    for part in ("encoder", "decoder"):
        write = export.export_encoder if part == "encoder" else export.export_decoder
        for path in (tmp_path / f"{part}.onnx", tmp_path / f"{part}_saved_model"):
            info = write(model, path)
            assert info["relative_difference"] <= export.TOLERANCE
            assert info["max_difference"] >= info["relative_difference"]  # both figures reported


def test_the_tolerance_is_relative_to_the_outputs_scale(tmp_path, capsys):
    # logits of 77: float32 rounding is about 1e-4 absolute, 2e-6 relative
    code, out, err = run(
        ["export", "fashion_mnist_semisup100_mmd", "--part", "encoder", "--out", tmp_path / "e.onnx"], capsys
    )
    assert code == 0 and "relative to the outputs' scale" in out, err


def test_exporting_the_classifier_says_what_it_is(tmp_path, capsys):
    code, _, err = run(["export", "fashion_mnist_classifier", "--out", tmp_path / "d.onnx"], capsys)
    assert code == 2 and "FashionClassifier is not an autoencoder, so it has no decoder" in err, err
    assert "model.export" in err and "Traceback" not in err and os.listdir(tmp_path) == []


def test_damaged_model_files_name_what_is_wrong(tmp_path):
    model = tiny_model("mmd")
    model.save(tmp_path / "m.keras")
    whole = (tmp_path / "m.keras").read_bytes()
    cases = {
        "empty.keras": (b"", "the file is empty"),
        "truncated.keras": (whole[:1000], "the file is truncated"),
        "notes.keras": (b"some notes", "not a zip archive"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError, match=message):
            models.load_model(tmp_path / name)
    with pytest.raises(ValueError, match="does not exist"):
        models.load_model(tmp_path / "nowhere.keras")
    assert type(models.load_model(tmp_path / "m.keras")) is models.MMDAutoencoder


def test_a_preset_with_a_malformed_config_is_a_preset_error(tmp_path):
    shutil.copytree(presets.ZOO_DIR / "presets" / "digits_mmd_mog10", tmp_path / "p")
    config_path = tmp_path / "p" / presets.CONFIG_FILE
    config = json.loads(config_path.read_text())
    del config["config"]["encoder"]["config"]["layers"][1]["name"]  # a layer without a name
    config_path.write_text(json.dumps(config))
    metadata_path = tmp_path / "p" / presets.METADATA_FILE  # hashes updated: the damage is in the content
    metadata = json.loads(metadata_path.read_text())
    metadata["files"][presets.CONFIG_FILE] = presets.file_record(config_path)
    metadata_path.write_text(json.dumps(metadata))
    with pytest.raises(presets.PresetError, match=r"config.json does not describe a MMDAutoencoder \(KeyError"):
        presets.load(tmp_path / "p")


def test_an_unreachable_tpu_says_how_to_train_without_it(monkeypatch):
    monkeypatch.setenv("TPU_NAME", "nonsense")
    with pytest.raises(
        RuntimeError, match=r"TPU named by TPU_NAME \('nonsense'\) could not be reached.*--strategy none"
    ):
        distribute.get_strategy("auto")


@pytest.mark.parametrize("argv", [["--badflag"], ["--badflag", "train"], ["-x"]])
def test_an_unknown_flag_before_the_command_is_named(argv, capsys):
    code, _, err = run(argv, capsys)
    assert code == 2 and f"unrecognized argument {argv[0]!r}" in err and "COMMAND first" in err, err


def test_nan_and_inf_are_refused_with_the_first_bad_row(digits, tmp_path):
    model = tiny_model("mmd")
    x = digits.x_train[:6].copy()
    x[4, 1, 2] = np.nan
    for call in (model.encode, model.predict):
        with pytest.raises(ValueError, match=r"non-finite values.*\(row 4\)"):
            call(x)
    z = np.zeros((5, 2), np.float32)
    z[2, 1] = np.inf
    with pytest.raises(ValueError, match=r"decode: the input contains 1 non-finite.*\(row 2\)"):
        model.decode(z)
    supervised = tiny_variant("supervised")
    with pytest.raises(ValueError, match=r"\(row 2\)"):
        supervised.decode(z, np.zeros(5, int))
    semi = tiny_variant("semi_supervised")
    with pytest.raises(ValueError, match=r"\(row 4\)"):
        semi.classify(x)
    export.export_decoder(model, tmp_path / "d.onnx")
    decoder = aae_runtime.Decoder(str(tmp_path / "d.onnx"))
    with pytest.raises(ValueError, match=r"Latents must be finite: 1 values are NaN or inf, first in row 2"):
        decoder.decode(z)
    assert np.isfinite(decoder.decode(np.zeros((2, 2), np.float32))).all()
