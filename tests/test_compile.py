"""One `compile` for every model, and models saved by aae-keras 0.1.0 loading unchanged."""

import json
from pathlib import Path

import keras
import numpy as np
import pytest

from aae_keras import data
from conftest import tiny_model, tiny_variant

RELEASE_0_1 = Path(__file__).parent / "data" / "release_0_1"  # written by the 0.1.0 code (tiny models)
MODELS = {
    "mmd": lambda: tiny_model("mmd"),
    "adversarial": lambda: tiny_model("adversarial"),
    "adversarial_paper": lambda: tiny_model("adversarial", schedule="paper"),
    "semi_supervised_mmd": lambda: tiny_variant("semi_supervised"),
    "semi_supervised_adversarial": lambda: tiny_variant("semi_supervised", "adversarial"),
    "clustering": lambda: tiny_variant("clustering"),
}
USES = {
    "mmd": {"optimizer"},
    "adversarial": {"optimizer", "discriminator_optimizer"},  # AdversarialAutoencoder: the joint schedule
    "adversarial_paper": {"optimizer", "discriminator_optimizer", "generator_optimizer"},
    "semi_supervised_mmd": {"optimizer", "classifier_optimizer"},
    "semi_supervised_adversarial": {
        "optimizer",
        "discriminator_optimizer",
        "generator_optimizer",
        "classifier_optimizer",
    },  # the paper's variants: the paper's schedule
    "clustering": {"optimizer"},
}
ALL = ("optimizer", "discriminator_optimizer", "generator_optimizer", "classifier_optimizer")


@pytest.mark.parametrize("name", MODELS)
def test_one_compile_signature(name):
    model = MODELS[name]()
    model.compile(optimizer=keras.optimizers.Adam(2e-3))  # works on every model
    assert float(model.optimizer.learning_rate) == pytest.approx(2e-3)
    for other in ALL[1:]:
        opt = getattr(model, other)
        assert (opt is not None) == (other in USES[name])
    if "discriminator_optimizer" in USES[name]:
        assert float(model.discriminator_optimizer.beta_1) == 0.5  # the "auto" default
    unused = [n for n in ALL if n not in USES[name]]
    for argument in unused:
        with pytest.raises(ValueError, match=f"has no {argument}"):
            model.compile(**{argument: keras.optimizers.Adam()})
    model.compile(**{n: "sgd" for n in USES[name]})  # names work too
    assert all(type(getattr(model, n)).__name__ == "SGD" for n in USES[name])


def test_the_semi_supervised_model_defaults_to_adam_1e4_for_every_phase():
    """Its own defaults (the core's 1e-3 let the classifier memorise its few labels); the
    clustering model keeps the core's."""
    for regularizer in ("mmd", "adversarial"):
        model = tiny_variant("semi_supervised", regularizer)
        for name in model._optimizer_groups():
            optimizer = model.phase_optimizer(name)
            assert float(optimizer.learning_rate) == pytest.approx(1e-4), name
            assert float(optimizer.beta_1) == (
                0.5 if name in ("discriminator_optimizer", "generator_optimizer") else 0.9
            )
    assert float(tiny_variant("clustering").optimizer.learning_rate) == pytest.approx(1e-3)


def test_ae_optimizer_is_an_alias_of_optimizer():
    aae = tiny_model("adversarial")
    aae.compile(ae_optimizer=keras.optimizers.Adam(3e-3))
    assert aae.ae_optimizer is aae.optimizer and float(aae.optimizer.learning_rate) == pytest.approx(3e-3)
    with pytest.raises(ValueError, match="not both"):
        aae.compile(optimizer="adam", ae_optimizer="adam")
    with pytest.raises(ValueError, match="is not an optimizer"):
        aae.compile(optimizer="no_such_optimizer")


@pytest.mark.parametrize("name", ["mmd", "adversarial", "semi_supervised"])
def test_models_saved_by_release_0_1_load_and_resume(name, digits):
    recorded = json.loads((RELEASE_0_1 / "outputs.json").read_text())[name]
    model = keras.saving.load_model(RELEASE_0_1 / f"{name}.keras")
    np.testing.assert_allclose(model.encode(digits.x_train[:4]), recorded["codes"], atol=1e-6)
    assert int(model.optimizer.iterations) == 4  # one epoch of 200 examples in batches of 50
    if name == "adversarial":
        assert int(model.discriminator_optimizer.iterations) == int(model.generator_optimizer.iterations) == 4
    labels = data.keep_labels(digits.y_train[:200], 40) if name == "semi_supervised" else None
    model.fit(digits.x_train[:200], labels, epochs=1, batch_size=50, verbose=0)
    assert int(model.optimizer.iterations) == 8
