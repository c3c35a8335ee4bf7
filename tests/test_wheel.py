"""The wheel: what `pip install aae-keras` gives a user outside the source tree, offline: the
package, its zoo, the command line and the deployment kit (`aae_runtime`, `aae-keras-decode`)."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from aae_keras import presets

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = "digits_mmd_mog10"
WHEEL_BUDGET = 60e6  # bytes; the zoo is most of it


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel built offline from a copy of the source tree (so no build/ or egg-info lands in
    the checkout), and the folder it is installed into with `pip install --target`."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for name in ("aae_keras", "zoo", "export"):
        shutil.copytree(
            ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "archives")
        )
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    build = subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", root / "dist", source],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-3000:]
    [path] = (root / "dist").glob("aae_keras-*.whl")
    site = root / "site"
    install = subprocess.run(
        [*pip, "install", "--no-deps", "--no-index", "--target", site, path],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    return path, site


def run_installed(args, site, cwd, **kwargs):
    """A real subprocess that sees the installed copy (PYTHONPATH) and not the checkout."""
    env = {**os.environ, "PYTHONPATH": str(site), "AAE_KERAS_HOME": str(cwd / "cache")}
    env.pop("AAE_KERAS_ZOO_URL", None)
    run = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300, **kwargs
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    return run


def test_the_wheel_holds_the_package_the_zoo_and_the_kit(wheel):
    path, site = wheel
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        entry_points = archive.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    modules = {
        p.relative_to(ROOT).as_posix() for p in (ROOT / "aae_keras").rglob("*.py") if "__pycache__" not in p.parts
    }
    assert modules <= names, f"missing from the wheel (list new subpackages in pyproject.toml): {modules - names}"
    assert "aae_runtime.py" in names and not any(n.endswith("decode.py") for n in names)
    zoo = {
        f"aae_keras/zoo/{p.relative_to(presets.ZOO_DIR).as_posix()}"
        for p in [presets.ZOO_DIR / "manifest.json", *(presets.ZOO_DIR / "recipes").glob("*.json")]
    }
    for name, entry in presets.manifest()["presets"].items():
        if entry.get("shipped"):
            zoo |= {f"aae_keras/zoo/presets/{name}/{f}" for f in entry["files"]}
    assert zoo <= names, zoo - names
    assert not any("/archives/" in n for n in names)
    assert "aae-keras = aae_keras.cli:main" in entry_points and "aae-keras-decode = aae_runtime:main" in entry_points
    assert path.stat().st_size < WHEEL_BUDGET
    print(f"wheel {path.name}: {path.stat().st_size / 1e6:.1f} MB")
    assert {"aae-keras", "aae-keras-decode"} <= set(os.listdir(site / "bin"))


def test_zoo_list_outside_the_source_tree(wheel, tmp_path):
    _, site = wheel
    run = run_installed([sys.executable, "-m", "aae_keras.cli", "zoo", "list"], site, tmp_path)
    rows = {line.split()[0]: line for line in run.stdout.splitlines()[1:]}
    assert set(rows) == set(presets.list()) and "shipped" in rows[SHIPPED]


def test_presets_sample_export_and_decode_outside_the_source_tree(wheel, tmp_path):
    _, site = wheel
    code = f"""
import json, aae_keras, aae_runtime
from aae_keras import cli, models, presets
model = models.MMDAutoencoder.from_preset({SHIPPED!r})
assert cli.main(['sample', {SHIPPED!r}, '--n', '9', '--out', 'samples.png']) in (0, None)
assert cli.main(['export', {SHIPPED!r}, '--out', 'decoder.onnx']) in (0, None)
print(json.dumps({{"aae_keras": aae_keras.__file__, "aae_runtime": aae_runtime.__file__,
                  "zoo": str(presets.ZOO_DIR), "preset": model.preset["directory"],
                  "shape": list(model.sample(4).shape)}}))
"""
    report = json.loads(run_installed([sys.executable, "-c", code], site, tmp_path).stdout.strip().splitlines()[-1])
    for key in ("aae_keras", "aae_runtime", "zoo", "preset"):
        assert Path(report[key]).resolve().is_relative_to(site.resolve()), (key, report[key])
    assert report["shape"] == [4, 8, 8]
    assert (tmp_path / "samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (tmp_path / "cache").exists()  # the shipped preset needed no download

    # the deployment kit: the console script, `python -m aae_runtime`, and the module itself
    run_installed([site / "bin" / "aae-keras-decode", "decoder.onnx", "--n", "16", "--out", "grid.png"], site, tmp_path)
    assert (tmp_path / "grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    run_installed(
        [sys.executable, "-m", "aae_runtime", "decoder.onnx", "--n", "5", "--out", "images.npy"], site, tmp_path
    )
    assert np.load(tmp_path / "images.npy").shape == (5, 8, 8)
    kit = """
import json, sys
from aae_runtime import Decoder
images = Decoder('decoder.onnx').decode(Decoder('decoder.onnx').sample_latents(3, seed=0))
print(json.dumps({"shape": list(images.shape),
                  "loaded": sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras', 'aae_keras'})}))
"""
    report = json.loads(run_installed([sys.executable, "-c", kit], site, tmp_path).stdout.strip().splitlines()[-1])
    assert report == {"shape": [3, 8, 8], "loaded": []}


def test_every_shipped_preset_loads_and_verifies_outside_the_source_tree(wheel, tmp_path):
    _, site = wheel
    code = """
import json, os
from aae_keras import presets
report = {}
for name in presets.list():
    if not presets.info(name).get("shipped"):
        continue
    model = presets.load(name)  # checks every file's sha256
    with open(os.path.join(model.preset["directory"], presets.METADATA_FILE)) as f:
        check = json.load(f)["check"]
    report[name] = {"directory": model.preset["directory"], "difference": presets.verify_check(model, check),
                    "class": type(model).__name__}
print(json.dumps(report))
"""
    report = json.loads(run_installed([sys.executable, "-c", code], site, tmp_path).stdout.strip().splitlines()[-1])
    shipped = {name for name, entry in presets.manifest()["presets"].items() if entry.get("shipped")}
    assert set(report) == shipped and len(shipped) >= 7
    for name, row in report.items():
        assert Path(row["directory"]).resolve().is_relative_to(site.resolve()), (name, row)
        assert row["class"] == presets.info(name)["model_class"] and row["difference"] <= presets.CHECK_TOLERANCE
    assert not (tmp_path / "cache").exists()
