import numpy as np
import pytest
from scipy.special import logsumexp

from aae_keras import metrics, priors

RING = priors.gaussian_mixture(10, 2, radius=4.0, scale=0.5)


def test_near_mode_fraction_of_prior_samples_matches_the_rayleigh_tail():
    """A 2-D N(mu, 0.25 I) sample lies within 1.5 of mu with probability 1 - exp(-4.5) (a ring of
    radius 8: the modes are 4.9 apart, so a sample is hardly ever near a neighbouring mode)."""
    wide = priors.gaussian_mixture(10, 2, radius=8.0, scale=0.5)
    samples = np.asarray(wide.sample(20000, seed=(1, 1)))
    assert metrics.near_mode_fraction(samples, wide) == pytest.approx(1 - np.exp(-4.5), abs=0.003)
    assert metrics.near_mode_fraction(np.zeros((10, 2)), RING) == 0.0
    with pytest.raises(ValueError, match="Gaussian-mixture"):
        metrics.near_mode_fraction(samples, priors.uniform(2))


def test_mmd_to_prior_picks_the_estimator_and_separates_fits():
    good = np.asarray(RING.sample(500, seed=(2, 2)))
    value, method = metrics.mmd_to_prior(good, RING)
    assert method == "closed_form" and abs(value) < 0.01
    assert metrics.mmd_to_prior(good * 0.3, RING)[0] > 0.1
    roll = priors.swiss_roll()
    value, method = metrics.mmd_to_prior(np.asarray(roll.sample(500, seed=(3, 3))), roll)
    assert method == "sample" and abs(value) < 0.02


def test_cluster_accuracy_matches_hand_counts_and_picks_the_mapping():
    assert metrics.cluster_accuracy([0, 0, 1, 1, 2, 2], [5, 5, 3, 3, 4, 4]) == 1.0
    # clusters {0: three 0s}, {1: two 0s and a 1}: one-to-one maps cluster 1 to class 1 (4/6 right),
    # many-to-one gives both clusters class 0 (5/6 right).
    labels, clusters = [0, 0, 0, 0, 0, 1], [0, 0, 0, 1, 1, 1]
    assert metrics.cluster_accuracy(labels, clusters) == pytest.approx(4 / 6)
    assert metrics.cluster_accuracy(labels, clusters, mapping="majority") == pytest.approx(5 / 6)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 10000)
    pure = labels * 3 + rng.integers(0, 3, 10000)  # 30 clusters, each pure: many-to-one by default
    assert metrics.cluster_accuracy(labels, pure) == 1.0
    assert metrics.cluster_accuracy(labels, pure, mapping="hungarian") == pytest.approx(1 / 3, abs=0.03)
    assert 0.1 <= metrics.cluster_accuracy(labels, rng.integers(0, 10, 10000)) < 0.15
    assert metrics.classification_error(labels, labels) == 0.0
    assert metrics.classification_error([1, 2, 3, 4], np.array([1.0, 2.0, 0.0, 0.0])) == 0.5


