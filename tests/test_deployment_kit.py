"""The deployment kit in export/ runs a decoder with onnxruntime and numpy only: tested in a
subprocess in which importing TensorFlow, Keras or TFP raises."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from aae_keras import export, priors
from conftest import tiny_model, tiny_variant

KIT = Path(__file__).resolve().parents[1] / "export"
BLOCKED = ("tensorflow", "keras", "tf_keras", "tensorflow_probability")
PRELUDE = f"""
import importlib.abc, json, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split('.')[0] in {BLOCKED!r}:
            raise ImportError('blocked in this test: ' + name)
sys.meta_path.insert(0, Block())
sys.path.insert(0, {str(KIT)!r})
try:
    import tensorflow
except ImportError:
    pass
else:
    raise AssertionError('tensorflow was importable')
"""
EPILOGUE = f"""
loaded = sorted({{m.split('.')[0] for m in sys.modules}} & set({BLOCKED!r}))
print(json.dumps({{"blocked_modules_loaded": loaded}}))
"""


def run_kit(code, cwd):
    env = {**os.environ, "PYTHONPATH": ""}
    run = subprocess.run(
        [sys.executable, "-c", PRELUDE + code + EPILOGUE], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["blocked_modules_loaded"] == []
    return run


def test_kit_decodes_prior_samples_without_tensorflow(tmp_path):
    model = tiny_model("mmd", prior=priors.gaussian_mixture(10, 2, radius=4.0, scale=0.5))
    export.export_decoder(model, tmp_path / "decoder.onnx")
    run_kit(
        """
import numpy as np
from aae_runtime import Decoder, write_npy
import decode
d = Decoder('decoder.onnx')
z = d.sample_latents(20000, seed=1)
write_npy(z, 'z.npy'); write_npy(d.decode(z[:300], batch_size=64), 'images.npy')
assert decode.main(['decoder.onnx', '--n', '16', '--out', 'grid.png']) == 0
assert decode.main(['decoder.onnx', '--n', '50', '--class', '3', '--out', 'three.npy']) == 0
""",
        tmp_path,
    )
    z = np.load(tmp_path / "z.npy")
    # the latents follow the prior in the metadata: mean ~ 0, E||z||^2 = 4^2 + 2 * 0.5^2
    assert np.abs(z.mean(0)).max() < 0.1 and np.mean(np.sum(z**2, 1)) == pytest.approx(16.5, rel=0.02)
    means = priors.describe(model.prior)["means"]
    nearest = np.argmin(np.linalg.norm(z[:, None] - means[None], axis=-1), axis=1)
    assert np.bincount(nearest, minlength=10).min() > 1700  # every mode about 1/10
    np.testing.assert_allclose(np.load(tmp_path / "images.npy"), model.decode(z[:300]), atol=1e-5)
    assert (tmp_path / "grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    three = np.load(tmp_path / "three.npy")
    assert three.shape == (50, 8, 8)


def test_kit_class_decoder_and_errors(tmp_path):
    model = tiny_variant("supervised")
    export.export_decoder(model, tmp_path / "decoder.onnx")
    export.export_encoder(model, tmp_path / "encoder.onnx")
    bare = onnx.load(tmp_path / "decoder.onnx")
    del bare.metadata_props[:]
    onnx.save(bare, tmp_path / "bare.onnx")
    run = run_kit(
        """
import numpy as np
from aae_runtime import Decoder, write_npy
d = Decoder('decoder.onnx')
z = d.sample_latents(8, seed=0)
write_npy(z, 'z.npy'); write_npy(d.decode(z, np.arange(8) % 10), 'images.npy')
# the batch in pieces of 3, 3 and 2 rows on 2 threads gives the same images as one run
split = Decoder('decoder.onnx', threads=2, rows_per_run=3).decode(z, np.arange(8) % 10)
assert np.allclose(split, Decoder('decoder.onnx', threads=1).decode(z, np.arange(8) % 10), rtol=0, atol=1e-6)
for call, expected in [(lambda: d.decode(np.zeros((3, 5))), 'shape (n, 2)'),
                       (lambda: d.decode(z), 'pass y'),
                       (lambda: Decoder('bare.onnx'), 'no aae-keras metadata'),
                       (lambda: Decoder('encoder.onnx'), 'not a decoder')]:
    try:
        call()
    except ValueError as error:
        assert expected in str(error), error
        print('ok:', error)
    else:
        raise AssertionError('no error for ' + expected)
""",
        tmp_path,
    )
    assert run.stdout.count("ok:") == 4
    z = np.load(tmp_path / "z.npy")
    np.testing.assert_allclose(np.load(tmp_path / "images.npy"), model.decode(z, np.arange(8) % 10), atol=1e-5)


def test_kit_samples_the_map_of_a_dim_reduction_decoder(tmp_path):
    model = tiny_variant("dim_reduction")
    export.export_decoder(model, tmp_path / "decoder.onnx")
    run_kit(
        """
