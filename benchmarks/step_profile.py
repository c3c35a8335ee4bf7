"""Where the training step time goes: per-phase timings outside `model.fit`.

Companion of `step_time.py` (same models, batch 100, paper MLP, Fashion-MNIST). Every piece
below runs as its own `tf.function` (XLA on or off) on one fixed batch, timed over `--steps`
calls, best and median of `--repeats`:

* `fit` per step (numpy data, as in step_time.py) vs the model's own `train_step` called
  directly: the difference is the `fit` loop / data-pipeline overhead;
* the train step of each model (plain, adversarial, closed-form MMD, sample MMD);
* pieces: encoder+decoder forward/backward without the optimizer, one Adam update of the
  encoder+decoder, the input finiteness check, a prior sample of 100, the closed-form and
  sample MMD (forward+backward w.r.t. the codes) alone, and the adversarial model's three
  phases replayed separately (reconstruction update, discriminator update, generator update).

Usage (from the repository root):
    python benchmarks/step_profile.py                    # d=2, XLA off and on
    python benchmarks/step_profile.py --latent 8 --xla off --steps 100 --repeats 5
    python benchmarks/step_profile.py --out benchmarks/results   # also write step_profile.json
"""

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import step_time  # noqa: E402

from aae_keras import backend, data  # noqa: E402

BATCH = step_time.BATCH


def timed(fn, steps, repeats, sync):
    """(best, median) seconds per call of fn() over `repeats` runs of `steps` calls."""
    sync(fn())  # trace / compile
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            out = fn()
        sync(out)
        runs.append((time.perf_counter() - start) / steps)
    return min(runs), statistics.median(runs)


def numpy_sync(out):
    tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, out)


def build(kind, latent, image_shape, xla, x_small):
    model = step_time.build_model(kind, latent, image_shape, xla)
    model.fit(x_small, epochs=1, batch_size=BATCH, verbose=0)  # builds model and optimizers
    return model


