"""The clustering model's defaults on MNIST: a few epochs of `ClusteringAutoencoder` (16
clusters, 5-D Gaussian style, the paper's MLP) with the core's defaults or with the
semi-supervised model's (Adam 1e-4 for every phase, `input_noise=0.3`), the cluster accuracy
(majority mapping) and the number of clusters used after every epoch.

    python benchmarks/clustering_probe.py --data-dir ../shared/data/mnist --epochs 3 \\
        --out benchmarks/results/clustering_probe.json
"""

import argparse
import json
import os
import sys

import keras
import numpy as np

from aae_keras import data, files, metrics, models, priors
from aae_keras.models.semi_supervised import SEMI_SUPERVISED_OPTIMIZERS

SETTINGS = {
    "core_defaults": ({}, lambda regularizer: {}),
    "semi_supervised_defaults": (
        {"input_noise": 0.3},
        lambda regularizer: {
            name: keras.optimizers.Adam(rate, beta_1=beta_1)
            for name, (rate, beta_1) in SEMI_SUPERVISED_OPTIMIZERS.items()
            if name != "classifier_optimizer" and (regularizer == "adversarial" or name == "optimizer")
        },
    ),
}


def run(dataset, regularizer, setting, epochs, seed):
    model_kwargs, optimizers = SETTINGS[setting]
    keras.utils.set_random_seed(seed)
    model = models.ClusteringAutoencoder.create(
        dataset.image_shape, priors.gaussian(5), 16, regularizer=regularizer, seed=seed, **model_kwargs
    )
    model.compile(**optimizers(regularizer))
    curve = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            clusters = model.cluster(dataset.x_test)
            accuracy = metrics.cluster_accuracy(dataset.y_test, clusters, mapping="majority")
            curve.append({"accuracy": accuracy, "clusters_used": int(len(np.unique(clusters)))})
            print(regularizer, setting, f"epoch {epoch + 1}:", curve[-1], flush=True)

    model.fit(dataset.x_train, epochs=epochs, batch_size=100, verbose=0, callbacks=[Record()])
    return {"regularizer": regularizer, "setting": setting, "seed": seed, "epochs": curve}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=os.environ.get("AAE_KERAS_MNIST_DIR"))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    dataset = data.load("mnist", data_dir=args.data_dir)
    results = [
        run(dataset, regularizer, setting, args.epochs, args.seed)
        for setting in SETTINGS
        for regularizer in ("adversarial", "mmd")
    ]
    with files.atomic_path(args.out) as tmp, open(tmp, "w") as f:
        json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
