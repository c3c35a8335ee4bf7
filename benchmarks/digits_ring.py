"""How well each model fits the paper's ring-of-10 prior on scikit-learn digits (offline).

Trains the closed-form MMD and the adversarial autoencoder (MLP 256x256, latent 2, batch 100,
80 epochs: the settings of tests/test_models.py) for several seeds and reports the fraction of
test codes within 1.5 of a prior mode, the MMD^2 of test codes to the prior before and after
training, reconstruction and wall-clock seconds. Writes benchmarks/results/digits_ring.json.

    python benchmarks/digits_ring.py --seeds 0 1 2
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from aae_keras import data, metrics, priors, regularizers  # noqa: E402
from conftest import tiny_model  # noqa: E402

SETTINGS = {"mmd": {"weight": 100.0}, "adversarial": {}}


def run(kind, seed, epochs, digits, ring):
    reg = regularizers.ClosedFormMMD(ring)
    model = tiny_model(kind, ring, hidden=(256, 256), seed=seed, **SETTINGS[kind])
    before = float(reg(model.encode(digits.x_test)))
    start = time.perf_counter()
    model.fit(digits.x_train, epochs=epochs, batch_size=100, verbose=0)
    seconds = time.perf_counter() - start
    codes = model.encode(digits.x_test)
    return {
        "near_mode_fraction": metrics.near_mode_fraction(codes, ring),
        "mmd2_before": before,
        "mmd2_after": float(reg(codes)),
        "reconstruction": model.evaluate(digits.x_test, verbose=0, return_dict=True)["reconstruction"],
        "seconds": seconds,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=80)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "digits_ring.json"))
    args = parser.parse_args()
    digits, ring = data.load("digits"), priors.gaussian_mixture(10, 2)
    results = {kind: [run(kind, s, args.epochs, digits, ring) for s in args.seeds] for kind in SETTINGS}
    print("| model | near-mode fraction | MMD^2 before | MMD^2 after | reconstruction | seconds |")
    print("|---|---|---|---|---|---|")
    for kind, runs in results.items():
        cells = [f"{np.mean([r[k] for r in runs]):.3f} +- {np.std([r[k] for r in runs]):.3f}" for k in runs[0]]
        print(f"| {kind} | " + " | ".join(cells) + " |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    tmp = f"{args.out}.tmp"
    with open(tmp, "w") as f:
        json.dump({"seeds": args.seeds, "epochs": args.epochs, "results": results}, f, indent=2)
    os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
