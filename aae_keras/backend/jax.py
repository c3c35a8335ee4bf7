"""The JAX backend: stateless train steps with several optimizers, random draws, the global batch.

Keras's JAX trainer calls `train_step(state, data)` with the model's variables emptied and their
values in `state` (trainable, non-trainable, optimizer, metrics), and threads only
`model.optimizer.variables` through it. `run_step` opens a `keras.StatelessScope` over the
whole state and runs the model's phases in it; `phases` takes `jax.vjp` of its losses over the
variables they train (an inner scope maps every other variable to its current
value: a scope does not fall back to an enclosing one) and applies the gradients with its
optimizer's `stateless_apply`, writing the new values back into the step's scope. The
optimizers of every phase travel in the trainer's state as one `PhaseOptimizers` group set as
`model.optimizer` (`group_optimizers`), so `.keras` files save and restore all of them.

Under `keras.distribution.DataParallel` arrays are global, so a batch statistic such as the
MMD sees the whole batch with no gathering: `gather` and `replica_slice` are identities and
there is one "replica". Random draws take the project's [2] int32 seeds (the model seed and a
counter from the optimizer step) as raw JAX keys, so a run is reproducible.

Example:
    >>> from aae_keras.backend import jax as jax_backend
    >>> tuple(jax_backend.normal((2, 3), [7, 0]).shape)
    (2, 3)
"""

import contextlib
import itertools

import jax
import jax.numpy as jnp
import keras
from keras.src.backend.common.stateless_scope import get_stateless_scope

from aae_keras.backend import host_checks
from aae_keras.backend.global_batch import gather, global_size, num_replicas, replica_slice
from aae_keras.backend.shuffling import seed_numpy as seed_shuffling
from aae_keras.backend.stateful import jit_default

__all__ = [
    "PhaseOptimizers",
    "categorical",
    "check_batches",
    "checked",
    "checks_in_step",
    "device_name",
    "fuse_steps",
    "gather",
    "global_size",
    "group_optimizers",
    "jit_default",
    "kept_state",
    "normal",
    "num_replicas",
    "phases",
    "replica_slice",
    "run_step",
    "seed_shuffling",
    "split",
    "step_logs",
    "uniform",
]

_STEPS = []  # the variable groups of the stateless steps being traced (innermost last)


# ------------------------------------------------------------------------------ training steps
def run_step(model, step_fn, state, data):
    """`step_fn(data)` (the model's phases, written statefully) run statelessly on `state`:
    (trainable, non-trainable, optimizer, metrics) values for a train step, (trainable,
    non-trainable, metrics) for a test step. Returns (logs, new state)."""
    names = (
        ("trainable", "non_trainable", "optimizer", "metrics")
        if len(state) == 4
        else ("trainable", "non_trainable", "metrics")
    )
    references = {
        "trainable": model.trainable_variables,
        "non_trainable": model.non_trainable_variables,
        "optimizer": model.optimizer.variables if len(state) == 4 else [],
        "metrics": model.metrics_variables,
    }
    groups = [references[name] for name in names]
    mapping = [pair for variables, values in zip(groups, state) for pair in zip(variables, values)]
    _STEPS.append({"all": [v for variables in groups for v in variables], "non_trainable": groups[1]})
    try:
        with keras.StatelessScope(state_mapping=mapping) as scope:
            logs = step_fn(data)
    finally:
        _STEPS.pop()
    return logs, tuple([scope.get_current_value(v) for v in variables] for variables in groups)


