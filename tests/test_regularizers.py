import keras
import numpy as np
import pytest

from aae_keras import kernels, priors, regularizers
from conftest import tensorflow_only

FULL_COV_MIXTURE = dict(
    means=[[0.0, 0.0], [3.0, 0.0], [0.0, 2.0]],
    covariances=[np.eye(2), [[2.0, 0.5], [0.5, 1.0]], [[0.3, -0.2], [-0.2, 0.5]]],
    weights=[0.5, 0.3, 0.2],
)
CLOSED_FORM_PRIORS = {
    "ring_diagonal_mixture": lambda: priors.gaussian_mixture(10, 2),
    "diagonal_mixture_3d": lambda: priors.gaussian_mixture(5, 3, radius=2.0, scales=[0.3, 0.5, 0.7, 0.4, 0.6]),
    "full_covariance_mixture": lambda: priors.gaussian_mixture(**FULL_COV_MIXTURE),
    "gaussian_8d": lambda: priors.gaussian(8),
    "uniform_box": lambda: priors.uniform(3, -1.0, [1.0, 2.0, 0.5]),
    "categorical": lambda: priors.categorical(5, probs=[0.1, 0.2, 0.3, 0.2, 0.2]),
    "class_and_style": lambda: priors.class_and_style(3, priors.gaussian_mixture(2, 2, radius=1.0, scale=0.7)),
}
MC_SAMPLES = 2_000_000


def _mc_kernel(a, b, bandwidths, weights):
    d2 = np.sum((a - b) ** 2, axis=-1)
    return sum(w * np.exp(-d2 / (2 * s * s)) for s, w in zip(bandwidths, weights))


@pytest.mark.parametrize("name", sorted(CLOSED_FORM_PRIORS))
def test_closed_forms_match_monte_carlo(name):
    """m_p(z) and E_pp against 2e6 prior samples, over the whole "auto" multi-bandwidth ladder."""
    prior = CLOSED_FORM_PRIORS[name]()
    reg = regularizers.ClosedFormMMD(prior)
    assert len(reg.bandwidths) >= 3
    y = np.asarray(prior.sample(MC_SAMPLES, seed=(1, 2)), np.float64)
    y2 = np.asarray(prior.sample(MC_SAMPLES, seed=(3, 4)), np.float64)
    z = np.asarray(prior.sample(4, seed=(5, 6)), np.float64) + np.linspace(-1.0, 1.5, 4)[:, None]
    closed = np.asarray(reg.kernel_mean(z.astype("float32")), np.float64)
    for i in range(len(z)):
        assert abs(closed[i] - np.mean(_mc_kernel(y, z[i], reg.bandwidths, reg.weights))) < 1e-3
    assert abs(reg.kernel_mean.self_mean - np.mean(_mc_kernel(y, y2, reg.bandwidths, reg.weights))) < 1e-3


def test_full_covariance_differs_from_its_diagonal():
    """The full-covariance path really uses the off-diagonal terms."""
    full = priors.gaussian_mixture(**FULL_COV_MIXTURE)
    diag = priors.gaussian_mixture(
        means=FULL_COV_MIXTURE["means"],
        scales=np.sqrt([np.diag(np.asarray(c)) for c in FULL_COV_MIXTURE["covariances"]]),
        weights=FULL_COV_MIXTURE["weights"],
    )
    z = np.array([[1.0, 1.0], [2.0, -1.0]], np.float32)
    ladder = [0.5, 1.0]
    a = regularizers.ClosedFormMMD(full, bandwidths=ladder).kernel_mean
    b = regularizers.ClosedFormMMD(diag, bandwidths=ladder).kernel_mean
    assert np.max(np.abs(np.asarray(a(z)) - np.asarray(b(z)))) > 5e-3


def test_estimator_is_unbiased():
    """Mean of many n=50 estimates equals the true MMD^2 between q and p within its std error."""
    p = priors.gaussian_mixture(10, 2)
    q = priors.gaussian_mixture(10, 2, radius=3.0, scale=0.8)
    reg = regularizers.ClosedFormMMD(p)
    e_qq = kernels.PriorKernelMean(priors.describe(q), reg.bandwidths, reg.weights).self_mean
    z_big = np.asarray(q.sample(1_000_000, seed=(7, 7)), np.float32)
    e_qp = np.mean(np.concatenate([np.asarray(reg.kernel_mean(c)) for c in np.split(z_big, 20)]))
    truth = e_qq - 2 * e_qp + reg.kernel_mean.self_mean
    batches = keras.ops.reshape(q.sample(2000 * 50, seed=(8, 8)), (2000, 50, 2))
    estimates = np.asarray(keras.ops.convert_to_numpy(keras.ops.vectorized_map(reg, batches)), np.float64)
    stderr = estimates.std() / np.sqrt(len(estimates))
    assert truth > 0.01
    assert abs(estimates.mean() - truth) < 3 * stderr + 2e-4
    # the biased V-statistic (diagonal kept) is off by far more than the error bar
    assert abs(estimates.mean() + (1.0 - e_qq) / 49.0 - truth) > 10 * stderr


