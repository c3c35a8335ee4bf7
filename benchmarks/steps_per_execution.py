"""Milliseconds per training step on JAX: one step per call, Keras's `steps_per_execution` loop,
and the library's fused one (`backend.jax.fuse_steps`: K steps in one jitted `lax.scan`).

Where the step itself is cheap, the per-call overhead (Python, dispatch, the trainer's state
passed in and out) is what is left, and fusing K steps into one call removes K - 1 of them.
This uses a small MLP (one hidden layer of 32) on 8x8 images, batch 32, 200 steps per epoch,
the closed-form MMD and the adversarial model; each repeat fits 2 epochs after a warm-up
epoch, and the modes alternate within a repeat so machine noise hits all alike. The median
over repeats is reported. (On a GPU the same overhead is what the paper MLP's step waits on.)

Usage (from the repository root):
    KERAS_BACKEND=jax python benchmarks/steps_per_execution.py [--repeats 5] [--out benchmarks/results]
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

import keras
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from aae_keras.backend import jax as jax_backend  # noqa: E402
from conftest import tiny_model  # noqa: E402

STEPS, BATCH, K = 200, 32, 50
MODES = {"one step per call": (1, True), f"Keras loop, K={K}": (K, False), f"fused, K={K}": (K, True)}


def ms_per_step(kind, steps_per_execution, fused, x):
    """ms per step of one fresh model over 2 epochs after a warm-up epoch."""
    fuse = jax_backend.fuse_steps
    if not fused:
        jax_backend.fuse_steps = lambda model: None
    try:
        model = tiny_model(kind)
        model.compile(steps_per_execution=steps_per_execution)
        model.fit(x, epochs=1, batch_size=BATCH, verbose=0)
        start = time.perf_counter()
        model.fit(x, epochs=2, batch_size=BATCH, verbose=0)
        return (time.perf_counter() - start) * 1000 / (2 * STEPS)
    finally:
        jax_backend.fuse_steps = fuse


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    args = parser.parse_args()
    if keras.backend.backend() != "jax":
        sys.exit("Run with KERAS_BACKEND=jax: this measures the JAX trainer.")
    x = np.random.default_rng(0).uniform(size=(STEPS * BATCH, 8, 8)).astype("float32")
    times = {kind: {mode: [] for mode in MODES} for kind in ("mmd", "adversarial")}
    for repeat in range(args.repeats):
        for kind, modes in times.items():
            for mode, (spe, fused) in MODES.items():
                modes[mode].append(ms_per_step(kind, spe, fused, x))
        print(f"repeat {repeat + 1}/{args.repeats} done", flush=True)
    table = ["| model | " + " | ".join(MODES) + " |", "|---|" + "---|" * len(MODES)]
    for kind, modes in times.items():
        table.append(f"| {kind} | " + " | ".join(f"{statistics.median(v):.3f}" for v in modes.values()) + " |")
    print("ms per step (median of repeats)\n" + "\n".join(table))
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "steps_per_execution.json"), "w") as f:
        json.dump(
            {
                "ms_per_step": times,
                "steps": STEPS,
                "batch": BATCH,
                "steps_per_execution": K,
                "machine": {
                    "processor": platform.processor() or platform.machine(),
                    "cores": os.cpu_count(),
                    "device": jax_backend.device_name(),
                    "keras": keras.__version__,
                },
                "command": " ".join(sys.argv),
            },
            f,
            indent=2,
        )
        f.write("\n")


if __name__ == "__main__":
    main()
