"""Why the unlabeled data did not help: the semi-supervised model on MNIST, one change at a time.

Each configuration trains `SemiSupervisedAutoencoder` (paper MLP 1000-1000, 10-D Gaussian
style, 100 balanced labels, batch 100 + 100 labeled) and records the test classification
error after every epoch. The configurations name what differs from the library's defaults
before issue 23 (`before`): the phases' learning rates, the classifier's, the categorical
part's MMD bandwidth and weight.

    python benchmarks/semi_ablation.py --data-dir ../shared/data/mnist --epochs 5 \
        --configs before lr1e-4 --out benchmarks/results/semi_ablation.json
"""

import argparse
import json
import os
import sys
import time

import keras

from aae_keras import data, files, matchers, metrics, models, priors, regularizers

ADAM = keras.optimizers.Adam


def optimizers(regularizer, rate, classifier=None, adversarial_beta=0.5):
    """compile() keywords: every phase at `rate` (the classifier at `classifier`, default `rate`)."""
    given = {"optimizer": ADAM(rate), "classifier_optimizer": ADAM(classifier or rate)}
    if regularizer == "adversarial":
        given.update(
            discriminator_optimizer=ADAM(rate, beta_1=adversarial_beta),
            generator_optimizer=ADAM(rate, beta_1=adversarial_beta),
        )
    return given


class ClassKernel(models.SemiSupervisedAutoencoder):
    """The categorical slot matched by a closed-form MMD of one RBF `class_bandwidth`, scaled
    by `class_scale` (the style keeps the default ladder)."""

    class_bandwidth, class_scale = 0.5, 1.0

    def _matcher(self, slot, discriminator=None):
        if slot.name != "y" or self.adversarial:
            return super()._matcher(slot, discriminator)
        estimate = regularizers.ClosedFormMMD(slot.prior, [self.class_bandwidth], [self.class_scale])
        return matchers.MMDMatcher(estimate, name="mmd_y")


class SplitBatches(models.SemiSupervisedAutoencoder):
    """Reconstruction and matching on the batch's first 100 rows only (drawn from all images),
    classification on the 100 labeled rows appended to it (not on the labeled images that fall
    among the first 100)."""

    def _train_phases(self, data):
        x, labels = self._inputs(data)
        head = {"x": x[:100], "y": labels[:100]}
        tail = labels[100:]
        original = self.classifies
        self.classifies = False
        logs = super()._train_phases((head["x"], head["y"]))
        self.classifies = original
        from aae_keras import backend

        groups = self._optimizer_groups()
        step = self.optimizer.iterations
        logs.update(
            backend.phase(
                lambda: self._classification_terms(self._parts(x[100:], training=True, seed=self._seed(step, 4)), tail),
                groups["classifier_optimizer"],
                self.classifier_optimizer,
            )
        )
        return logs


class StyleKernel(models.SemiSupervisedAutoencoder):
    """The style slot matched by a closed-form MMD over `style_bandwidths` (finer than the
    default ladder of sqrt(d / 8) .. sqrt(8 d))."""

    style_bandwidths = (0.25, 0.5, 1.0, 2.0)

    def _matcher(self, slot, discriminator=None):
        if slot.name != "z" or self.adversarial:
            return super()._matcher(slot, discriminator)
        return matchers.MMDMatcher(regularizers.ClosedFormMMD(slot.prior, list(self.style_bandwidths)), name="mmd_z")


def class_kernel(bandwidth, scale):
    return type("ClassKernel", (ClassKernel,), {"class_bandwidth": bandwidth, "class_scale": scale})