def test_estimate_is_near_zero_for_prior_samples_and_can_be_negative():
    prior = priors.gaussian_mixture(10, 2)
    reg = regularizers.ClosedFormMMD(prior)
    values = [float(reg(prior.sample(100, seed=(i, 0)))) for i in range(30)]
    assert abs(np.mean(values)) < 0.01
    assert min(values) < 0.0


@tensorflow_only
def test_default_ladder_keeps_gradients_alive_far_from_the_ring():
    """Codes 20 units outside the ring still get pulled in; a single small bandwidth gives none."""
    import tensorflow as tf

    ring = priors.gaussian_mixture(10, 2, radius=4.0, scale=0.5)
    rng = np.random.default_rng(0)
    z = tf.constant(np.array([24.0, 0.0]) + 0.3 * rng.normal(size=(100, 2)), tf.float32)
    grads = {}
    for name, reg in {
        "auto": regularizers.ClosedFormMMD(ring),
        "single": regularizers.ClosedFormMMD(ring, [0.5]),
    }.items():
        with tf.GradientTape() as tape:
            tape.watch(z)
            loss = reg(z)
        grads[name] = np.asarray(tape.gradient(loss, z))
    assert regularizers.ClosedFormMMD(ring).bandwidths == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0]
    # the pairwise term is translation invariant, so the summed gradient is the pull of the
    # prior; descent moves codes by -grad, towards the ring when the x-gradient is positive
    pull = grads["auto"].sum(axis=0)
    assert pull[0] > 1e-3 and abs(pull[1]) < 0.2 * pull[0], pull
    assert np.abs(grads["single"].sum(axis=0)).max() < 1e-6  # float32 rounding only


def test_high_dimensional_gaussian_does_not_underflow():
    reg = regularizers.ClosedFormMMD(priors.gaussian(256))
    z = np.random.default_rng(0).normal(size=(100, 256)).astype("float32")
    assert reg.kernel_mean.self_mean > 1e-3
    assert abs(float(reg(z))) < 0.01
    assert float(reg(z + 3.0)) > 0.1


def test_ladder_is_in_the_config_and_round_trips():
    reg = regularizers.ClosedFormMMD(priors.gaussian(8))
    config = reg.get_config()
    np.testing.assert_allclose(np.square(config["bandwidths"]), 8 * 2.0 ** np.arange(-3, 4))
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(reg))
    z = np.random.default_rng(1).normal(size=(20, 8)).astype("float32")
    np.testing.assert_allclose(float(again(z)), float(reg(z)), rtol=1e-6)


def test_imq_ladder_approximates_the_imq_kernel():
    scale = 3.0
    s, w = kernels.imq_ladder(scale)
    r2 = scale * np.concatenate([[0.0], np.logspace(-3, 2, 200)])
    approx = np.asarray(kernels.rbf_ladder(r2, s, w))
    np.testing.assert_allclose(approx, scale / (scale + r2), rtol=1e-2)


@pytest.mark.parametrize("kernel", ["rbf", "imq"])
def test_sample_mmd_separates_matching_and_shifted_codes(kernel):
    prior = priors.swiss_roll()
    reg = regularizers.SampleMMD(prior, kernel=kernel)
    same = np.mean([float(reg(prior.sample(200, seed=(i, 1)))) for i in range(10)])
    shifted = np.mean([float(reg(prior.sample(200, seed=(i, 1)) + 2.0)) for i in range(10)])
    assert abs(same) < 0.01 and shifted > 0.05


def test_sample_mmd_agrees_with_closed_form_on_average():
    prior = priors.gaussian_mixture(10, 2)
    q = priors.gaussian(2, 2.0)
    closed = regularizers.ClosedFormMMD(prior)
    sampled = regularizers.SampleMMD(prior, bandwidths=closed.bandwidths)
    zs = [q.sample(100, seed=(i, 2)) for i in range(200)]
    a = np.mean([float(closed(z)) for z in zs])
    b = np.array([float(sampled(z, seed=(i, 3))) for i, z in enumerate(zs)])
    assert abs(a - b.mean()) < 3 * b.std() / np.sqrt(len(b))


def test_bad_regularizer_input_is_clear():
    with pytest.raises(ValueError, match="SampleMMD"):
        regularizers.ClosedFormMMD(priors.swiss_roll())
    with pytest.raises(ValueError, match="positive"):
        regularizers.ClosedFormMMD(priors.gaussian(2), bandwidths=[1.0, 0.0])
    with pytest.raises(ValueError, match="positive"):
        regularizers.ClosedFormMMD(priors.gaussian(2), bandwidths=[-1.0])
    with pytest.raises(ValueError, match="one per bandwidth"):
        regularizers.ClosedFormMMD(priors.gaussian(2), bandwidths=[1.0, 2.0], weights=[1.0])
    with pytest.raises(ValueError, match="3 dimensions but the prior has event size 2"):
        regularizers.ClosedFormMMD(priors.gaussian(2))(np.zeros((4, 3), "float32"))


