import json
import math
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from aae_keras import cli, data, plots, priors

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY = ["--epochs", "2", "--hidden", "32,32", "--verbose", "0"]


def run(argv, capsys=None):
    """main(argv) in-process; returns (exit code, stdout, stderr)."""
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exit:
        code = exit.code
    out, err = capsys.readouterr() if capsys else ("", "")
    return code, out, err


def assert_png(path):
    assert pathlib.Path(path).read_bytes()[:8] == PNG_MAGIC


def console_script():
    """The installed `aae-keras` script (the venv's, next to this Python, first)."""
    script = shutil.which("aae-keras", path=os.path.dirname(sys.executable)) or shutil.which("aae-keras")
    assert script, "the aae-keras console script is not installed"
    return script


def run_script(argv, **kwargs):
    """The console script under `python -X importtime`: (result, seconds, modules it imported)."""
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-X", "importtime", console_script(), *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=300,
        **kwargs,
    )
    seconds = time.perf_counter() - start
    imported = set(re.findall(r"^import time:.*\| +([\w.]+)$", result.stderr, re.MULTILINE))
    result.stderr = "".join(line for line in result.stderr.splitlines(True) if not line.startswith("import time:"))
    return result, seconds, imported


def assert_fast_without_tensorflow(seconds, imported):
    assert not {m for m in imported if m.split(".")[0] in ("tensorflow", "keras", "tensorflow_probability")}
    assert seconds < 2.0, f"took {seconds:.1f} s"  # importing TensorFlow alone takes 5-8 s here


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny default-settings run shared by the tests that only read its outputs."""
    out = tmp_path_factory.mktemp("run") / "mmd"
    assert cli.main(["train", *TINY, "--out", str(out)]) == 0
    return out


def test_train_writes_valid_outputs(trained):
    assert sorted(p.name for p in trained.iterdir()) == ["latent.png", "metrics.json", "model.keras", "samples.png"]
    assert_png(trained / "latent.png")
    assert_png(trained / "samples.png")
    metrics = json.loads((trained / "metrics.json").read_text())
    for split in ("train", "test"):
        assert set(metrics[split]) == {"loss", "reconstruction", "regularizer"}
        assert all(math.isfinite(v) for v in metrics[split].values())
    for key in ("code_mmd2", "codes_near_mode", "seconds", "fit_seconds"):
        assert math.isfinite(metrics[key]), key
    assert metrics["code_mmd2_method"] == "closed_form"
    assert 0.0 <= metrics["codes_near_mode"] <= 1.0
    assert metrics["args"]["prior"] == "ring" and metrics["args"]["hidden"] == [32, 32]
    assert metrics["epochs"] == 2
    assert metrics["dataset"] == data.provenance(data.load("digits"))  # what it trained on, with its sha256
    model = keras.saving.load_model(trained / "model.keras")
    images = model.decode(np.zeros((3, 2), np.float32))
    assert images.shape == (3, 8, 8) and np.all((images >= 0) & (images <= 1))


def test_evaluate_prints_json_metrics(trained, capsys):
    code, out, _ = run(["evaluate", trained / "model.keras"], capsys)
    assert code == 0
    metrics = json.loads(out)
    assert metrics["dataset"] == "digits"  # read from metrics.json next to the model
    assert math.isfinite(metrics["test"]["reconstruction"]) and math.isfinite(metrics["code_mmd2"])
    assert 0.0 <= metrics["codes_near_mode"] <= 1.0


def write_fake_fashion_mnist(directory, n=4):
    """Four tiny 28x28 IDX files (big-endian magic and sizes, then uint8 data)."""
    rng = np.random.default_rng(0)
    for split in ("train", "t10k"):
        for kind, magic, array in (
            ("images-idx3", 2051, rng.integers(0, 256, (n, 28, 28))),
            ("labels-idx1", 2049, rng.integers(0, 10, n)),
        ):
            header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
            (directory / f"{split}-{kind}-ubyte").write_bytes(header + array.astype(np.uint8).tobytes())


def test_evaluate_rejects_a_dataset_of_another_shape(trained, tmp_path, capsys):
    write_fake_fashion_mnist(tmp_path)
    code, _, err = run(
        ["evaluate", trained / "model.keras", "--dataset", "fashion_mnist", "--data-dir", tmp_path], capsys
    )
    assert code == 2 and "(8, 8)" in err and "(28, 28)" in err and "--dataset" in err


def test_sample_writes_png_and_npy(trained, tmp_path, capsys):
    png, npy = tmp_path / "grid.png", tmp_path / "s.npy"
    assert run(["sample", trained / "model.keras", "--n", 10, "--out", png], capsys)[0] == 0
    assert_png(png)
    assert run(["sample", trained / "model.keras", "--n", 5, "--out", npy, "--seed", 3], capsys)[0] == 0
    first = np.load(npy)
    assert first.shape == (5, 8, 8) and np.all(np.isfinite(first))
    run(["sample", trained / "model.keras", "--n", 5, "--out", npy, "--seed", 3], capsys)
    np.testing.assert_allclose(np.load(npy), first)  # --seed makes samples reproducible
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # no temp files left


def test_adversarial_model_trains(tmp_path, capsys):
    out = tmp_path / "aae"
    code, _, err = run(["train", "--model", "adversarial", *TINY, "--out", out], capsys)
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"reconstruction", "discriminator_loss", "generator_loss"} <= set(metrics["test"])
    assert keras.saving.load_model(out / "model.keras").sample(2).shape == (2, 8, 8)


def test_sample_mmd_with_swiss_roll_prior(tmp_path, capsys):
    out = tmp_path / "swiss"
    code, _, err = run(["train", "--model", "sample_mmd", "--prior", "swiss_roll", *TINY, "--out", out], capsys)
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["code_mmd2_method"] == "sample" and "codes_near_mode" not in metrics
    assert_png(out / "latent.png")


def test_closed_form_mmd_with_swiss_roll_is_a_usage_error(tmp_path, capsys):
    code, _, err = run(["train", "--prior", "swiss_roll", "--out", tmp_path / "x"], capsys)
    assert code == 2 and "sample_mmd" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "flag, value", [("--prior", "banana"), ("--model", "vae"), ("--dataset", "cifar"), ("--strategy", "gpu")]
)
def test_unknown_choice_exits_2_naming_the_value(flag, value, capsys):
    code, _, err = run(["train", flag, value], capsys)
    assert code == 2
    assert "invalid choice" in err and repr(value) in err


def test_ring_needs_latent_dim_2(tmp_path, capsys):
    code, _, err = run(["train", "--latent-dim", "3", "--out", tmp_path / "x"], capsys)
    assert code == 2
    assert err.startswith("aae-keras: error:") and "--latent-dim 2" in err
    assert "Traceback" not in err and not (tmp_path / "x").exists()


def test_mixture_prior_in_3_dims(tmp_path, capsys):
    out = tmp_path / "mix3"
    code, _, err = run(["train", "--prior", "mixture", "--latent-dim", 3, *TINY, "--out", out], capsys)
    assert code == 0, err
    assert 0.0 <= json.loads((out / "metrics.json").read_text())["codes_near_mode"] <= 1.0


def test_refuses_non_empty_out_dir_without_overwrite(tmp_path, capsys):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    code, _, err = run(["train", *TINY, "--out", out], capsys)
    assert code == 2 and "not empty" in err and "--overwrite" in err
    assert sorted(os.listdir(out)) == ["notes.txt"]
    assert run(["train", *TINY, "--out", out, "--overwrite"], capsys)[0] == 0
    assert (out / "notes.txt").read_text() == "keep me" and (out / "model.keras").is_file()


def test_missing_data_dir_file_is_named(tmp_path, capsys):
    data_dir = tmp_path / "fashion"
    data_dir.mkdir()
    code, _, err = run(["train", "--dataset", "fashion_mnist", "--data-dir", data_dir, "--out", tmp_path / "x"], capsys)
    assert code == 2
    assert "train-images-idx3-ubyte" in err and "Traceback" not in err


def test_missing_model_file(tmp_path, capsys):
    for command in (["evaluate"], ["sample", "--out", tmp_path / "s.png"]):
        code, _, err = run([command[0], tmp_path / "nope.keras", *command[1:]], capsys)
        assert code == 2 and "nope.keras" in err and "does not exist" in err


def test_bad_hidden_sizes(capsys):
    code, _, err = run(["train", "--hidden", "32,x"], capsys)
    assert code == 2 and "comma-separated positive integers" in err


def test_plots_fallbacks(tmp_path):
    roll = priors.swiss_roll()  # no log_prob: histogram background
    plots.latent_scatter(np.asarray(roll.sample(50, seed=1)), np.arange(50) % 3, roll, tmp_path / "a.png")
    plots.latent_scatter(np.random.randn(40, 5), None, priors.gaussian(5), tmp_path / "b.png")
    plots.sample_grid(np.random.rand(7, 6, 5, 3), tmp_path / "c.png", rows=2)
    for name in "abc":
        assert_png(tmp_path / f"{name}.png")
    with pytest.raises(ValueError, match="shape"):
        plots.sample_grid(np.zeros((4, 8)), tmp_path / "d.png")


def test_installed_console_script_end_to_end(tmp_path):
    result = subprocess.run(
        [console_script(), "train", "--epochs", "1", "--hidden", "16", "--out", "tmp"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    out = tmp_path / "tmp"
    assert_png(out / "latent.png")
    assert_png(out / "samples.png")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["args"]["hidden"] == [16] and math.isfinite(metrics["test"]["loss"])
    assert keras.saving.load_model(out / "model.keras").decode(np.zeros((1, 2))).shape == (1, 8, 8)


@pytest.mark.parametrize(
    "model,extra,files,keys",
    [
        (
            "semi_supervised",
            ["--labels", "100", "--regularizer", "adversarial"],
            {"style_grid.png"},
            {"classification_error", "code_mmd2"},
        ),
        ("supervised", [], {"style_grid.png"}, {"code_mmd2"}),
        ("clustering", ["--clusters", "12"], {"clusters.png"}, {"cluster_accuracy", "nmi"}),
        ("dim_reduction", ["--labels", "100"], {"clusters.png", "latent.png"}, {"cluster_accuracy"}),
        ("label_conditioned", ["--labels", "300"], {"latent.png"}, {"codes_on_class_component"}),
    ],
)
def test_train_variants(tmp_path, capsys, model, extra, files, keys):
    out = tmp_path / model
    code, stdout, err = run(["train", "--model", model, *extra, *TINY, "--out", out], capsys)
    assert code == 0, err
    written = {p.name for p in out.iterdir()}
    assert {"model.keras", "metrics.json", "samples.png"} | files <= written
    for name in written - {"model.keras", "metrics.json"}:
        assert_png(out / name)
    results = json.loads((out / "metrics.json").read_text())
    assert keys <= set(results) and all(math.isfinite(results[k]) for k in keys)
    loaded = keras.saving.load_model(out / "model.keras")
    assert type(loaded).__name__.lower().startswith(model.split("_")[0])
    code, stdout, err = run(["evaluate", out / "model.keras"], capsys)
    assert code == 0 and keys <= set(json.loads(stdout)), err


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--model", "semi_supervised", "--labels", "5000"], "--labels 5000 is more than the 1437 training examples"),
        (["--model", "clustering", "--labels", "10"], "--labels does not apply to clustering"),
        (["--model", "mmd", "--regularizer", "adversarial"], "apply to the paper's variants"),
        (["--model", "supervised", "--clusters", "3"], "--clusters applies to clustering and dim_reduction"),
        (["--model", "label_conditioned", "--prior", "gaussian"], "needs a mixture prior"),
    ],
)
def test_variant_argument_errors(tmp_path, capsys, argv, message):
    code, _, err = run(["train", *argv, *TINY, "--out", tmp_path / "run"], capsys)
    assert code == 2 and message in err, err
    assert not (tmp_path / "run").exists()  # nothing written for a bad command


def test_export_command(trained, tmp_path, capsys):
    code, out, err = run(["export", trained / "model.keras", "--out", tmp_path / "decoder.onnx"], capsys)
    assert code == 0 and "largest difference from Keras" in out, err
    assert onnx_inputs(tmp_path / "decoder.onnx") == ["z"]
    code, out, err = run(
        [
            "export",
            trained / "model.keras",
            "--part",
            "encoder",
            "--format",
            "saved_model",
            "--out",
            tmp_path / "encoder",
        ],
        capsys,
    )
    assert code == 0 and (tmp_path / "encoder" / "saved_model.pb").exists(), err
    code, _, err = run(["export", trained / "model.keras", "--out", tmp_path / "decoder.onnx"], capsys)
    assert code == 2 and "overwrite" in err


def onnx_inputs(path):
    import onnxruntime

    return [i.name for i in onnxruntime.InferenceSession(str(path)).get_inputs()]


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["train", "--help"], ["train", "--model", "nope"], ["train", "--latent-dim", "3"], ["evaluate"]],
    ids=" ".join,
)
def test_help_and_usage_errors_answer_without_tensorflow(argv, tmp_path):
    result, seconds, imported = run_script(argv, cwd=tmp_path)
    assert result.returncode == (0 if "--help" in argv else 2), result.stderr
    assert ("usage: aae-keras" in result.stdout) if "--help" in argv else ("error:" in result.stderr)
    assert "Traceback" not in result.stderr
    assert_fast_without_tensorflow(seconds, imported)


def test_import_aae_keras_registers_the_models(trained, tmp_path):
    # a bare `import aae_keras` is enough for keras.saving.load_model (item 14 of the issue)
    code = "import sys, aae_keras, keras; print(type(keras.saving.load_model(sys.argv[1])).__name__)"
    result = subprocess.run(
        [sys.executable, "-c", code, str(trained / "model.keras")], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0 and result.stdout.split()[-1] == "MMDAutoencoder", result.stderr[-2000:]
    # the console script skips that at import (for a fast --help) and registers in the commands
    result = subprocess.run(
        [console_script(), "sample", trained / "model.keras", "--n", "3", "--out", "s.npy"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0 and np.load(tmp_path / "s.npy").shape == (3, 8, 8), result.stderr[-2000:]


def unwritable_dirs():
    """Directories no file can be created in, even as root (tests run as root in CI)."""
    cases = [pytest.param("/proc", ["--overwrite"], id="proc")]
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        cases.append(pytest.param("read-only", [], id="chmod-555"))
    return cases


@pytest.mark.parametrize("out, extra", unwritable_dirs())
def test_unwritable_out_fails_before_training(out, extra, tmp_path):
    if out == "read-only":
        (tmp_path / out).mkdir(mode=0o555)
        out = tmp_path / out / "run"
    result, seconds, imported = run_script(
        ["train", "--epochs", "1", "--hidden", "8", "--out", out, *extra], cwd=tmp_path
    )
    assert result.returncode == 2 and "Epoch" not in result.stdout
    assert result.stderr.startswith(f"aae-keras: error: cannot write --out {str(out)!r}")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert_fast_without_tensorflow(seconds, imported)  # refused before TensorFlow, data and training


def test_sample_into_an_unwritable_place_names_the_users_path(trained, tmp_path, capsys):
    for out in (tmp_path / "missing" / "grid.png", tmp_path / "missing" / "s.npy", "/proc/grid.png"):
        code, _, err = run(["sample", trained / "model.keras", "--out", out], capsys)
        assert code == 2 and f"--out {str(out)!r}" in err and ".tmp" not in err, err
    with pytest.raises(OSError, match=re.escape(str(tmp_path / "missing" / "grid.png"))) as error:
        plots.sample_grid(np.zeros((4, 8, 8)), tmp_path / "missing" / "grid.png")
    assert ".tmp" not in str(error.value)


def test_unreadable_model_files_get_a_clear_error(trained, tmp_path, capsys):
    whole = (trained / "model.keras").read_bytes()
    broken = {"empty.keras": b"", "truncated.keras": whole[: len(whole) // 2], "notes.txt": b"not a model"}
    for name, content in broken.items():
        (tmp_path / name).write_bytes(content)
        for command in (
            ["evaluate"],
            ["sample", "--out", tmp_path / "s.png"],
            ["export", "--out", tmp_path / "d.onnx"],
        ):
            code, _, err = run([command[0], tmp_path / name, *command[1:]], capsys)
            assert code == 2 and f"MODEL {str(tmp_path / name)!r} is not a readable .keras model" in err, err
            state = {
                "empty.keras": "the file is empty)",
                "truncated.keras": "the file is truncated: a .keras zip",
                "notes.txt": "the file is not a zip archive",
            }[name]
            assert state in err and "File not found" not in err, err
    missing = tmp_path / "nowhere" / "model.h5"
    code, _, err = run(["evaluate", missing], capsys)
    assert code == 2 and f"MODEL {str(missing)!r} does not exist: it is neither a file nor a preset" in err, err


@pytest.mark.parametrize("model", ["mmd", "adversarial"])
def test_diverging_training_stops_without_writing_a_model(model, tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, err = run(
        ["train", "--model", model, "--lr", "1e15", "--epochs", "3", "--hidden", "16", "--verbose", "0", "--out", out],
        capsys,
    )
    assert code == 2 and "training diverged" in err and "--lr" in err, err
    assert re.search(r"(at epoch \d+, batch \d+|after epoch \d+)", err) and len(err.strip().splitlines()) == 1
    assert not out.exists()  # no model.keras, metrics.json, plots or backup to resume from
