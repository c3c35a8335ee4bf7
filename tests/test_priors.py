import numpy as np
import pytest

from aae_keras import priors
from conftest import tensorflow_only


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
    np.testing.assert_allclose(
        np.asarray(rebuilt.sample(5, seed=(3, 3))), np.asarray(prior.sample(5, seed=(3, 3))), rtol=1e-5
    )


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


def test_mixture_samples_have_the_mixture_moments():
    cov = np.array([[[1.0, 0.6], [0.6, 2.0]], [[0.5, 0.0], [0.0, 0.25]]])
    prior = priors.gaussian_mixture(means=[[0.0, 0.0], [6.0, 0.0]], covariances=cov, weights=[0.3, 0.7])
    y = np.asarray(prior.sample(40000, seed=3), np.float64)
    first = y[:, 0] < 3.0
    assert first.mean() == pytest.approx(0.3, abs=0.01)
    np.testing.assert_allclose(np.cov(y[first].T), cov[0], atol=0.06)
    np.testing.assert_allclose(np.cov(y[~first].T), cov[1], atol=0.03)


def test_components_pick_the_mixture_component_of_each_sample():
    ring = priors.gaussian_mixture(10, 2, radius=4.0, scale=0.1)
    means = ring.describe()["means"]
    components = np.array([3, 3, -1, 7] * 50)
    y = np.asarray(ring.sample(200, seed=(1, 2), components=components))
    nearest = np.argmin(np.linalg.norm(y[:, None] - means[None], axis=-1), axis=1)
    fixed = components >= 0
    np.testing.assert_array_equal(nearest[fixed], components[fixed])
    assert len(set(nearest[~fixed])) > 5  # the others come from the whole mixture


def test_sampling_is_stateless_and_seeded():
    ring = priors.gaussian_mixture(10, 2)
    np.testing.assert_array_equal(np.asarray(ring.sample(6, seed=4)), np.asarray(ring.sample(6, seed=4)))
    assert not np.allclose(np.asarray(ring.sample(6, seed=4)), np.asarray(ring.sample(6, seed=5)))


@pytest.mark.parametrize(
    "prior",
    [
        priors.gaussian_mixture(10, 2),
        priors.gaussian_mixture(
            means=[[0.0, 0.0], [3.0, 1.0]], covariances=[np.eye(2), [[2.0, 0.5], [0.5, 1.0]]], weights=[0.4, 0.6]
        ),
        priors.gaussian(3, 2.0),
        priors.uniform(2, -1.0, [1.0, 3.0]),
        priors.categorical(4, [0.1, 0.2, 0.3, 0.4]),
    ],
    ids=["ring", "full_covariance", "gaussian", "uniform", "categorical"],
)
@tensorflow_only
def test_log_prob_and_tfp_round_trip(prior):
    z = np.asarray(prior.sample(50, seed=9))
    tfp_log_prob = np.asarray(prior.distribution.log_prob(z))
    np.testing.assert_allclose(np.asarray(prior.log_prob(z)), tfp_log_prob, rtol=1e-4, atol=1e-4)
    again = priors.as_prior(prior.distribution).describe()
    for key, value in prior.describe().items():
        if isinstance(value, np.ndarray):
            np.testing.assert_allclose(again[key], value, rtol=1e-6)


@tensorflow_only
def test_other_tfp_distributions_are_sampled_through_tfp():
    import tensorflow_probability as tfp

    tfd = tfp.distributions
    student = tfd.Independent(tfd.StudentT(df=[3.0, 3.0], loc=[0.0, 0.0], scale=[1.0, 1.0]), 1)
    prior = priors.as_prior(student)
    assert prior.kind == "sample_only" and prior.distribution is student
    assert np.asarray(prior.sample(7, seed=1)).shape == (7, 2)
    with pytest.raises(ValueError, match="Cannot save a model whose prior is a Independent"):
        priors.to_config(student)


def test_importing_the_library_does_not_import_tfp():
    import subprocess
    import sys

    code = (
        "import sys, aae_keras\n"
        "from aae_keras import models, networks, priors\n"
        "enc, dec, disc = networks.build('mlp', (8, 8), 2, hidden=(8,))\n"
        "model = models.AdversarialAutoencoder(enc, dec, disc, priors.gaussian_mixture(10, 2))\n"
        "model.sample(3)\n"
        "assert 'tensorflow_probability' not in sys.modules, 'TFP was imported'\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]


@tensorflow_only
def test_a_users_tfp_prior_trains_saves_and_loads(tmp_path, digits):
    import keras

    from conftest import tiny_model

    tfp_ring = priors.gaussian_mixture(10, 2).distribution  # a tfd.MixtureSameFamily
    model = tiny_model("adversarial", prior=tfp_ring)
    assert model.prior.kind == "mixture"
    model.fit(digits.x_train[:200], epochs=1, batch_size=50, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.prior.describe()["means"], priors.describe(tfp_ring)["means"], rtol=1e-6)
