"""The paper's model family: every variant trains under both regularizers, saves, reloads,
resumes exactly, learns on digits, and rejects bad labels clearly."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from aae_keras import data, metrics, models, priors
from conftest import VARIANTS, tiny_variant, variant_labels

COMBOS = [(name, reg) for name in VARIANTS for reg in ("mmd", "adversarial")]
IDS = [f"{name}-{reg}" for name, reg in COMBOS]


def _xy(n=120, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(size=(n, 8, 8)).astype("float32"), rng.integers(0, 10, n)


def _reconstruct(model, x, y):
    return model.predict((x, y) if model.labels == "required" else x, verbose=0)


@pytest.mark.parametrize("name,regularizer", COMBOS, ids=IDS)
def test_variant_trains_saves_and_resumes_exactly(tmp_path, name, regularizer):
    """Train 2 epochs, save, load, train 1 more == 3 epochs straight; logs are finite."""
    x, y = _xy()
    y = variant_labels(name, y, labeled_fraction=1.0)  # full labels: no extra labeled batches
    straight = tiny_variant(name, regularizer)
    history = straight.fit(x, y, epochs=3, batch_size=40, shuffle=False, verbose=0)
    assert all(np.isfinite(v[-1]) for v in history.history.values()), history.history
    expected = {"reconstruction", "loss"} | (
        {"discriminator_loss", "discriminator_accuracy", "generator_loss"}
        if regularizer == "adversarial"
        else {"regularizer"}
    )
    assert expected <= set(history.history)

    first = tiny_variant(name, regularizer)
    first.fit(x, y, epochs=2, batch_size=40, shuffle=False, verbose=0)
    first.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert type(loaded) is type(first) and loaded.regularizer == regularizer
    np.testing.assert_array_equal(
        _reconstruct(loaded, x[:7], y[:7] if y is not None else None),
        _reconstruct(first, x[:7], y[:7] if y is not None else None),
    )
    loaded.fit(x, y, epochs=1, batch_size=40, shuffle=False, verbose=0)
    for a, b in zip(loaded.get_weights(), straight.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_partial_labels_get_a_labeled_batch_every_step():
    """5 labels at the end of 120 examples: even the first step trains the classifier, which
    plain batches in order (shuffle=False) would not give."""
    x, y = _xy()
    labels = np.r_[np.full(115, -1), y[115:]]
    first_batch = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: first_batch.append(logs["classification_loss"]) if batch == 0 else None
    )
    model = tiny_variant("semi_supervised")
    model.fit(x, labels, epochs=2, batch_size=40, shuffle=False, callbacks=[record], verbose=0)
    assert len(first_batch) == 2 and min(first_batch) > 0, first_batch


def test_family_api_shapes():
    x, _ = _xy(40)
    supervised = tiny_variant("supervised")
    assert supervised.decode(np.zeros((3, 2)), [0, 1, 2]).shape == (3, 8, 8)
    assert supervised.sample(4, y=7).shape == (4, 8, 8)
    assert supervised.style_grid(styles=2).shape == (20, 8, 8)
    semi = tiny_variant("semi_supervised")
    probabilities = semi.class_probabilities(x)
    assert probabilities.shape == (40, 10) and np.allclose(probabilities.sum(1), 1, atol=1e-5)
    assert semi.classify(x).shape == (40,) and semi.encode(x).shape == (40, 3)
    assert tiny_variant("clustering").cluster(x).max() < 16
    reduction = tiny_variant("dim_reduction")
    assert reduction.encode(x).shape == (40, 2) and reduction.decode(np.zeros((2, 2))).shape == (2, 8, 8)
    conditional = tiny_variant("label_conditioned")
    assert conditional.sample(3, y=[0, 4, 9]).shape == (3, 8, 8)


def test_label_conditioned_codes_go_to_their_class_component(digits):
    """With labels, class c's test codes land nearest to mixture component c."""
    model = tiny_variant("label_conditioned", hidden=(256, 256), weight=100.0)
    model.fit(digits.x_train, digits.y_train, epochs=30, batch_size=100, verbose=0)
    means = priors.describe(model.prior)["means"]
    codes = model.encode(digits.x_test)
    nearest = np.argmin(np.linalg.norm(codes[:, None] - means[None], axis=-1), axis=1)
    assert np.mean(nearest == digits.y_test) > 0.8


def test_head_penalty_pushes_cluster_heads_apart():
    x, _ = _xy()
    model = tiny_variant("dim_reduction", head_distance=50.0)
    before = model.evaluate(x, verbose=0, return_dict=True)["head_penalty"]
    model.fit(x, epochs=5, batch_size=40, verbose=0)
    assert model.evaluate(x, verbose=0, return_dict=True)["head_penalty"] < before


