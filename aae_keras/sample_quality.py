"""Sample quality on Fashion-MNIST: a small classifier's features, the Frechet distance between
decoded prior samples and test images, and how often samples drawn for a class are that class.

The classifier (`FashionClassifier`, the zoo preset `fashion_mnist_classifier`) plays the part
Inception plays for FID: `frechet_distance` compares the mean and covariance of its 128
penultimate features over two sets of images. `score(model, dataset)` reports, for a
generative model, the distance between 10 000 decoded prior samples and the 10 000 test
images, and for a class-conditional model (`model.samples_by_class`) the classifier's
accuracy on 1 000 samples drawn for each class.

Example:
    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.normal(size=(4000, 3)), rng.normal(size=(4000, 3))
    >>> frechet_distance(a, b) < 0.01, round(frechet_distance(a, a + 1.0), 3)
    (True, 3.0)
"""

import shutil
import tempfile

import keras
import numpy as np

from aae_keras.models.saving import AtomicSaving, image_signature

__all__ = ["FashionClassifier", "frechet_distance", "score", "train_classifier", "CLASSIFIER_PRESET"]

CLASSIFIER_PRESET = "fashion_mnist_classifier"
SCORED_DATASETS = ("fashion_mnist",)  # the classifier knows these images
NUM_SAMPLES = 10_000