def test_nmi_matches_sklearn():
    from sklearn.metrics import normalized_mutual_info_score

    rng = np.random.default_rng(1)
    labels = rng.integers(0, 10, 2000)
    noisy = np.where(rng.random(2000) < 0.3, rng.integers(0, 16, 2000), labels)
    cases = [
        (labels, rng.integers(0, 10, 2000)),
        (labels, rng.integers(0, 30, 2000)),
        (labels, noisy),
        (labels, labels // 3),
        ([0, 0, 1, 1], [0, 1, 0, 1]),
        ([2, 2, 2], [7, 7, 7]),
        ([2, 2, 2], [0, 1, 2]),
    ]
    for truth, clusters in cases:
        expected = normalized_mutual_info_score(truth, clusters)
        assert metrics.nmi(truth, clusters) == pytest.approx(expected, abs=1e-10)
    assert metrics.nmi(labels, (labels + 3) % 10) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(
    "bad, match",
    [
        (([0, 1], [0, 1, 1]), "lengths 2 and 3"),
        (([], []), "non-empty 1-D"),
        (([[0, 1]], [[0, 1]]), "non-empty 1-D"),
        (([0.5, 1], [0, 1]), "integer labels"),
        ((["a", "b"], [0, 1]), "integer labels"),
    ],
)
def test_label_metrics_reject_bad_input(bad, match):
    for metric in (metrics.cluster_accuracy, metrics.nmi, metrics.classification_error):
        with pytest.raises(ValueError, match=match):
            metric(*bad)
    with pytest.raises(ValueError, match="mapping"):
        metrics.cluster_accuracy([0, 1], [0, 1], mapping="greedy")


def test_parzen_log_likelihood_matches_brute_force_in_batches():
    rng = np.random.default_rng(2)
    x, samples, sigma = rng.normal(size=(7, 5)), rng.normal(size=(13, 5)) + 0.5, 0.7
    log_norm = -2.5 * np.log(2 * np.pi * sigma**2)
    log_densities = [[log_norm - np.sum((xi - s) ** 2) / (2 * sigma**2) for s in samples] for xi in x]
    expected = logsumexp(np.array(log_densities), axis=1) - np.log(13)
    for batch_size in (3, 1000):
        got = metrics.parzen_log_likelihood(x, samples, sigma, batch_size=batch_size)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    images = metrics.parzen_log_likelihood(x.reshape(7, 5, 1), samples.reshape(13, 1, 5), sigma, batch_size=4)
    np.testing.assert_allclose(images, expected, rtol=0, atol=1e-9)
    far = metrics.parzen_log_likelihood(x + 100, samples, 0.1)  # every exp underflows without log-sum-exp
    assert np.all(np.isfinite(far)) and np.all(far < -1e5)


def test_parzen_bandwidth_and_evaluate_recover_a_known_gaussian():
    """Samples, validation and test from N(0, 0.3^2 I_2); Silverman's rule says sigma ~ 0.08."""
    rng = np.random.default_rng(3)
    samples, validation, test = (rng.normal(0, 0.3, (size, 2)) for size in (3000, 500, 500))
    grid = np.logspace(-2, 0, 9)
    best, scores = metrics.parzen_bandwidth(validation, samples, grid)
    assert grid[0] < best < grid[-1] and 0.03 < best < 0.2
    assert set(scores) == set(grid.tolist()) and scores[best] == max(scores.values())
    result = metrics.parzen_evaluate(test, validation, samples, grid)
    assert result["sigma"] == best and result["validation"] == scores
    true_ll = -np.sum(test**2, axis=1) / (2 * 0.09) - np.log(2 * np.pi * 0.09)
    assert result["mean"] == pytest.approx(true_ll.mean(), abs=0.05)  # smoothing bias is ~0.02 nats here
    test_ll = metrics.parzen_log_likelihood(test, samples, best)
    assert result["sem"] == pytest.approx(np.std(test_ll) / np.sqrt(500))


@pytest.mark.parametrize(
    "change, match",
    [
        ({"samples": np.zeros((5, 3))}, "same number of features"),
        ({"x": np.zeros((0, 4))}, "non-empty batch"),
        ({"x": np.zeros(4)}, "non-empty batch"),
        ({"x": np.full((3, 4), np.nan)}, "NaN or infinite"),
        ({"sigma": 0.0}, "finite and > 0"),
        ({"sigma": [0.1, 0.2]}, "single bandwidth"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_parzen_rejects_bad_input(change, match):
    good = {"x": np.zeros((3, 4)), "samples": np.zeros((5, 4)), "sigma": 0.2}
    with pytest.raises(ValueError, match=match):
        metrics.parzen_log_likelihood(**{**good, **change})
    with pytest.raises(ValueError, match="finite and > 0"):
        metrics.parzen_bandwidth(good["x"], good["samples"], [])
    with pytest.raises(ValueError, match="test and samples"):
        metrics.parzen_evaluate(np.zeros((3, 2)), good["x"], good["samples"])
