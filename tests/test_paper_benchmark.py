"""benchmarks/paper.py from the MNIST recipes: each run an `aae-keras train` into its own folder,
so a second call measures the finished run again instead of training it."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from test_data import write_idx

ROOT = Path(__file__).resolve().parents[1]


def _tiny_mnist(directory, n_train=300, n_test=50):
    rng = np.random.default_rng(0)
    directory.mkdir()
    for split, n in (("train", n_train), ("t10k", n_test)):
        write_idx(directory / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)), 2051)
        write_idx(directory / f"{split}-labels-idx1-ubyte.gz", np.arange(n) % 10, 2049)


def test_recipe_runs_resume_and_are_measured_again(tmp_path):
    _tiny_mnist(tmp_path / "mnist")
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "paper.py"),
        "--dataset",
        "mnist",
        "--data-dir",
        str(tmp_path / "mnist"),
        "--from-recipes",
        "--experiments",
        "semi",
        "--cells",
        "semi/100",
        "--regularizers",
        "mmd",
        "--seeds",
        "3",
        "--epochs",
        "1",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--out",
        str(tmp_path / "r.json"),
    ]
    first = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    run = tmp_path / "runs" / "mnist_semisup100_mmd_s3"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["args"]["seed"] == 3 and metrics["args"]["labels"] == 100 and metrics["epochs"] == 1
    report = json.loads((tmp_path / "r.json").read_text())
    semi_100 = report["rows"][0]
    assert semi_100["experiment"] == "semi/100" and 0 <= semi_100["values"][0] <= 100
    assert semi_100["command"].startswith("aae-keras train --model semi_supervised --regularizer mmd --labels 100")
    assert "`aae-keras train" in (tmp_path / "r.md").read_text()

    stamp = (run / "model.keras").stat().st_mtime_ns
    second = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert (run / "model.keras").stat().st_mtime_ns == stamp  # measured again, not trained again
    again = json.loads((tmp_path / "r.json").read_text())["rows"]
    assert [row["values"] for row in again] == [row["values"] for row in report["rows"]]

    # --finished-only measures that run and trains none of the others (seed 4 has none)
    only = [*command[: command.index("--seeds")], "--seeds", "3", "4", *command[command.index("--seeds") + 2 :]]
    third = subprocess.run([*only, "--finished-only"], capture_output=True, text=True, timeout=600)
    assert third.returncode == 0, third.stderr[-3000:]
    assert not (tmp_path / "runs" / "mnist_semisup100_mmd_s4").exists()
    assert json.loads((tmp_path / "r.json").read_text())["rows"][0]["values"] == semi_100["values"]
