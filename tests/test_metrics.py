import numpy as np
import pytest

from aae_keras import metrics, priors

RING = priors.gaussian_mixture(10, 2, radius=4.0, scale=0.5)


def test_near_mode_fraction_of_prior_samples_matches_the_rayleigh_tail():
    """A 2-D N(mu, 0.25 I) sample lies within 1.5 of mu with probability 1 - exp(-4.5)."""
    samples = np.asarray(RING.sample(20000, seed=(1, 1)))
    assert metrics.near_mode_fraction(samples, RING) == pytest.approx(1 - np.exp(-4.5), abs=0.005)
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
