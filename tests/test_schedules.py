"""The adversarial schedules on the active Keras backend (the README's test command runs this file
on TensorFlow, JAX and PyTorch): each equals a reference written as separate phases, step for step.

- "paper" runs the discriminator updates inside the generator phase, on the codes of its one
  encoder pass; the reference makes an encoder pass per phase, as the paper's three phases read.
- "joint" (the default) takes both updates from one forward pass; the reference runs them as two phases, the
  discriminator's on codes kept from before the encoder and decoder update.

On TensorFlow these run with XLA (the library's default there).
"""

import keras
import numpy as np
import pytest
from keras import ops

from aae_keras import backend, data, models, priors
from conftest import tiny_model, tiny_variant

pytestmark = pytest.mark.xla  # on TensorFlow, with the library's default: XLA-compiled steps


@pytest.fixture(scope="module")
def batch():
    return data.load("digits").x_train[:192]


def _stopped(parts):
    return {name: ops.stop_gradient(value) for name, value in parts.items()}


class ThreePasses(models.AdversarialAutoencoder):
    """The paper's schedule with an encoder pass per phase: reconstruction, discriminator, generator."""

    def _train_phases(self, data):
        x, labels = self._inputs(data)
        step, groups = self.optimizer.iterations, self._optimizer_groups()
        logs = backend.phase(
            lambda: self._objective(x, labels, step, training=True)[:2],
            groups["optimizer"],
            self.phase_optimizer("optimizer"),
        )
        for k in range(self.discriminator_steps):
            parts = _stopped(self._parts(x, training=True, seed=self._seed(step, 2)))
            logs.update(
                backend.phase(
                    lambda: self._discriminator_terms(parts, labels, step, k),
                    groups["discriminator_optimizer"],
                    self.discriminator_optimizer,
                )
            )
        logs.update(
            backend.phase(
                lambda: self._generator_terms(self._parts(x, training=True, seed=self._seed(step, 2)), labels, step),
                groups["generator_optimizer"],
                self.generator_optimizer,
            )
        )
        logs["loss"] = logs["loss"] + self.generator_weight * logs["generator_loss"]
        return self._record(logs)


class TwoPhases(models.AdversarialAutoencoder):
    """The joint schedule as two phases: encoder and decoder on reconstruction + generator loss,
    then the discriminator on codes computed before that update."""

    def _train_phases(self, data):
        x, labels = self._inputs(data)
        step = ops.copy(self.optimizer.iterations)  # the step count before the first update
        groups = self._optimizer_groups()
        before = _stopped(self._parts(x, training=True, seed=self._seed(step, 1)))

        def autoencoder_terms():
            loss, logs, parts = self._objective(x, labels, step, training=True)
            generator_loss, generator_logs = self._generator_terms(parts, labels, step)
            return loss + generator_loss, {**logs, **generator_logs, "loss": loss + generator_loss}

        logs = backend.phase(autoencoder_terms, groups["optimizer"], self.phase_optimizer("optimizer"))
        logs.update(
            backend.phase(
                lambda: self._discriminator_terms(before, labels, step, 0),
                groups["discriminator_optimizer"],
                self.discriminator_optimizer,
            )
        )
        return self._record(logs)


def _pair(reference_class, **options):
    """(the library's model, the reference) from the same initial weights and options."""
    made = []
    for cls in (models.AdversarialAutoencoder, reference_class):
        keras.utils.set_random_seed(0)
        model = tiny_model("adversarial", **options)
        made.append(cls(model.encoder, model.decoder, model.discriminator, model.prior, **options))
        made[-1].compile()
    return made


def _state(model):
    optimizers = [model.phase_optimizer(name) for name in model._optimizer_groups()]
    variables = model.weights + [v for opt in optimizers for v in opt.variables]
    return [np.asarray(keras.ops.convert_to_numpy(v.value), np.float64) for v in variables]


def _difference(a, b):
    return max(float(np.max(np.abs(u - v), initial=0.0)) for u, v in zip(a, b))


