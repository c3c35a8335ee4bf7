"""A killed `aae-keras train` or `zoo build` resumes from its last completed epoch and ends as
an uninterrupted run does (the README's Reliability section). The runs here are real processes,
killed with SIGKILL."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from aae_keras import callbacks, cli, presets, runs
from conftest import tiny_model

TRAIN = [
    "--epochs",
    "8",
    "--batch-size",
    "10",
    "--hidden",
    "32",
    "--patience",
    "3",
    "--validation",
    "200",
    "--seed",
    "0",
    "--verbose",
    "0",
    "--strategy",
    "none",
]


def console(argv, backend=None, **kwargs):
    script = os.path.join(os.path.dirname(sys.executable), "aae-keras")
    env = {**os.environ, "AAE_KERAS_XLA": "0", **({"KERAS_BACKEND": backend} if backend else {})}
    return subprocess.Popen(
        [script, *map(str, argv)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, **kwargs
    )


def finished(argv, **kwargs):
    process = console(argv, **kwargs)
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    return out


def kill_after_epoch(argv, backup, epoch=3, **kwargs):
    """Start `aae-keras argv`, SIGKILL it once `backup` holds the state of `epoch` epochs."""
    process = console(argv, **kwargs)
    state = os.path.join(backup, callbacks.ResumeFromBackup.STATE, "state.json")
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with open(state) as f:
                if json.load(f)["epoch"] >= epoch:
                    break
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before it could be killed: " + process.stderr.read()[-2000:]
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)


def weights(path):
    return keras.saving.load_model(path).get_weights()


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    out = tmp_path_factory.mktemp("straight") / "run"
    finished(["train", *TRAIN, "--out", out])
    return out


def test_a_killed_train_resumes_exactly_and_another_command_is_refused(straight, tmp_path):
    out = tmp_path / "run"
    kill_after_epoch(["train", *TRAIN, "--out", out], out / runs.BACKUP_DIR)
    assert os.listdir(out) == [runs.BACKUP_DIR]  # nothing but the state to resume from

    other = console(["train", *TRAIN, "--seed", "1", "--out", out])
    _, err = other.communicate(timeout=120)
    assert other.returncode == 2 and "holds an unfinished run of another command (seed: 0 there, 1 now)" in err, err
    assert "--overwrite" in err and len(err.strip().splitlines()) == 1

    stdout = finished(["train", *TRAIN, "--out", out])
    assert "Resuming" in stdout
    assert sorted(os.listdir(out)) == sorted(os.listdir(straight))  # the backup is gone
    for a, b in zip(weights(out / "model.keras"), weights(straight / "model.keras")):
        np.testing.assert_array_equal(a, b)
    resumed, reference = (json.loads((d / "metrics.json").read_text()) for d in (out, straight))
    assert_same_metrics(resumed, reference)


def test_a_killed_train_resumes_exactly_on_pytorch(tmp_path):
    """Keras's PyTorch adapter shuffles with torch's own generator, which the backup reseeds
    every epoch too (`backend.torch.seed_shuffling`), so the resumed run sees the same batches."""
    straight, out = tmp_path / "straight", tmp_path / "run"
    finished(["train", *TRAIN, "--out", straight], backend="torch")
    kill_after_epoch(["train", *TRAIN, "--out", out], out / runs.BACKUP_DIR, backend="torch")
    assert "Resuming" in finished(["train", *TRAIN, "--out", out], backend="torch")
    for a, b in zip(weights(out / "model.keras"), weights(straight / "model.keras")):
        np.testing.assert_array_equal(a, b)


def assert_same_metrics(resumed, reference):
    """The recorded metrics agree: counts exactly, losses to 1e-6 relative (with equal weights,
    TensorFlow's `evaluate` of the 1237 training images varies in the 7th digit from one process
    to the next, interrupted or not: three uninterrupted runs gave 24.540077, 24.540075, 24.540071)."""
    assert (resumed["epochs"], resumed["best_epoch"]) == (reference["epochs"], reference["best_epoch"])
    for key in ("train", "validation", "test"):
        for name, value in reference[key].items():
            assert resumed[key][name] == pytest.approx(value, rel=1e-6), (key, name)
    for key in ("code_mmd2", "codes_near_mode"):
        assert resumed[key] == pytest.approx(reference[key], rel=1e-6, abs=1e-9), key


def test_a_killed_zoo_build_resumes_exactly(straight, tmp_path, monkeypatch):
    zoo = tmp_path / "zoo"
    (zoo / "recipes").mkdir(parents=True)
    (zoo / "manifest.json").write_text(json.dumps({"format": 1, "base_url": None, "presets": {}}))
    (zoo / "recipes" / "tiny.json").write_text(json.dumps({"description": "tiny", "train": TRAIN}))
    script = (
        "import sys, pathlib; from aae_keras import cli, presets, recipes; presets.ZOO_DIR = pathlib.Path(sys.argv[1]); "
        "recipes.RECIPES_DIR = presets.ZOO_DIR / 'recipes'; recipes.ARCHIVES_DIR = presets.ZOO_DIR / 'archives'; "
        "cli.main(['zoo', 'build', 'tiny', '--out', sys.argv[2], '--verbose', '0'])"
    )
    preset = tmp_path / "tiny"
    argv = [sys.executable, "-c", script, zoo, preset]
    process = subprocess.Popen(
        list(map(str, argv)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "AAE_KERAS_XLA": "0"},
    )
    state = preset / runs.BACKUP_DIR / callbacks.ResumeFromBackup.STATE / "state.json"
    while process.poll() is None and not (
        state.is_file() and json.loads(state.read_text() or "{}").get("epoch", 0) >= 3
    ):
        time.sleep(0.02)
    assert process.poll() is None, process.stderr.read()[-2000:]
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert os.listdir(preset) == [runs.BACKUP_DIR]

    result = subprocess.run(
        list(map(str, argv)), capture_output=True, text=True, timeout=600, env={**os.environ, "AAE_KERAS_XLA": "0"}
    )
    assert result.returncode in (0, None), result.stderr[-3000:]
    assert runs.BACKUP_DIR not in os.listdir(preset)
    reference = json.loads((straight / "metrics.json").read_text())
    for a, b in zip(presets.load(preset).get_weights(), weights(straight / "model.keras")):
        np.testing.assert_array_equal(a, b)
    entry = json.loads((zoo / "manifest.json").read_text())["presets"]["tiny"]
    assert entry["metrics"]["test_reconstruction"] == pytest.approx(reference["test"]["reconstruction"], rel=1e-6)
    assert entry["budget"]["epochs"] == reference["epochs"]
    assert_same_metrics(json.loads((preset / "metadata.json").read_text())["results"], reference)


class _Interrupt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 2:
            raise KeyboardInterrupt


def test_resume_from_backup_restores_early_stopping(digits, tmp_path, monkeypatch):
    """In one process: early stopping's counters and best weights survive the interruption, so
    the resumed run stops at the same epoch and restores the same best weights."""
    monkeypatch.setattr(callbacks.ResumeFromBackup, "COST_RATIO", 0)  # these epochs are shorter than a backup
    x, held_out = digits.x_train[:300], digits.x_train[300:400]

    def fit(extra=()):
        model = tiny_model("mmd")
        stopper = keras.callbacks.EarlyStopping("val_loss", patience=3, min_delta=50.0, restore_best_weights=True)
        resume = callbacks.ResumeFromBackup(tmp_path / "backup", early_stopping=stopper)
        model.fit(x, epochs=10, batch_size=50, validation_data=held_out, verbose=0, callbacks=[stopper, resume, *extra])
        return model, stopper, resume

    straight, straight_stopper, _ = fit()
    shutil.rmtree(tmp_path / "backup")
    with pytest.raises(KeyboardInterrupt):
        fit([_Interrupt()])
    resumed, stopper, resume = fit()
    assert resume.restored_epoch == 3 and stopper.stopped_epoch == straight_stopper.stopped_epoch > 0
    assert resume.epochs_done == straight_stopper.stopped_epoch + 1
    for a, b in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_array_equal(a, b)
    again, _, again_resume = fit()  # a run that early stopping ended has no epoch left to train
    assert again_resume.restored_epoch == again_resume.epochs_done == resume.epochs_done


def test_a_diverging_or_failing_run_leaves_no_backup(tmp_path, monkeypatch):
    monkeypatch.setenv("TPU_NAME", "nonsense")
    out = tmp_path / "run"
    try:
        code = cli.main(["train", "--epochs", "1", "--hidden", "8", "--out", str(out)])
    except SystemExit as exit:
        code = exit.code
    assert code == 2 and not out.exists()  # failed before an epoch: nothing to resume, nothing left
