import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aae_keras import distribute

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def mirrored_report():
    env = {**os.environ, "PYTHONPATH": str(HERE), "TF_CPP_MIN_LOG_LEVEL": "2"}
    run = subprocess.run(
        [sys.executable, str(HERE / "mirrored_job.py")], capture_output=True, text=True, env=env, timeout=600
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


FAMILY = [f"{n}-{r}" for n in ("semi_supervised", "label_conditioned", "dim_reduction") for r in ("mmd", "adversarial")]


@pytest.mark.parametrize("variant", ["mmd", "sample_mmd", "adversarial", *FAMILY])
def test_two_replicas_match_one(mirrored_report, variant):
    """Same global batch and seeds: 2 mirrored replicas end with the 1-replica weights."""
    result = mirrored_report[variant]
    assert result["max_weight_change"] > 1e-3  # training moved the weights
    assert result["max_weight_difference"] < 1e-5, result
    for name, value in result["logs_one_replica"].items():
        assert value == pytest.approx(result["logs_two_replicas"][name], rel=1e-4, abs=1e-5), name


def test_strategy_flag():
    assert distribute.get_strategy("none").num_replicas_in_sync == 1
    assert distribute.get_strategy("auto").num_replicas_in_sync == 1  # one CPU, no TF_CONFIG
    with pytest.raises(ValueError, match="choose one of auto, none, mirrored"):
        distribute.get_strategy("horovod")