@pytest.mark.parametrize(
    "reference_class, options",
    [
        (
            ThreePasses,
            {
                "schedule": "paper",
                "posterior": "gaussian",
                "instance_noise": 0.1,
                "label_smoothing": 0.1,
                "discriminator_steps": 2,
            },
        ),
        (TwoPhases, {"schedule": "joint", "posterior": "gaussian", "instance_noise": 0.1, "generator_weight": 2.0}),
    ],
    ids=["paper", "joint"],
)
def test_a_schedule_equals_its_phases_written_out(batch, reference_class, options):
    model, reference = _pair(reference_class, **options)
    start = _state(model)
    logs = [m.fit(batch, epochs=1, batch_size=64, shuffle=False, verbose=0).history for m in (model, reference)]
    trained, expected = _state(model), _state(reference)
    assert _difference(trained, start) > 1e-4  # every step moved the weights
    assert _difference(trained, expected) < 1e-5, _difference(trained, expected)
    assert logs[0].keys() == logs[1].keys()
    assert all(abs(logs[0][k][0] - logs[1][k][0]) < 1e-4 * (1 + abs(logs[1][k][0])) for k in logs[0])


def test_the_schedules_differ(batch):
    paper, joint = (tiny_model("adversarial", schedule=schedule) for schedule in ("paper", "joint"))
    for model in (paper, joint):
        model.fit(batch, epochs=1, batch_size=64, shuffle=False, verbose=0)
    assert _difference(_state(paper)[: len(paper.weights)], _state(joint)[: len(joint.weights)]) > 1e-4


def test_joint_is_the_default_with_two_optimizers_and_is_kept(tmp_path, batch):
    assert tiny_model("adversarial").schedule == "joint"
    assert tiny_variant("semi_supervised", "adversarial").schedule == "paper"  # the paper's variants
    model = tiny_model("adversarial", generator_weight=0.5)
    assert list(model._optimizer_groups()) == ["optimizer", "discriminator_optimizer"]
    assert model.generator_optimizer is None
    with pytest.raises(ValueError, match="has no generator_optimizer"):
        model.compile(generator_optimizer="adam")
    model.compile()
    model.fit(batch, epochs=1, batch_size=64, verbose=0)
    model.save(tmp_path / "joint.keras")
    loaded = keras.saving.load_model(tmp_path / "joint.keras")
    assert (loaded.schedule, loaded.generator_weight) == ("joint", 0.5)
    assert _difference(_state(model), _state(loaded)) == 0.0


@pytest.mark.parametrize(
    "options, message",
    [
        ({"schedule": "alternating"}, "schedule must be one of"),
        ({"schedule": "joint", "discriminator_steps": 2}, "one discriminator update per batch"),
        ({"generator_weight": 0.0}, "generator_weight must be a positive number"),
    ],
)
def test_bad_schedule_options_say_what_to_do(options, message):
    with pytest.raises(ValueError, match=message):
        tiny_model("adversarial", **options)


def test_schedule_options_apply_to_adversarial_models_only():
    with pytest.raises(ValueError, match='schedule apply to regularizer="adversarial" only'):
        tiny_model("mmd", schedule="joint")
    with pytest.raises(ValueError, match='generator_weight apply to regularizer="adversarial" only'):
        tiny_variant("semi_supervised", "mmd", generator_weight=2.0)


def test_the_paper_family_trains_with_the_joint_schedule(batch):
    digits = data.load("digits")
    model = tiny_variant("semi_supervised", "adversarial", schedule="joint")
    labels = np.where(np.arange(192) < 64, digits.y_train[:192], -1)
    history = model.fit(batch, labels, epochs=2, batch_size=64, verbose=0).history
    assert {"generator_loss", "discriminator_loss", "classification_loss"} <= set(history)
    assert all(np.isfinite(values).all() for values in history.values())
    assert priors.event_size(model.prior) == model.latent_dim