def phases(loss_fn, updates):
    """Optimizer updates from one forward pass inside `run_step`: `loss_fn()` returns (losses,
    logs), one loss per (variables, optimizer) of `updates`; each loss's gradient with respect
    to its variables is applied by its optimizer (every gradient from the values before any
    update); returns logs. `loss_fn` may itself run phases on values it has stopped: their
    updates, like any layer state a forward pass writes, reach the step's scope."""
    scope, step = get_stateless_scope(), _STEPS[-1]
    trained = list({id(v): v for variables, _ in updates for v in variables}.values())
    index = {id(v): i for i, v in enumerate(trained)}
    fixed = [v for v in step["all"] if id(v) not in index]
    fixed_values = [(v, scope.get_current_value(v)) for v in fixed]

    def scaled_losses(values):
        with keras.StatelessScope(state_mapping=fixed_values + list(zip(trained, values))) as inner:
            losses, logs = loss_fn()
            scaled = [optimizer.scale_loss(loss) for loss, (_, optimizer) in zip(losses, updates)]
        return scaled, (logs, [inner.get_current_value(v) for v in fixed])

    values = [scope.get_current_value(v) for v in trained]
    scaled, pullback, (logs, written) = jax.vjp(scaled_losses, values, has_aux=True)
    for v, value in zip(fixed, written):
        scope.add_update((v, value))
    for i, (variables, optimizer) in enumerate(updates):  # the unused gradients are dead code under jit
        grads = pullback([jnp.ones_like(loss) if j == i else jnp.zeros_like(loss) for j, loss in enumerate(scaled)])[0]
        new_values, new_state = optimizer.stateless_apply(
            [scope.get_current_value(v) for v in optimizer.variables],
            [grads[index[id(v)]] for v in variables],
            [values[index[id(v)]] for v in variables],
        )
        for v, value in [*zip(variables, new_values), *zip(optimizer.variables, new_state)]:
            scope.add_update((v, value))
    return logs


def fuse_steps(model):
    """With `compile(steps_per_execution=K)`, make `model.train_function` run K steps in one
    jitted call (`jax.lax.scan` over the K batches stacked), where Keras's JAX trainer calls the
    jitted step K times from Python; a shorter or ragged group (an epoch's end) runs step by step.
    Nothing changes under `keras.distribution` (the trainer shards each batch itself) or with
    `run_eagerly` / `jit_compile=False`."""
    steps = int(model.steps_per_execution or 1)
    if (
        steps == 1
        or model.run_eagerly
        or not model.jit_compile
        or getattr(model.train_function, "fused", False)
        or keras.distribution.distribution() is not None
    ):
        return

    def one(state, batch):
        return type(model).train_step(model, state, batch)

    def step(state, batch):  # lax.scan's body: (carry, output)
        logs, state = one(state, batch)
        return state, logs

    def scanned(state, batches):
        state, logs = jax.lax.scan(step, state, batches)
        return jax.tree_util.tree_map(lambda values: values[-1], logs), state  # the last step's logs

    one_jit, scanned_jit = jax.jit(one, donate_argnums=0), jax.jit(scanned, donate_argnums=0)

    def train_function(state, iterator):
        batches = list(itertools.islice(iterator, steps))
        if not batches:
            raise StopIteration
        if len(batches) == steps and len({str(jax.tree_util.tree_map(jnp.shape, batch)) for batch in batches}) == 1:
            return scanned_jit(state, jax.tree_util.tree_map(lambda *parts: jnp.stack(parts), *batches))
        for batch in batches:
            logs, state = one_jit(state, batch)
        return logs, state

    train_function.fused = True
    model.train_function = train_function


@contextlib.contextmanager
def kept_state(model):
    """Run `fit` or `evaluate` so that an error before the first step (a refused batch) leaves the
    model's variables as they were: Keras's JAX trainer empties them before the first step and
    restores them only from a step's results."""
    optimizer = [] if model.optimizer is None else model.optimizer.variables
    kept = [
        (v, v.value)
        for v in [*model.trainable_variables, *model.non_trainable_variables, *optimizer, *model.metrics_variables]
    ]
    try:
        yield
    finally:
        for variable, value in kept:
            if variable._value is None:  # emptied and never restored
                variable.assign(value)


