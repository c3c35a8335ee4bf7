"""The paper's semi-supervised and clustering models on scikit-learn digits (offline, minutes).

For each seed and regularizer: the semi-supervised model with 144 labels (10%) against its
encoder trained as a plain classifier on those labels alone (the settings of
tests/test_variants.py), and 16-cluster clustering accuracy and NMI. Writes
benchmarks/results/digits_family.json.

    python benchmarks/digits_family.py --seeds 0 1 2
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from test_variants import labeled_part_alone  # noqa: E402

from aae_keras import data, files, metrics  # noqa: E402
from conftest import tiny_variant  # noqa: E402


def run(seed, regularizer, digits, epochs):
    labels = data.keep_labels(digits.y_train, 144, seed=seed)
    start = time.perf_counter()
    semi = tiny_variant("semi_supervised", regularizer, hidden=(256, 256), weight=100.0, seed=seed)
    semi.fit(digits.x_train, labels, epochs=epochs, batch_size=100, labeled_batch_size=32, verbose=0)
    semi_seconds = time.perf_counter() - start
    alone = labeled_part_alone(digits.x_train, labels, seed)
    start = time.perf_counter()
    clusters = tiny_variant("clustering", regularizer, hidden=(256, 256), seed=seed)
    clusters.fit(digits.x_train, epochs=40, batch_size=100, verbose=0)
    assignments = clusters.cluster(digits.x_test)
    return {
        "semi_accuracy": 1 - metrics.classification_error(digits.y_test, semi.classify(digits.x_test)),
        "labeled_alone_accuracy": float(
            np.mean(np.argmax(alone.predict(digits.x_test, verbose=0), 1) == digits.y_test)
        ),
        "semi_seconds": semi_seconds,
        "cluster_accuracy": metrics.cluster_accuracy(digits.y_test, assignments),
        "nmi": metrics.nmi(digits.y_test, assignments),
        "clustering_seconds": time.perf_counter() - start,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=120, help="semi-supervised epochs")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "digits_family.json"))
    args = parser.parse_args()
    digits = data.load("digits")
    report = {}
    for regularizer in ("mmd", "adversarial"):
        runs = [run(seed, regularizer, digits, args.epochs) for seed in args.seeds]
        summary = {
            key: {"mean": float(np.mean([r[key] for r in runs])), "std": float(np.std([r[key] for r in runs]))}
            for key in runs[0]
        }
        report[regularizer] = {"runs": runs, "summary": summary}
        print(regularizer, json.dumps({k: round(v["mean"], 3) for k, v in summary.items()}), flush=True)
    report["seeds"], report["epochs"] = args.seeds, args.epochs
    with files.atomic_path(args.out) as tmp:
        Path(tmp).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