def test_block_matrix_and_einsum_paths_agree():
    info = priors.describe(priors.gaussian_mixture(12, 6))
    ladder = kernels.auto_bandwidths(info)
    kernel_mean = kernels.PriorKernelMean(info, ladder, [1.0 / len(ladder)] * len(ladder))
    z = np.random.default_rng(0).normal(scale=3.0, size=(5, 6)).astype("float32")
    fast = np.asarray(kernel_mean(z))
    kernel_mean.quad_matrix = None  # what mixtures too large for the block matrix use
    np.testing.assert_allclose(np.asarray(kernel_mean(z)), fast, rtol=1e-5)


def test_conditional_mmd_is_the_share_weighted_per_class_closed_form():
    """ConditionalMMD equals the per-group ClosedFormMMD (component c, or the whole mixture for
    label -1) on the same ladder, weighted by group share; ~0 for codes from the right components."""
    prior = priors.gaussian_mixture(3, 2)
    reg = regularizers.ConditionalMMD(prior)
    rng = np.random.default_rng(0)
    z = rng.normal(size=(60, 2)).astype("float32") * 2
    labels = np.r_[np.zeros(25), np.ones(20), np.full(10, -1), [2]].astype(int)[rng.permutation(56)]
    z = z[:56]
    info = priors.describe(prior)
    expected = 0.0
    for group, spec in [(0, priors.component(info, 0)), (1, priors.component(info, 1)), (-1, info)]:
        single = regularizers.ClosedFormMMD(priors.from_description(spec), bandwidths=reg.bandwidths)
        members = labels == group
        expected += members.sum() / 55 * float(single(z[members]))  # class 2 has 1 code: skipped
    assert float(reg(z, labels)) == pytest.approx(expected, rel=1e-4)

    per_component = np.stack(
        [np.asarray(prior.sample(300, seed=(4, k), components=np.full(300, k))) for k in range(3)], 1
    )
    right = np.repeat(np.arange(3)[None], 300, axis=0)
    values = [float(reg(per_component[:, k], right[:, k])) for k in range(3)]
    assert max(abs(v) for v in values) < 0.01
    assert float(reg(per_component[:, 0], np.full(300, 1))) > 0.5  # codes of component 0 labeled 1
    with pytest.raises(ValueError, match="one component per class"):
        regularizers.ConditionalMMD(priors.gaussian(2))


def test_the_joint_mmd_sees_a_style_that_depends_on_the_class():
    """Each of 4 classes keeps its styles in its own quadrant: the styles' marginal is exactly
    N(0, I), so the MMD of z alone cannot see that z holds the class; the MMD of [y, z]
    against p(y) p(z) can."""
    rng = np.random.default_rng(0)
    n, k = 2000, 4
    classes = np.arange(n) % k
    y = np.eye(k)[classes]
    quadrant = np.stack([np.where(classes % 2, -1.0, 1.0), np.where(classes // 2, -1.0, 1.0)], axis=1)
    z = np.abs(rng.normal(size=(n, 2))) * quadrant
    independent = rng.normal(size=(n, 2))
    style_alone = regularizers.ClosedFormMMD(priors.gaussian(2))
    joint = regularizers.ClosedFormMMD(priors.class_and_style(k, priors.gaussian(2)))

    def estimate(regularizer, codes):
        return float(regularizer(codes.astype("float32")))

    assert abs(estimate(style_alone, z)) < 2e-3
    assert abs(estimate(joint, np.hstack([y, independent]))) < 2e-3
    assert estimate(joint, np.hstack([y, z])) > 10 * max(abs(estimate(style_alone, z)), 2e-3)


def test_class_and_style_is_a_mixture_of_point_mass_classes_and_styles():
    prior = priors.class_and_style(3, priors.gaussian_mixture(2, 2))
    info = priors.describe(prior)
    assert prior.dim == 5 and info["means"].shape == (6, 5) and np.allclose(info["weights"], 1 / 6)
    samples = np.asarray(prior.sample(600, seed=0))
    assert set(map(tuple, samples[:, :3])) == {(1, 0, 0), (0, 1, 0), (0, 0, 1)}
    assert np.bincount(samples[:, :3].argmax(1)).min() > 150
    assert priors.from_config(priors.to_config(prior)).dim == 5
    with pytest.raises(NotImplementedError, match="no density"):
        prior.log_prob(samples)
    with pytest.raises(ValueError, match="Gaussian or a Gaussian mixture"):
        priors.class_and_style(3, priors.uniform(2))