class PhaseOptimizers(keras.optimizers.Optimizer):
    """The optimizers of every training phase as one `model.optimizer`, so that Keras's JAX
    trainer carries all their state (it threads `model.optimizer.variables` only).

    `variables` are all the members' variables; `iterations`, `learning_rate` and
    `scale_loss` are the primary (reconstruction) optimizer's, so learning-rate callbacks act
    on it; `build` builds each member on its phase's variables. Only the primary's variables
    are saved under this object's path (the other members are saved under their own model
    attributes), so `.keras` files load on every backend.
    """

    def __init__(self, members, groups):
        super().__init__(learning_rate=0.0, name="phase_optimizers")
        self._phases = _Members(members, groups)

    @property
    def primary(self):
        return self._phases.members["optimizer"]

    @property
    def variables(self):
        seen, found = set(), []
        for member in self._phases.members.values():
            for v in member.variables:
                if id(v) not in seen:
                    seen.add(id(v))
                    found.append(v)
        return found

    def build(self, variables=None):
        for name, group in self._phases.groups().items():
            member = self._phases.members[name]
            if not member.built:
                member.build(group)
        self.built = True

    @property
    def iterations(self):
        return self.primary.iterations

    @property
    def learning_rate(self):
        return self.primary.learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        if hasattr(self, "_phases"):
            self.primary.learning_rate = value
        else:  # the base class's __init__
            keras.optimizers.Optimizer.learning_rate.fset(self, value)

    def scale_loss(self, loss):
        return self.primary.scale_loss(loss)

    def apply(self, grads, trainable_variables=None):
        raise RuntimeError("PhaseOptimizers only carries the phases' optimizers; each phase applies its own.")

    def save_own_variables(self, store):
        self.primary.save_own_variables(store)

    def load_own_variables(self, store):
        if len(store.keys()):  # else the file holds the primary under another attribute (ae_optimizer)
            self.primary.load_own_variables(store)

    def get_config(self):
        return self.primary.get_config()


class _Members:
    """The group's members and a function giving {name: variables}, kept out of Keras's saving
    walk (it is neither a Keras object nor a container)."""

    def __init__(self, members, groups):
        self.members, self.groups = members, groups


def group_optimizers(primary, members, groups):
    """`model.optimizer` for this backend: the phases' optimizers grouped ({name: optimizer},
    "optimizer" first; `groups()` gives each one's variables), or `primary` alone if there is
    one phase."""
    if len(members) == 1:
        return primary
    return PhaseOptimizers(members, groups)


def normal(shape, seed):
    """Standard normal float32 draws of `shape` from a stateless [2] seed."""
    return jax.random.normal(_key(seed), tuple(shape), jnp.float32)


def uniform(shape, seed):
    """U(0, 1) float32 draws of `shape` from a stateless [2] seed."""
    return jax.random.uniform(_key(seed), tuple(shape), jnp.float32)


def categorical(logits, n, seed):
    """n int32 class indices drawn from `logits` [1, K]."""
    return jax.random.categorical(_key(seed), jnp.asarray(logits, jnp.float32)[0], shape=(n,)).astype(jnp.int32)


def split(seed, count):
    """`count` independent stateless seeds [count, 2] (int32) from one."""
    return jax.lax.bitcast_convert_type(jax.random.split(_key(seed), count), jnp.int32)


def _key(seed):
    """A raw JAX key (uint32 [2]) from a [2] int32 seed, bit for bit."""
    return jax.lax.bitcast_convert_type(jnp.asarray(seed, jnp.int32), jnp.uint32)


def device_name():
    """The kind of device JAX trains on, e.g. "NVIDIA H100 80GB HBM3" or "cpu"."""
    return jax.devices()[0].device_kind


def checked(value, conditions):
    """`value`: an error raised inside a jitted step would lose the trainer's state (donated to
    the step), so the data checks run on the host instead (`check_batches`)."""
    return value


def check_batches(data, model, training):
    """`data` whose batches pass `model._check_batch` on the host before they reach the step
    (`host_checks.wrap`): a PyDataset or a Python iterator is wrapped; numpy arrays (checked
    whole before `fit`) and anything else pass unchanged."""
    return host_checks.wrap(data, model._check_batch, training)


def checks_in_step(model):
    """False: the data checks run on the host (`check_batches`), never inside the jitted step."""
    return False


def step_logs(results):
    return results