import numpy as np
from aae_runtime import Decoder, write_npy
d = Decoder('decoder.onnx')
z = d.sample_latents(10000, seed=0)
write_npy(z, 'map.npy'); write_npy(d.decode(z[:16]), 'images.npy')
write_npy(d.sample_latents(2000, seed=1, component=3), 'three.npy')
""",
        tmp_path,
    )
    heads = np.asarray(model.heads)
    variance = np.asarray(priors.describe(model.prior)["variances"])[0]
    three = np.load(tmp_path / "three.npy")
    # cluster 3: its head plus a sample of the style prior (mean 0, the prior's variance)
    np.testing.assert_allclose(three.mean(0), heads[3], atol=0.1)
    np.testing.assert_allclose(three.var(0), variance, rtol=0.1)
    # all clusters: the equal-weight mixture of the heads
    mapped = np.load(tmp_path / "map.npy")
    np.testing.assert_allclose(mapped.mean(0), heads.mean(0), atol=0.25)
    np.testing.assert_allclose(mapped.var(0), heads.var(0) + variance, rtol=0.1)
    np.testing.assert_allclose(np.load(tmp_path / "images.npy"), model.decode(mapped[:16]), atol=1e-5)


# ------------------------------------------------------------------------------ bad input: one line each
@pytest.fixture(scope="module")
def decoder_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("kit") / "decoder.onnx"
    export.export_decoder(tiny_model("mmd"), path)
    return path


def run_decode(args, cwd):
    """`python export/decode.py ARGS` in a real subprocess: (exit code, stdout, stderr)."""
    run = subprocess.run(
        [sys.executable, str(KIT / "decode.py"), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": ""},
        timeout=120,
    )
    return run.returncode, run.stdout, run.stderr


def assert_one_line_error(code, err, *expected):
    assert code == 2 and "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("aae-keras-decode: error: "), err
    for text in expected:
        assert text in last, err


def test_files_that_are_not_onnx_models_are_refused(decoder_file, tmp_path):
    (tmp_path / "notes.onnx").write_text("these are not the weights you are looking for\n")
    data = decoder_file.read_bytes()
    (tmp_path / "truncated.onnx").write_bytes(data[: len(data) // 2])
    for name in ("notes.onnx", "truncated.onnx"):
        code, _, err = run_decode([name, "--out", "grid.png"], tmp_path)
        assert_one_line_error(code, err, f"{name} is not an ONNX model", "aae-keras export MODEL --out decoder.onnx")
    code, _, err = run_decode(["missing.onnx"], tmp_path)
    assert_one_line_error(code, err, "missing.onnx does not exist", "aae-keras export")
    assert sorted(os.listdir(tmp_path)) == ["notes.onnx", "truncated.onnx"]  # no output, no temp files
    run = run_kit(
        """
from aae_runtime import Decoder
for path, error in [('notes.onnx', ValueError), ('truncated.onnx', ValueError), ('missing.onnx', FileNotFoundError)]:
    try:
        Decoder(path)
    except error as e:
        print('ok:', e)
    else:
        raise AssertionError(path)
""",
        tmp_path,
    )
    assert run.stdout.count("ok:") == 3 and run.stdout.count("not an ONNX model") == 2


@pytest.mark.parametrize(
    "args, option",
    [
        (["--n", "0"], "--n"),
        (["--n", "-3"], "--n"),
        (["--n", "many"], "--n"),
        (["--batch-size", "0"], "--batch-size"),
        (["--threads", "0"], "--threads"),
        (["--seed", "-1"], "--seed"),
    ],
)
def test_counts_below_one_are_usage_errors(decoder_file, tmp_path, args, option):
    code, _, err = run_decode([decoder_file, *args, "--out", "grid.png"], tmp_path)
    assert code == 2 and "Traceback" not in err and err.startswith("usage: aae-keras-decode"), err
    assert f"argument {option}: must be a whole number of at least" in err.strip().splitlines()[-1]
    assert os.listdir(tmp_path) == []


def test_an_unwritable_out_path_is_named(decoder_file, tmp_path):
    (tmp_path / "a_file").write_text("")
    for out in (tmp_path / "no_such_folder" / "grid.png", tmp_path / "a_file" / "images.npy"):
        code, _, err = run_decode([decoder_file, "--n", "4", "--out", out], tmp_path)
        assert_one_line_error(code, err, f"cannot write {out}:", "folder exists")
        assert ".aae_runtime-" not in err and "/tmp" not in err.replace(str(tmp_path), "")
    assert os.listdir(tmp_path) == ["a_file"]
    code, out, err = run_decode([decoder_file, "--n", "4", "--out", tmp_path / "grid.png"], tmp_path)
    assert code == 0, err
    assert sorted(os.listdir(tmp_path)) == ["a_file", "grid.png"]
