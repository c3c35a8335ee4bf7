"""`aae-keras zoo list | info | download | build` and preset handles in the other commands."""

import json
import os
import subprocess
import sys
import time

import onnx
import pytest

from aae_keras import presets, recipes
from conftest import http_server
from conftest import run_cli as run

DIGITS = "digits_mmd_mog10"
FASHION = presets.ZOO_DIR.parent.parent / "shared" / "data" / "fashion-mnist"


def test_zoo_list_shows_names_sizes_and_metrics(capsys):
    code, out, _ = run(["zoo", "list"], capsys)
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert set(rows) == set(presets.list())
    entry = presets.info(DIGITS)
    assert f"{entry['size'] / 1e6:.1f} MB" in rows[DIGITS] and "shipped" in rows[DIGITS]
    assert f"codes_near_mode {entry['metrics']['codes_near_mode']:.4g}" in rows[DIGITS]
    assert "recipe" in rows["mnist_mmd_mog10"]  # a recipe nobody has built here


def test_zoo_list_markdown_is_the_readme_table(capsys):
    code, out, _ = run(["zoo", "list", "--markdown"], capsys)
    assert code == 0 and out.startswith("| preset |")
    readme = (presets.ZOO_DIR.parent / "README.md").read_text()
    assert out.strip() in readme, "README's zoo table is stale: paste `aae-keras zoo list --markdown`"


def test_zoo_info_and_unknown_names(capsys):
    code, out, _ = run(["zoo", "info", DIGITS, "--json"], capsys)
    assert code == 0
    info = json.loads(out)
    assert info["recipe"]["train"] == recipes.load_recipe(DIGITS)["train"]
    assert (
        info["files"]["model.weights.h5"]["sha256"]
        == presets.file_record(presets.ZOO_DIR / "presets" / DIGITS / "model.weights.h5")["sha256"]
    )
    code, _, err = run(["zoo", "info", "no_such_preset"], capsys)
    assert code == 2 and DIGITS in err
    code, _, err = run(["zoo", "download", "mnist_mmd_mog10"], capsys)
    assert code == 2 and "zoo build mnist_mmd_mog10" in err