def test_bad_labels_are_clear():
    x, y = _xy(40)
    semi = tiny_variant("semi_supervised")
    with pytest.raises(ValueError, match=r"Labels must lie in 0\.\.9 .*got values from 0 to 12"):
        semi.fit(x, np.r_[y[:-1], 12], epochs=1, verbose=0)
    with pytest.raises(ValueError, match="one per example"):
        semi.fit(x, y[:10], epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"holds a label outside -1\.\.9"):  # labels inside a tf.data pipeline
        semi.fit(tf.data.Dataset.from_tensor_slices((x, np.r_[y[:-1], 10])).batch(20), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="Labels must lie in 0..9"):
        tiny_variant("supervised").fit(x, np.r_[y[:-1], -1], epochs=1, verbose=0)
    with pytest.raises(ValueError, match="learns without labels"):
        tiny_variant("clustering").fit(x, y, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="does not match the prior's 10 components"):
        models.LabelConditionedAutoencoder.create((8, 8), priors.gaussian_mixture(10, 2), 12, hidden=(8,))
    with pytest.raises(ValueError, match="Gaussian mixture with one component per class"):
        models.LabelConditionedAutoencoder.create((8, 8), priors.gaussian(2), hidden=(8,))
    with pytest.raises(ValueError, match="Cannot keep 500 labels: the data has 40"):
        data.keep_labels(y, 500)
    with pytest.raises(ValueError, match="needs an encoder with 13 outputs, got 5"):
        models.SemiSupervisedAutoencoder(
            keras.Sequential([keras.Input((8, 8)), keras.layers.Flatten(), keras.layers.Dense(5)]),
            keras.Sequential([keras.Input((13,)), keras.layers.Dense(64), keras.layers.Reshape((8, 8))]),
            priors.gaussian(3),
            10,
        )
    with pytest.raises(ValueError, match="Unknown regularizer 'gan'"):
        tiny_variant("supervised", regularizer="gan")


def labeled_part_alone(x, labels, seed=0):
    """The semi-supervised model's encoder as a plain classifier trained on the labeled examples."""
    keras.utils.set_random_seed(seed)
    classifier = keras.Sequential(
        [
            keras.Input(x.shape[1:]),
            keras.layers.Flatten(),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    classifier.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    labeled = labels >= 0
    classifier.fit(x[labeled], labels[labeled], epochs=200, batch_size=32, verbose=0)
    return classifier


@pytest.mark.large
@pytest.mark.parametrize("regularizer", ["mmd", "adversarial"])
def test_semi_supervised_beats_the_labeled_part_alone(digits, regularizer):
    """10% of digits labels (144): the semi-supervised model beats its encoder trained on them alone.

    benchmarks/digits_family.py measures seeds 0-2 (see the README); seed 0 here. About 20 s
    each on 2 cores, so opt-in (--run-large).
    """
    labels = data.keep_labels(digits.y_train, 144, seed=0)
    model = tiny_variant("semi_supervised", regularizer, hidden=(256, 256), weight=100.0)
    model.fit(digits.x_train, labels, epochs=120, batch_size=100, labeled_batch_size=32, verbose=0)
    semi = 1 - metrics.classification_error(digits.y_test, model.classify(digits.x_test))
    alone = labeled_part_alone(digits.x_train, labels)
    baseline = float(np.mean(np.argmax(alone.predict(digits.x_test, verbose=0), 1) == digits.y_test))
    assert semi > baseline, (semi, baseline)


def test_clustering_is_clearly_above_chance(digits):
    """16 clusters on digits: measured accuracy 0.50 (MMD, 40 epochs); chance is about 0.1."""
    model = tiny_variant("clustering", hidden=(256, 256))
    model.fit(digits.x_train, epochs=40, batch_size=100, verbose=0)
    assignments = model.cluster(digits.x_test)
    assert metrics.cluster_accuracy(digits.y_test, assignments) > 0.35
    assert metrics.nmi(digits.y_test, assignments) > 0.3


def test_input_noise_trains_on_noisy_images_and_encodes_clean_ones(tmp_path):
    """`input_noise` perturbs the encoder's input in training only, reproducibly, and is saved."""
    x, y = _xy()
    labels = data.keep_labels(y, 20)
    clean, noisy = tiny_variant("semi_supervised", input_noise=0.0), tiny_variant("semi_supervised", input_noise=0.5)
    np.testing.assert_array_equal(clean.class_probabilities(x), noisy.class_probabilities(x))  # same start
    for model in (clean, noisy):
        model.fit(x, labels, epochs=2, batch_size=40, verbose=0)
    again = tiny_variant("semi_supervised", input_noise=0.5)
    again.fit(x, labels, epochs=2, batch_size=40, verbose=0)
    assert any(np.abs(a - b).max() > 1e-4 for a, b in zip(clean.get_weights(), noisy.get_weights()))
    for a, b in zip(noisy.get_weights(), again.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_array_equal(noisy.class_probabilities(x), noisy.class_probabilities(x))  # no noise here
    noisy.save(tmp_path / "noisy.keras")
    assert keras.saving.load_model(tmp_path / "noisy.keras").input_noise == 0.5
    with pytest.raises(ValueError, match="input_noise must be a number >= 0"):
        tiny_variant("semi_supervised", input_noise=-0.1)


def test_joint_matching_matches_class_and_style_as_one_slot(tmp_path):
    """joint_matching with MMD: one slot, [y, z] against p(y) p(z); adversarially, and by
    default, y and z apart. Saved models keep the choice; files from before it load apart."""
    model = tiny_variant("semi_supervised", joint_matching=True)
    assert [slot.name for slot in model.slots] == ["yz"] and model.slots[
        0
    ].prior.dim == model.num_classes + model.latent_dim
    adversarial = tiny_variant("semi_supervised", "adversarial", joint_matching=True)
    assert [slot.name for slot in adversarial.slots] == ["y", "z"]
    assert [slot.name for slot in tiny_variant("semi_supervised").slots] == ["y", "z"]
    x, y = _xy()
    model.fit(x, data.keep_labels(y, 20), epochs=1, batch_size=40, verbose=0)
    model.save(tmp_path / "joint.keras")
    assert [slot.name for slot in keras.saving.load_model(tmp_path / "joint.keras").slots] == ["yz"]
    config = model.get_config()
    del config["joint_matching"]  # as written before it existed
    assert type(model).from_config(config).joint_matching is False
