import numpy as np
import pytest

from aae_keras import priors


def test_ring_prior_matches_the_paper():
    ring = priors.gaussian_mixture(10, 2, radius=4.0, scale=0.5)
    info = priors.describe(ring)
    assert info["kind"] == "mixture"
    np.testing.assert_allclose(np.linalg.norm(info["means"], axis=1), 4.0, rtol=1e-6)
    np.testing.assert_allclose(info["variances"], 0.25, rtol=1e-6)
    np.testing.assert_allclose(info["weights"], 0.1, rtol=1e-6)


@pytest.mark.parametrize("k,d", [(8, 8), (16, 8), (30, 8)])
def test_higher_dimensional_mixtures_are_well_separated(k, d):
    means = priors.mixture_means(k, d, 4.0)
    gaps = np.linalg.norm(means[:, None] - means[None], axis=-1) + np.eye(k) * 100
    assert means.shape == (k, d)
    np.testing.assert_allclose(np.linalg.norm(means, axis=1), 4.0, rtol=1e-5)
    assert gaps.min() > 4.0  # well beyond the component std 0.5


def test_explicit_full_covariance_mixture_round_trips():
    cov = [np.eye(2), [[2.0, 0.5], [0.5, 1.0]]]
    prior = priors.gaussian_mixture(means=[[0.0, 0.0], [3.0, 0.0]], covariances=cov, weights=[0.3, 0.7])
    info = priors.describe(prior)
    np.testing.assert_allclose(info["covariances"], cov, rtol=1e-6)
    again = priors.describe(priors.from_config(priors.to_config(prior)))
    for key in ("weights", "means", "covariances"):
        np.testing.assert_allclose(again[key], info[key], rtol=1e-6)


@pytest.mark.parametrize(
    "prior",
    [priors.gaussian(3, 2.0), priors.uniform(2, -1.0, [1.0, 3.0]), priors.categorical(4), priors.swiss_roll()],
    ids=["gaussian", "uniform", "categorical", "swiss_roll"],
)
def test_factories_sample_and_serialize(prior):
    d = priors.event_size(prior)
    samples = np.asarray(prior.sample(1000, seed=1))
    assert samples.shape == (1000, d) and np.all(np.isfinite(samples))
    rebuilt = priors.from_config(priors.to_config(prior))
    np.testing.assert_allclose(np.asarray(rebuilt.sample(5, seed=(3, 3))), np.asarray(prior.sample(5, seed=(3, 3))), rtol=1e-5)


def test_sample_statistics():
    y = np.asarray(priors.uniform(2, -1.0, [1.0, 3.0]).sample(20000, seed=2))
    assert y[:, 0].min() >= -1 and y[:, 1].max() <= 3
    np.testing.assert_allclose(y.mean(0), [0.0, 1.0], atol=0.05)
    onehot = np.asarray(priors.categorical(4).sample(20000, seed=2))
    assert set(np.unique(onehot)) == {0.0, 1.0} and np.all(onehot.sum(1) == 1)
    np.testing.assert_allclose(onehot.mean(0), 0.25, atol=0.02)
    roll = np.asarray(priors.swiss_roll(radius=4.0).sample(20000, seed=2))
    assert np.linalg.norm(roll, axis=1).max() < 4.0 + 6 * 0.1


def test_bad_arguments_are_clear():
    with pytest.raises(ValueError, match="weights"):
        priors.gaussian_mixture(means=[[0.0], [1.0]], weights=[0.2, 0.2])
    with pytest.raises(ValueError, match="positive definite"):
        priors.gaussian_mixture(means=[[0.0, 0.0]], covariances=[[[1.0, 2.0], [2.0, 1.0]]])
    with pytest.raises(ValueError, match="high > low"):
        priors.uniform(2, 1.0, 0.0)
    with pytest.raises(ValueError, match="dim must be a positive integer"):
        priors.gaussian(0)
    with pytest.raises(TypeError, match="tfp.distributions"):
        priors.event_size(np.zeros(3))