def test_zoo_download_shows_progress_and_fills_the_cache(tmp_path):
    served = tmp_path / "mirror"
    served.mkdir()
    archive = presets.pack(presets.ZOO_DIR / "presets" / DIGITS, served / f"{DIGITS}.tar.gz")
    assert archive["sha256"] == presets.info(DIGITS)["archive"]["sha256"]
    with http_server(served) as url:
        env = {**os.environ, "AAE_KERAS_HOME": str(tmp_path / "cache"), "AAE_KERAS_ZOO_URL": url}
        result = subprocess.run(
            [sys.executable, "-m", "aae_keras.cli", "zoo", "download", DIGITS],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
    assert result.returncode == 0, result.stderr[-2000:]
    size = archive["size"]
    assert f"{size}/{size}" in result.stdout  # keras.utils.get_file's progress bar
    cached = result.stdout.strip().splitlines()[-1].split(" is in ")[-1]
    assert cached.startswith(str(tmp_path / "cache")) and os.path.isfile(os.path.join(cached, "model.weights.h5"))


def test_export_takes_a_preset_name_and_records_it(tmp_path, capsys):
    code, _, err = run(["export", DIGITS, "--out", tmp_path / "decoder.onnx"], capsys)
    assert code == 0, err
    props = {p.key: json.loads(p.value) for p in onnx.load(tmp_path / "decoder.onnx").metadata_props}
    assert props["aae_keras.preset"] == DIGITS


@pytest.mark.parametrize("name, dataset", [(DIGITS, "digits"), ("fashion_mnist_mmd_mog10", "fashion_mnist")])
def test_evaluate_a_preset_on_its_own_dataset(name, dataset, capsys):
    # the Fashion-MNIST preset fails if evaluate ignores the preset: digits, the fallback, is 8x8
    if dataset == "fashion_mnist" and not FASHION.is_dir():
        pytest.skip(f"Fashion-MNIST is not at {FASHION}")
    code, out, err = run(["evaluate", name, "--data-dir", FASHION], capsys)
    assert code == 0, err
    result = json.loads(out)
    assert result["dataset"] == dataset
    recorded = presets.info(name)["metrics"]
    assert result["test"]["reconstruction"] == pytest.approx(recorded["test_reconstruction"], rel=1e-4)


def test_rebuilt_digits_preset_reaches_the_recorded_metrics(capsys):
    code, out, err = run(["zoo", "build", DIGITS, "--check", "--verbose", "0"], capsys)
    assert code == 0, out + err
    comparison = json.loads(out[: out.rindex("}") + 1])
    assert {"test_reconstruction", "code_mmd2", "codes_near_mode"} <= set(comparison)
    assert all(row["within"] for row in comparison.values())


@pytest.fixture
def diverging_recipe(tmp_path, monkeypatch):
    """A temporary recipe whose learning rate makes training blow up; archives go to tmp_path."""
    recipes_dir = tmp_path / "recipes"
    recipes_dir.mkdir()
    train = ["--model", "mmd", "--epochs", "2", "--hidden", "16", "--lr", "1e15"]
    (recipes_dir / "diverging.json").write_text(json.dumps({"description": "blows up", "train": train}))
    monkeypatch.setattr(recipes, "RECIPES_DIR", recipes_dir)
    monkeypatch.setattr(recipes, "ARCHIVES_DIR", tmp_path / "archives")
    return "diverging"


def test_zoo_build_stops_a_diverging_recipe_without_writing_a_preset(diverging_recipe, tmp_path, capsys):
    code, _, err = run(["zoo", "build", diverging_recipe, "--out", tmp_path / "preset", "--verbose", "0"], capsys)
    assert code == 2 and "training diverged" in err and "--lr" in err, err
    assert not (tmp_path / "preset").exists() and not list((tmp_path / "archives").glob("*"))
    assert diverging_recipe not in presets.manifest()["presets"]


def test_zoo_build_refuses_an_unwritable_out_before_training(diverging_recipe, capsys):
    start = time.perf_counter()
    code, out, err = run(["zoo", "build", diverging_recipe, "--out", "/proc/preset"], capsys)
    assert code == 2 and err.startswith("aae-keras: error: cannot write --out '/proc/preset'"), err
    assert "Epoch" not in out and time.perf_counter() - start < 5


@pytest.mark.large
@pytest.mark.parametrize(
    "name",
    [n for n in recipes.RECIPES_DIR.glob("fashion_mnist_*.json") if recipes.load_recipe(n.stem).get("shipped")],
    ids=lambda p: p.stem,
)
def test_rebuilt_fashion_presets_reach_the_recorded_metrics(name):
    if not FASHION.is_dir():
        pytest.skip(f"Fashion-MNIST is not at {FASHION}")
    result = recipes.build(name.stem, data_dir=FASHION, check=True)
    assert result["comparison"] and all(row["within"] for row in result["comparison"].values()), result


def test_builds_side_by_side_lose_no_manifest_entry(tmp_path):
    """Parallel `zoo build`s (one per recipe on the GPU machine) each write their entry; the lock keeps them all."""
    (tmp_path / "manifest.json").write_text(json.dumps({"format": 1, "base_url": None, "presets": {}}))
    script = """
import sys
from pathlib import Path
from aae_keras import presets, recipes
presets.ZOO_DIR = Path(sys.argv[1])
for i in range(40):
    recipes._update_manifest(f"{sys.argv[2]}_{i:02d}", {"description": "x"})
"""
    workers = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path), f"w{k}"]) for k in range(3)]
    assert [w.wait(timeout=120) for w in workers] == [0, 0, 0]
    names = set(json.loads((tmp_path / "manifest.json").read_text())["presets"])
    assert names == {f"w{k}_{i:02d}" for k in range(3) for i in range(40)}