@keras.saving.register_keras_serializable(package="aae_keras")
class FashionClassifier(AtomicSaving, keras.Model):
    """A small conv net for 28x28 grey images in [0, 1]: logits for 10 classes, and `features`,
    its `feature_dim` penultimate activations (what the Frechet distance compares).

    >>> net = FashionClassifier()
    >>> net.features(np.zeros((2, 28, 28), np.float32)).shape
    (2, 128)
    """

    def __init__(self, image_shape=(28, 28), num_classes=10, feature_dim=128, **kwargs):
        super().__init__(**kwargs)
        self.image_shape, self.num_classes, self.feature_dim = tuple(image_shape), int(num_classes), int(feature_dim)
        layers = keras.layers
        self.trunk = keras.Sequential(
            [
                keras.Input(self.image_shape),
                layers.Reshape((*self.image_shape, 1)),
                layers.Conv2D(32, 3, padding="same", activation="relu"),
                layers.MaxPooling2D(),
                layers.Conv2D(64, 3, padding="same", activation="relu"),
                layers.MaxPooling2D(),
                layers.Conv2D(64, 3, padding="same", activation="relu"),
                layers.MaxPooling2D(),
                layers.Flatten(),
                layers.Dense(self.feature_dim, activation="relu"),
            ],
            name="trunk",
        )
        self.dropout = layers.Dropout(0.3)
        self.head = layers.Dense(self.num_classes, name="head")
        self.build((None, *self.image_shape))

    def build(self, input_shape):
        self.head.build((None, self.feature_dim))
        self.built = True

    def call(self, images, training=False):
        return self.head(self.dropout(self.trunk(images, training=training), training=training))

    def features(self, images, batch_size=500):
        """The penultimate activations [n, feature_dim] of images [n, 28, 28] (numpy in and out)."""
        return np.asarray(self.trunk.predict(self._images(images), batch_size=batch_size, verbose=0))

    def classify(self, images, batch_size=500):
        """The predicted class of each image (n ints)."""
        return np.argmax(self.predict(self._images(images), batch_size=batch_size, verbose=0), axis=1)

    def serving_signature(self):
        """What Keras's `model.export` serves: the logits of a float32 image batch `x`."""
        return image_signature(self.image_shape)

    def check_latents(self, n=4, seed=0):
        """Fixed inputs for checking saved weights (presets store their outputs): n images, no classes."""
        return np.random.default_rng(seed).uniform(size=(n, *self.image_shape)).astype(np.float32), None

    def decode(self, images):
        """The logits of images: what a preset's check records for this model."""
        return np.asarray(self.predict(self._images(images), verbose=0))

    def compile(self, optimizer="adam", **kwargs):
        kwargs.setdefault("loss", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        kwargs.setdefault("metrics", ["accuracy"])
        super().compile(optimizer=optimizer, **kwargs)

    def _images(self, images):
        images = np.asarray(images, np.float32)
        if images.ndim == 4 and images.shape[-1] == 1:
            images = images[..., 0]
        if images.shape[1:] != self.image_shape:
            raise ValueError(
                f"{type(self).__name__} takes images of shape (n, {', '.join(map(str, self.image_shape))}), "
                f"got {images.shape}."
            )
        return images

    def get_config(self):
        return {
            **super().get_config(),
            "image_shape": list(self.image_shape),
            "num_classes": self.num_classes,
            "feature_dim": self.feature_dim,
        }

    @classmethod
    def from_preset(cls, handle=CLASSIFIER_PRESET, load_weights=True, sha256=None):
        """The classifier stored in a preset (default: the zoo's `fashion_mnist_classifier`)."""
        from aae_keras import presets

        return presets.load(handle, load_weights=load_weights, expected_class=cls, sha256=sha256)


def train_classifier(dataset, epochs=10, batch_size=128, seed=0, verbose=0, backup=None):
    """A `FashionClassifier` trained on `dataset`'s training split: (classifier, {"test_accuracy", ...});
    with `backup` (a folder), a killed run resumes from it (`callbacks.ResumeFromBackup`)."""
    from aae_keras import callbacks

    keras.utils.set_random_seed(seed)
    classifier = FashionClassifier(image_shape=dataset.image_shape, num_classes=dataset.num_classes)
    classifier.compile()
    resume = callbacks.ResumeFromBackup(backup or tempfile.mkdtemp(), seed)
    try:
        classifier.fit(
            dataset.x_train, dataset.y_train, epochs=epochs, batch_size=batch_size, verbose=verbose, callbacks=[resume]
        )
    finally:
        if backup is None:
            shutil.rmtree(resume.directory, ignore_errors=True)
    accuracy = float(np.mean(classifier.classify(dataset.x_test) == dataset.y_test))
    floor = frechet_distance(classifier.features(dataset.x_train[:NUM_SAMPLES]), classifier.features(dataset.x_test))
    return classifier, {
        "test_accuracy": accuracy,
        "train_accuracy": resume.logs["accuracy"],
        "frechet_train_vs_test": floor,
        "epochs": epochs,
    }


def frechet_distance(a, b):
    """Frechet distance between Gaussians fitted to two feature sets [n, d]:
    |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)), computed through symmetric square
    roots (exact for PSD covariances, no complex parts)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(
            f"frechet_distance needs two feature sets [n, d] with the same d and n >= 2, got {a.shape} and {b.shape}."
        )
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root_a = _psd_sqrt(np.atleast_2d(cov_a))
    cross = _psd_sqrt(root_a @ np.atleast_2d(cov_b) @ root_a)  # its trace is tr((S_a S_b)^(1/2))
    gap = a.mean(axis=0) - b.mean(axis=0)
    return float(gap @ gap + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(cross))


def _psd_sqrt(matrix):
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2.0)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def score(model, dataset, classifier=None, n=NUM_SAMPLES, seed=0):
    """{"frechet_distance"} of `n` decoded prior samples to the test images, plus
    {"sample_class_accuracy"} for a class-conditional model; {} for data the classifier does
    not know (anything but Fashion-MNIST). `classifier` defaults to the zoo's preset."""
    if dataset.name not in SCORED_DATASETS or not callable(getattr(model, "sample", None)):
        return {}
    classifier = classifier or FashionClassifier.from_preset()
    real = classifier.features(dataset.x_test[:n])
    quality = {"frechet_distance": frechet_distance(classifier.features(model.sample(n, seed=seed)), real)}
    if getattr(model, "samples_by_class", False):
        per_class = max(1, n // model.num_classes)
        hits = [
            np.mean(classifier.classify(model.sample(per_class, y=k, seed=seed + 1 + k)) == k)
            for k in range(model.num_classes)
        ]
        quality["sample_class_accuracy"] = float(np.mean(hits))
    return quality
