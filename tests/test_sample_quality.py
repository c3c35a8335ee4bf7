"""Sample quality: the Frechet distance, the Fashion-MNIST classifier (and its zoo preset), and
`score` for generative and class-conditional models."""

import numpy as np
import pytest
import scipy.linalg

from aae_keras import data, presets, sample_quality
from aae_keras.sample_quality import FashionClassifier, frechet_distance
from conftest import tiny_model, tiny_variant

FASHION = presets.ZOO_DIR.parent.parent / "shared" / "data" / "fashion-mnist"


def reference_distance(a, b):
    """The textbook formula with scipy's general matrix square root."""
    mu_a, mu_b, cov_a, cov_b = a.mean(0), b.mean(0), np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b - 2 * root))


def test_frechet_distance_matches_the_textbook_formula():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3000, 6)) @ rng.normal(size=(6, 6))
    b = rng.normal(size=(2000, 6)) * 2.0 + 0.5
    assert frechet_distance(a, b) == pytest.approx(reference_distance(a, b), rel=1e-6)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    assert frechet_distance(a, a + 3.0) == pytest.approx(6 * 9.0, rel=1e-9)  # a shift adds |shift|^2
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-9)


@pytest.mark.parametrize(
    "a, b", [(np.zeros((5, 3)), np.zeros((5, 4))), (np.zeros(5), np.zeros(5)), (np.zeros((1, 3)), np.zeros((5, 3)))]
)
def test_frechet_distance_refuses_mismatched_features(a, b):
    with pytest.raises(ValueError, match="two feature sets"):
        frechet_distance(a, b)


def test_the_classifier_round_trips_as_a_preset(tmp_path):
    rng = np.random.default_rng(0)
    classifier = FashionClassifier()
    classifier.compile()
    classifier.fit(rng.uniform(size=(64, 28, 28)).astype("float32"), rng.integers(10, size=64), epochs=1, verbose=0)
    presets.save(classifier, tmp_path / "classifier", name="classifier")
    loaded = FashionClassifier.from_preset(tmp_path / "classifier")
    images = rng.uniform(size=(7, 28, 28)).astype("float32")
    np.testing.assert_allclose(loaded.features(images), classifier.features(images), atol=1e-5)
    np.testing.assert_array_equal(loaded.classify(images[..., None]), classifier.classify(images))
    with pytest.raises(ValueError, match=r"images of shape \(n, 28, 28\)"):
        loaded.features(np.zeros((2, 8, 8)))
    with pytest.raises(presets.PresetError, match="not FashionClassifier"):
        FashionClassifier.from_preset("digits_mmd_mog10")


def _fake_fashion(n=200, seed=0):
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(size=(n, 28, 28)).astype("float32"), rng.integers(10, size=n)
    return data.Dataset(x, y, x, y, name="fashion_mnist", num_classes=10)


def test_score_reports_the_distance_and_the_class_accuracy_where_they_apply():
    classifier, dataset = FashionClassifier(), _fake_fashion()
    plain = sample_quality.score(tiny_model("mmd", image_shape=(28, 28)), dataset, classifier, n=200)
    assert set(plain) == {"frechet_distance"} and plain["frechet_distance"] > 0
    conditional = sample_quality.score(
        tiny_variant("semi_supervised", image_shape=(28, 28)), dataset, classifier, n=200
    )
    assert set(conditional) == {"frechet_distance", "sample_class_accuracy"}
    assert 0.0 <= conditional["sample_class_accuracy"] <= 1.0
    clusters = tiny_variant("clustering", image_shape=(28, 28))
    assert set(sample_quality.score(clusters, dataset, classifier, n=200)) == {"frechet_distance"}
    assert sample_quality.score(tiny_model("mmd"), data.load("digits"), classifier) == {}  # no digits classifier


def test_class_accuracy_counts_samples_of_the_asked_class():
    """A model whose class-c samples are images the classifier calls c scores 1 on those classes."""

    class Drawer:
        samples_by_class, num_classes = True, 10

        def __init__(self, images, order):
            self.images, self.order = images, order

        def sample(self, n, y=None, seed=None):
            return self.images[np.full(n, self.order[y]) if y is not None else np.arange(n) % 10]

    classifier = FashionClassifier()
    images = np.random.default_rng(1).uniform(size=(10, 28, 28)).astype("float32")
    predicted = classifier.classify(images)
    order = {c: int(np.flatnonzero(predicted == c)[0]) for c in set(predicted.tolist())}
    truthful = Drawer(images, {c: order.get(c, 0) for c in range(10)})
    expected = np.mean([c in order for c in range(10)])
    scored = sample_quality.score(truthful, _fake_fashion(), classifier, n=100)
    assert scored["sample_class_accuracy"] == pytest.approx(expected)


def test_the_shipped_classifier_reaches_its_recorded_accuracy():
    if not FASHION.is_dir():
        pytest.skip(f"Fashion-MNIST is not at {FASHION}")
    entry = presets.info(sample_quality.CLASSIFIER_PRESET)
    assert entry["shipped"] and entry["model_class"] == "FashionClassifier"
    classifier = FashionClassifier.from_preset()
    x, y = data.load("fashion_mnist", data_dir=FASHION, split="test")
    accuracy = float(np.mean(classifier.classify(x) == y))
    assert accuracy == pytest.approx(entry["metrics"]["test_accuracy"], abs=1e-6) and accuracy > 0.88
