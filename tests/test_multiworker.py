"""MultiWorkerMirroredStrategy across two worker processes on 127.0.0.1 matches one process.

The test starts three subprocesses running tests/multiworker_job.py: two workers of a
TF_CONFIG cluster (one replica each, so a global batch of 64 is 2 x 32) and a single-process
reference with the same global batch, data order and seeds. Each trains an MMDAutoencoder
(closed-form MMD, ring prior) and an AdversarialAutoencoder for 10 steps and saves its
weights; with the train steps' all-gathered codes, global-batch random draws and 1 / R loss
scaling, the workers must end with the reference's weights (up to float summation order)
and with bit-identical weights of their own.
"""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).parent
JOB = HERE / "multiworker_job.py"
TIMEOUT = 300  # seconds for all three processes; a healthy run takes ~25 s on 2 CPU cores
VARIANTS = ("mmd", "adversarial")
STEPS = 10  # multiworker_job: 2 epochs x 5 global batches of 64


def _free_ports(n):
    """n distinct free TCP ports on 127.0.0.1 (held open together so they differ)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _env(tf_config=None):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("TF_CONFIG", None)
    for key in ("http_proxy", "https_proxy", "grpc_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        env.pop(key, None)  # gRPC would send the workers' 127.0.0.1 traffic through a proxy
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return env


def _tail(path, chars=4000):
    text = path.read_text(errors="replace") if path.exists() else ""
    return text[-chars:]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Run the reference and both workers; return {role: (weights, logs)}."""
    out = tmp_path_factory.mktemp("multiworker")
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    roles = {"single": ("single", None)}
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        roles[f"worker{index}"] = ("worker", tf_config)

    procs = {}
    try:
        for role, (mode, tf_config) in roles.items():
            with open(out / f"{role}.out", "w") as stdout, open(out / f"{role}.err", "w") as stderr:
                procs[role] = subprocess.Popen(
                    [sys.executable, str(JOB), str(out), mode],
                    stdout=stdout,
                    stderr=stderr,
                    env=_env(tf_config),
                    cwd=HERE.parent,
                )
        deadline = time.monotonic() + TIMEOUT
        while any(p.poll() is None for p in procs.values()):
            # A worker that dies leaves its peer blocked in a collective: stop at the first failure.
            if any(p.returncode not in (None, 0) for p in procs.values()) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()

    failed = {role: p.returncode for role, p in procs.items() if p.returncode != 0}
    if failed:
        report = "\n".join(
            f"--- {role} (exit {p.returncode}{', killed' if p.returncode < 0 else ''}) stderr:\n"
            f"{_tail(out / f'{role}.err')}"
            for role, p in procs.items()
        )
        hint = ""
        if "Invalid reduction dimension 0 for input with 0 dimensions" in report:
            hint = (
                "\nKeras 3's fit reduces a train step's scalar logs across workers with "
                'strategy.reduce("MEAN", value, axis=0), which fails on scalars '
                "(tensorflow/tensorflow#72388): the train steps must return shape-[1] logs "
                "under a multi-worker strategy."
            )
        pytest.fail(f"multi-worker job failed or timed out after {TIMEOUT} s: {failed}{hint}\n{report}")

    results = {}
    for role in roles:
        with np.load(out / f"{role}.npz") as arrays:
            weights = {key: arrays[key] for key in arrays.files}
        results[role] = (weights, json.loads((out / f"{role}.json").read_text()))
    return results


def _weights(weights, variant, when):
    prefix = f"{variant}/{when}/"
    keys = sorted((k for k in weights if k.startswith(prefix)), key=lambda k: int(k[len(prefix) :]))
    assert keys, f"no {prefix} weights"
    return [weights[k] for k in keys]


@pytest.mark.parametrize("variant", VARIANTS)
def test_two_workers_match_one_process(runs, variant):
    single, single_logs = runs["single"]
    start = _weights(single, variant, "initial")
    final = _weights(single, variant, "final")
    assert single_logs[variant]["steps"] == STEPS
    assert max(float(np.abs(a - b).max()) for a, b in zip(final, start)) > 1e-3  # training moved

    for worker in ("worker0", "worker1"):
        weights, logs = runs[worker]
        assert logs[variant]["steps"] == STEPS, worker
        for a, b in zip(_weights(weights, variant, "initial"), start):
            np.testing.assert_array_equal(a, b, err_msg=f"{worker} initial weights")
        got = _weights(weights, variant, "final")
        assert [w.shape for w in got] == [w.shape for w in final]
        diff = max(float(np.abs(a - b).max()) for a, b in zip(got, final))
        assert diff < 1e-5, f"{worker} vs one process: max |weight difference| = {diff:.3g}"
        for name, value in single_logs[variant].items():
            assert logs[variant][name] == pytest.approx(value, rel=1e-4, abs=1e-5), (worker, name)


@pytest.mark.parametrize("variant", VARIANTS)
def test_workers_end_identical(runs, variant):
    """The all-reduced updates leave both workers with bit-identical weights."""
    first = _weights(runs["worker0"][0], variant, "final")
    second = _weights(runs["worker1"][0], variant, "final")
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