def profile(latent, xla, x, steps, repeats, log):
    xb = tf.constant(x[:BATCH])
    x_fit = x[: steps * BATCH]
    image_shape = x.shape[1:]
    rows = {}

    def record(name, fn):
        best, median = timed(fn, steps, repeats, numpy_sync)
        rows[name] = {"best_ms": best * 1e3, "median_ms": median * 1e3}
        log(f"  d={latent} xla={xla!s:<5} {name:<44} best {best * 1e3:7.2f} ms  median {median * 1e3:7.2f} ms")

    def fit_per_step(model):
        best = float("inf")
        values = []
        for _ in range(repeats):
            seconds, _ = step_time.time_fit(model, x_fit)
            values.append(seconds / (len(x_fit) // BATCH))
            best = min(best, values[-1])
        return best, statistics.median(values)

    built = {}
    for kind in step_time.KINDS:
        model = build(kind, latent, image_shape, xla, x[: 2 * BATCH])
        built[kind] = model
        best, median = fit_per_step(model)
        rows[f"{kind}: model.fit per step"] = {"best_ms": best * 1e3, "median_ms": median * 1e3}
        log(
            f"  d={latent} xla={xla!s:<5} {kind + ': model.fit per step':<44} best {best * 1e3:7.2f} ms  median {median * 1e3:7.2f} ms"
        )
        step = tf.function(model.train_step, jit_compile=xla)
        record(f"{kind}: train_step (tf.function)", lambda step=step: step(xb))

    # ---- pieces, on the closed-form MMD model's networks
    mmd_model = built["mmd"]
    enc, dec = mmd_model.encoder, mmd_model.decoder
    variables = enc.trainable_variables + dec.trainable_variables

    @tf.function(jit_compile=xla)
    def ae_forward_backward(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(mmd_model.reconstruction_loss(x, dec(enc(x, training=True), training=True)))
        return tape.gradient(loss, variables)

    record("pieces: enc+dec forward/backward (no update)", lambda: ae_forward_backward(xb))
    grads = [tf.zeros_like(v) for v in variables]
    adam = keras.optimizers.Adam(1e-3)
    adam.build(variables)

    @tf.function(jit_compile=xla)
    def adam_update(grads):
        adam.apply(grads, variables)
        return adam.iterations

    record("pieces: Adam update of enc+dec", lambda: adam_update(grads))

    @tf.function(jit_compile=xla)
    def features(x):
        return mmd_model._features(x)

    record("pieces: _features (convert + finiteness and [0, 1] checks)", lambda: features(xb))
    z = tf.Variable(enc(xb)[:, :latent])

    no_labels = tf.fill([BATCH], -1)
    for kind in ("mmd", "sample_mmd"):
        matcher = built[kind].matchers[0]

        @tf.function(jit_compile=xla)
        def reg_fwd_bwd(seed, matcher=matcher):
            with tf.GradientTape() as tape:
                value = matcher(z, no_labels, seed=seed)
            return value, tape.gradient(value, z)

        seed = tf.constant([1, 2], tf.int32)
        record(f"pieces: {type(matcher.regularizer).__name__} forward/backward", lambda f=reg_fwd_bwd: f(seed))

    @tf.function(jit_compile=xla)
    def prior_sample(seed):
        return mmd_model.prior.sample(BATCH, seed=seed)

    record("pieces: prior sample of 100", lambda: prior_sample(tf.constant([1, 2], tf.int32)))

    # ---- the adversarial model's phases, replayed as in the core's train_step
    aae = built["adversarial"]
    phase, groups = backend.current().phase, aae._optimizer_groups()

    @tf.function(jit_compile=xla)
    def phase_reconstruction(x):
        step = aae.optimizer.iterations
        return phase(lambda: aae._objective(x, no_labels, step, training=True)[:2], groups["optimizer"], aae.optimizer)

    @tf.function(jit_compile=xla)
    def phase_discriminator(x):
        step = aae.optimizer.iterations
        parts = aae._parts(x, training=True, seed=aae._seed(step, 8))
        return phase(
            lambda: aae._discriminator_terms(parts, no_labels, step, 0),
            groups["discriminator_optimizer"],
            aae.discriminator_optimizer,
        )

    @tf.function(jit_compile=xla)
    def phase_generator(x):
        step = aae.optimizer.iterations
        return phase(
            lambda: aae._generator_terms(x, no_labels, step), groups["generator_optimizer"], aae.generator_optimizer
        )

    record("adversarial phase 1: reconstruction update", lambda: phase_reconstruction(xb))
    record("adversarial phase 2: discriminator update", lambda: phase_discriminator(xb))
    record("adversarial phase 3: generator update", lambda: phase_generator(xb))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=step_time.default_data_dir())
    parser.add_argument("--latent", type=int, nargs="+", default=[2])
    parser.add_argument("--xla", choices=("both", "on", "off"), default="both")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=None, help="directory for step_profile.json (optional)")
    args = parser.parse_args(argv)

    def log(message):
        print(message, flush=True)

    x = data.load("fashion_mnist", data_dir=args.data_dir).x_train[: max(args.steps, 2) * BATCH]
    info = step_time.machine_info()
    results = {}
    for latent in args.latent:
        for xla in {"both": (False, True), "on": (True,), "off": (False,)}[args.xla]:
            before = step_time.cpu_counters()
            start = time.perf_counter()
            rows = profile(latent, xla, x, args.steps, args.repeats, log)
            foreign = step_time.foreign_cores(before, step_time.cpu_counters(), time.perf_counter() - start)
            log(f"  (other processes kept {foreign:.2f} cores busy on average meanwhile)")
            results[f"d={latent} xla={xla}"] = {"rows": rows, "foreign_cores": foreign}
    table = markdown(results, info, args)
    print()
    print(table)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "step_profile.json"), "w") as f:
            json.dump({"machine": info, "steps": args.steps, "repeats": args.repeats, "results": results}, f, indent=2)
        with open(os.path.join(args.out, "step_profile.md"), "w") as f:
            f.write(table)
    return 0


def markdown(results, info, args):
    columns = list(results)
    lines = [
        "# Where the step time goes",
        "",
        f"{info['cpu_model']}, {info['cpu_count']} cores, TensorFlow {info['tensorflow']}, "
        f"Keras {info['keras']}. Milliseconds per call, median (best) of {args.repeats} runs of "
        f"{args.steps} calls; every piece is its own tf.function on one fixed batch of 100 "
        "(`model.fit` rows: numpy data through fit, as in step_time.py).",
        "",
        "| piece | " + " | ".join(columns) + " |",
        "| --- |" + " --- |" * len(columns),
    ]
    names = list(dict.fromkeys(name for c in columns for name in results[c]["rows"]))
    for name in names:
        cells = []
        for c in columns:
            row = results[c]["rows"].get(name)
            cells.append(f"{row['median_ms']:.2f} ({row['best_ms']:.2f})" if row else "")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append(
        "| (other processes, cores on average) | "
        + " | ".join(f"{results[c]['foreign_cores']:.2f}" for c in columns)
        + " |"
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