# name -> (model keywords, compile keywords as a function of the regularizer)
CONFIGS = {
    "before": ({}, lambda reg: {"optimizer": ADAM(1e-4)}),  # the command: --lr 1e-4, the rest "auto"
    "lr1e-4": ({}, lambda reg: optimizers(reg, 1e-4)),
    "lr1e-4_noise0.3": ({"input_noise": 0.3}, lambda reg: optimizers(reg, 1e-4)),
    "lr3e-4_noise0.3": ({"input_noise": 0.3}, lambda reg: optimizers(reg, 3e-4)),
    "lr1e-4_class1e-3": ({}, lambda reg: optimizers(reg, 1e-4, 1e-3)),
    "split_noise0.3": ({"cls": SplitBatches}, lambda reg: {}),
    "style_fine": ({"cls": StyleKernel}, lambda reg: {}),
    "lr1e-4_y0.5": ({"cls": class_kernel(0.5, 1.0)}, lambda reg: optimizers(reg, 1e-4)),
    "lr1e-4_y0.5x10": ({"cls": class_kernel(0.5, 10.0)}, lambda reg: optimizers(reg, 1e-4)),
    "lr1e-4_noise0.3_y0.5x10": (
        {"cls": class_kernel(0.5, 10.0), "input_noise": 0.3},
        lambda reg: optimizers(reg, 1e-4),
    ),
    "defaults": ({}, lambda reg: {}),  # whatever the library's defaults are now
}


def run(name, regularizer, x, y, x_test, y_test, args):
    model_kwargs, compile_kwargs = CONFIGS[name]
    model_kwargs = dict(model_kwargs)
    cls = model_kwargs.pop("cls", models.SemiSupervisedAutoencoder)
    keras.utils.set_random_seed(args.seed)
    kwargs = {"weight": args.weight} if regularizer != "adversarial" else {}
    model = cls.create(
        x.shape[1:],
        priors.gaussian(args.latent_dim),
        10,
        regularizer=regularizer,
        seed=args.seed,
        **kwargs,
        **model_kwargs,
    )
    model.compile(**compile_kwargs(regularizer))
    errors, start = [], time.perf_counter()

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            errors.append(100.0 * metrics.classification_error(y_test, model.classify(x_test)))
            shown = ", ".join(f"{key} {value:.3g}" for key, value in sorted(logs.items()))
            print(f"{name}/{regularizer} epoch {epoch + 1}: {errors[-1]:.2f} % ({shown})", flush=True)

    model.fit(x, y, epochs=args.epochs, batch_size=100, verbose=0, callbacks=[Record()])
    return {
        "style_class_accuracy": style_class_accuracy(model, x_test, y_test),
        "config": name,
        "regularizer": regularizer,
        "seed": args.seed,
        "weight": args.weight,
        "latent_dim": args.latent_dim,
        "test_error": errors,
        "seconds": time.perf_counter() - start,
    }


def style_class_accuracy(model, x, y):
    """How much of the class the style z still holds: the test accuracy of a logistic regression
    from z to the class, fitted on the first half of (x, y) and scored on the second (0.1 is
    none; the class should be in y, not in z)."""
    from sklearn.linear_model import LogisticRegression

    z, half = model.encode(x), len(x) // 2
    probe = LogisticRegression(max_iter=1000).fit(z[:half], y[:half])
    return float(probe.score(z[half:], y[half:]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=os.environ.get("AAE_KERAS_MNIST_DIR"))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--labels", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latent-dim", type=int, default=10, help="the style's dimensions")
    parser.add_argument("--weight", type=float, default=100.0, help="MMD weight (the CLI's default)")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--regularizers", nargs="+", default=["adversarial", "mmd"])
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    dataset = data.load("mnist", data_dir=args.data_dir)
    y = data.keep_labels(dataset.y_train, args.labels, seed=args.seed)
    results = json.load(open(args.out)) if os.path.exists(args.out) else []
    for name in args.configs:
        for regularizer in args.regularizers:
            results.append(run(name, regularizer, dataset.x_train, y, dataset.x_test, dataset.y_test, args))
            with files.atomic_path(args.out) as tmp:
                with open(tmp, "w") as f:
                    json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
