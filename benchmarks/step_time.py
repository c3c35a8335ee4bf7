"""Training step time of the adversarial, closed-form-MMD, sample-MMD and plain autoencoders.

Paper MLP (two hidden layers of 1000 ReLU units), batch 100, latent d in {2, 8}, Fashion-MNIST,
each model with and without XLA (`compile(jit_compile=...)`). For every configuration:

* build a fresh model, compile it, and run one warm-up epoch over the timing subset
  (`--steps` batches of 100 images; tracing / XLA compilation happens here and is excluded);
* time `--repeats` further epochs of `model.fit(x_subset, epochs=1, batch_size=100, verbose=0)`
  on numpy data (what users do) and report the median seconds per step and the extrapolated
  seconds per 60000-image epoch (600 steps).

Repeats are interleaved across the configurations of one latent size (repeat 1 of every
model, then repeat 2, ...) so that a change in machine load hits all models alike; the load
average is recorded around every measurement.

Training FLOPs per step are counted analytically (dense layers: forward 2*in*out per example,
backward 2x forward; MMD kernels roughly, see `flops_per_step`), and the achieved GFLOP/s is
compared with a float32 matmul peak measured on the same machine.

Usage (from the repository root):
    python benchmarks/step_time.py                 # full run -> benchmarks/results/step_time.{md,json}
    python benchmarks/step_time.py --quick         # smoke test: 20 steps, 1 repeat, d=2, temp dir
    python benchmarks/step_time.py --data-dir DIR --steps 200 --repeats 3 --out DIR
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from aae_keras import data, files, models, networks, priors  # noqa: E402
from aae_keras.models.base import LatentAutoencoder  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO_ROOT, "benchmarks", "results")
BATCH = 100
EPOCH_IMAGES = 60000
ONE_CORE = 1.2  # a repeat using fewer cores than this ran effectively single-threaded
HIDDEN = networks.PAPER_HIDDEN
KINDS = ("plain", "adversarial", "mmd", "sample_mmd")
LABELS = {
    "plain": "Plain AE",
    "adversarial": "AdversarialAutoencoder",
    "mmd": "MMDAutoencoder + ClosedFormMMD",
    "sample_mmd": "MMDAutoencoder + SampleMMD",
}


# --------------------------------------------------------------------------------- models
class PlainAutoencoder(keras.Model):
    """Encoder -> decoder with the library's reconstruction loss and one optimizer; no prior."""

    reconstruction = "bce"  # read by LatentAutoencoder.reconstruction_loss

    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder, self.decoder = encoder, decoder
        self.loss_tracker = keras.metrics.Mean(name="reconstruction")

    @property
    def metrics(self):
        return [self.loss_tracker]

    def call(self, x, training=False):
        return self.decoder(self.encoder(x, training=training), training=training)

    def train_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            x_hat = self(x, training=True)
            loss = tf.reduce_mean(LatentAutoencoder.reconstruction_loss(self, x, x_hat))
        variables = self.encoder.trainable_variables + self.decoder.trainable_variables
        self.optimizer.apply(tape.gradient(loss, variables), variables)
        self.loss_tracker.update_state(loss)
        return {"reconstruction": self.loss_tracker.result()}


def make_prior(latent):
    return priors.gaussian_mixture(10, latent)  # d=2: the paper's ring of 10


def build_model(kind, latent, image_shape, jit_compile):
    keras.utils.set_random_seed(0)
    encoder, decoder, discriminator = networks.build("mlp", image_shape, latent, hidden=HIDDEN)
    if kind == "plain":
        model = PlainAutoencoder(encoder, decoder)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=jit_compile)
    elif kind == "adversarial":
        model = models.AdversarialAutoencoder(encoder, decoder, discriminator, make_prior(latent))
        model.compile(jit_compile=jit_compile)  # the three default optimizers
    else:
        regularizer = "mmd" if kind == "mmd" else "sample_mmd"
        model = models.MMDAutoencoder(encoder, decoder, make_prior(latent), regularizer=regularizer)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=jit_compile)
    return model


# ---------------------------------------------------------------------------------- FLOPs
def dense_flops(sizes):
    """Forward FLOPs per example of a stack of Dense layers with the given widths."""
    return sum(2 * a * b for a, b in zip(sizes[:-1], sizes[1:]))


def mmd_flops(n, d, bandwidths, components, sample):
    """Rough forward FLOPs of one MMD^2 estimate on n codes (exp counted as one FLOP).

    Pairwise squared distances of m points: 2 m^2 d (matmul) + ~4 m^2; the RBF ladder:
    ~4 m^2 per bandwidth (scale, exp, weight, add); closed form adds the kernel mean
    m_p(z): ~(3 d + 3) n K S (diff, square, einsum, logits) + ~3 n K S (logsumexp).
    """
    m = 2 * n if sample else n
    s = len(bandwidths)
    total = 2 * m * m * d + 4 * m * m + 4 * m * m * s
    if not sample:
        total += (3 * d + 6) * n * components * s
    return total


def flops_per_step(kind, latent, pixels=784, batch=BATCH, regularizer=None):
    """Analytic training FLOPs of one step (dict with the parts and the total)."""
    h1, h2 = HIDDEN
    enc = dense_flops([pixels, h1, h2, latent])
    dec = dense_flops([latent, h1, h2, pixels])
    disc = dense_flops([latent, h1, h2, 1])
    fwd_bwd = 3  # forward + backward (~2x forward)
    parts = {"autoencoder": fwd_bwd * (enc + dec) * batch}
    if kind == "adversarial":
        parts["discriminator_phase"] = enc * batch + fwd_bwd * disc * 2 * batch  # codes fwd only
        parts["generator_phase"] = fwd_bwd * (enc + disc) * batch
    elif kind in ("mmd", "sample_mmd"):
        parts["mmd"] = fwd_bwd * mmd_flops(batch, latent, regularizer.bandwidths, 10, sample=(kind == "sample_mmd"))
    parts["total"] = sum(parts.values())
    return parts


# ----------------------------------------------------------------------------- machine
def matmul_peak(size=2048, runs=10):
    """Best-of-`runs` GFLOP/s of a float32 size x size matmul under tf.function."""
    return matmul_at(size, size, size, runs=runs, inner=1)


def matmul_at(m, k, n, runs=10, inner=20):
    """Best-of GFLOP/s of an [m, k] x [k, n] float32 matmul (shapes of this model's layers)."""
    a = tf.random.stateless_normal([m, k], seed=[1, 2])
    b = tf.random.stateless_normal([k, n], seed=[3, 4])

    @tf.function
    def f(a, b):
        out = tf.zeros([m, n])
        for _ in tf.range(inner):
            out = out + tf.matmul(a, b)
        return out

    f(a, b).numpy()
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        f(a, b).numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * m * k * n * inner / best / 1e9


def machine_info():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu_model": cpu,
        "cpu_count": os.cpu_count(),
        "usable_cores": usable,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "tf_intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "tf_inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
        "loadavg_at_start": list(os.getloadavg()),
    }


# ------------------------------------------------------------------------------ timing
def short_error(error):
    text = f"{type(error).__name__}: {error}"
    lines = [line for line in text.splitlines() if line.strip()]
    return "\n".join(lines[:12])[:2000]


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_counters():
    """(busy CPU seconds of the whole machine, CPU seconds of this process, steal seconds)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        with open("/proc/self/stat") as f:
            own = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    steal = fields[7] if len(fields) > 7 else 0
    busy = sum(fields[:8]) - idle - steal
    return busy / _TICK, (int(own[11]) + int(own[12])) / _TICK, steal / _TICK


def foreign_cores(before, after, seconds):
    """Average number of cores other processes (and the hypervisor, as steal) kept busy."""
    if before is None or after is None or seconds <= 0:
        return None
    busy, own, steal = (a - b for a, b in zip(after, before))
    return max(busy - own, 0.0) / seconds + steal / seconds


class Patience:
    """A budget of seconds the whole run may spend waiting for quiet or redoing noisy repeats."""

    def __init__(self, seconds):
        self.left = float(seconds)

    def spend(self, seconds):
        self.left -= seconds

    def __bool__(self):
        return self.left > 0


def wait_for_quiet(max_foreign, timeout, log, patience=None):
    """Wait (at most `timeout` s) until other processes use less than `max_foreign` cores."""
    if patience is not None and not patience:
        return None
    if patience is not None:
        timeout = min(timeout, patience.left)
    begin = time.perf_counter()
    try:
        return _wait_for_quiet(max_foreign, begin + timeout, log)
    finally:
        if patience is not None:
            patience.spend(time.perf_counter() - begin)


def _wait_for_quiet(max_foreign, deadline, log):
    polls = 0
    while True:
        polls += 1
        before, start = cpu_counters(), time.perf_counter()
        time.sleep(1.0)
        load = foreign_cores(before, cpu_counters(), time.perf_counter() - start)
        if load is None or load <= max_foreign or time.perf_counter() > deadline:
            return load
        if polls % 10 == 1:
            log(f"    waiting: other processes use {load:.2f} cores")


def own_cores(before, after, seconds):
    """Average number of cores this process used (as the guest kernel accounts it)."""
    if before is None or after is None or seconds <= 0:
        return None
    return (after[1] - before[1]) / seconds


def time_fit(model, x, stats=None):
    """(wall seconds of one epoch of fit, cores used by other processes meanwhile).

    If `stats` is a list, the cores this process used are appended to it.
    """
    before = cpu_counters()
    start = time.perf_counter()
    model.fit(x, epochs=1, batch_size=BATCH, verbose=0, shuffle=True)
    seconds = time.perf_counter() - start
    after = cpu_counters()
    if stats is not None:
        stats.append(own_cores(before, after, seconds))
    return seconds, foreign_cores(before, after, seconds)


def run_latent(
    latent, x, kinds, xla_modes, repeats, log, max_foreign=None, retries=0, quiet_timeout=120, patience=None
):
    """Time every (kind, xla) for one latent size; repeats are interleaved across models."""
    steps = len(x) // BATCH
    runs = []
    for kind in kinds:
        for xla in xla_modes:
            entry = {
                "model": kind,
                "label": LABELS[kind],
                "latent": latent,
                "xla": xla,
                "steps": steps,
                "batch": BATCH,
                "error": None,
                "times": [],
                "foreign_cores": [],
                "own_cores": [],
                "rejected": [],
            }
            try:
                model = build_model(kind, latent, x.shape[1:], xla)
                entry["model_jit_compile"] = bool(model.jit_compile)
                if bool(model.jit_compile) != xla:
                    entry["note"] = f"model.jit_compile is {model.jit_compile!r}, asked {xla}"
                start = time.perf_counter()
                model.fit(x, epochs=1, batch_size=BATCH, verbose=0)  # warm-up (excluded)
                entry["warmup_seconds"] = time.perf_counter() - start
                entry["_model"] = model
                regularizer = getattr(model, "regularizer", None)
                entry["flops"] = flops_per_step(kind, latent, regularizer=regularizer)
                log(f"  d={latent} {kind:<11} xla={xla!s:<5} warm-up {entry['warmup_seconds']:.1f}s")
            except Exception as error:  # record, do not crash
                entry["error"] = short_error(error)
                entry["traceback"] = traceback.format_exc()[-4000:]
                log(f"  d={latent} {kind:<11} xla={xla!s:<5} FAILED: {entry['error'].splitlines()[0]}")
            runs.append(entry)
    for r in range(repeats):
        for entry in runs:
            if entry["error"]:
                continue
            for attempt in range(retries + 1):
                if max_foreign is not None:
                    wait_for_quiet(max_foreign, quiet_timeout, log, patience)
                try:
                    own = []
                    seconds, foreign = time_fit(entry["_model"], x, own)
                except Exception as error:
                    entry["error"] = short_error(error)
                    entry["traceback"] = traceback.format_exc()[-4000:]
                    log(f"  d={latent} {entry['model']} xla={entry['xla']} FAILED in repeat {r}")
                    break
                shown = "?" if foreign is None else f"{foreign:.2f}"
                noisy = max_foreign is not None and foreign is not None and foreign > max_foreign
                if noisy and attempt < retries and (patience is None or patience):
                    if patience is not None:
                        patience.spend(seconds)
                    entry["rejected"].append([seconds / steps, foreign, own[0]])
                    log(
                        f"  d={latent} {entry['model']:<11} xla={entry['xla']!s:<5} repeat {r + 1}: "
                        f"{seconds / steps * 1e3:.1f} ms/step, other processes {shown} cores: retry"
                    )
                    continue
                entry["times"].append(seconds)
                entry["foreign_cores"].append(foreign)
                entry["own_cores"].append(own[0])
                log(
                    f"  d={latent} {entry['model']:<11} xla={entry['xla']!s:<5} repeat {r + 1}: "
                    f"{seconds / steps * 1e3:.1f} ms/step (other processes {shown} cores, "
                    f"this one {own[0] or 0:.2f})"
                )
                break
    for entry in runs:
        entry.pop("_model", None)
        if entry["times"]:
            per_step = [t / steps for t in entry["times"]]
            entry["seconds_per_step"] = statistics.median(per_step)
            entry["seconds_per_step_all"] = per_step
            entry["seconds_per_step_min"] = min(per_step)
            entry["seconds_per_epoch"] = entry["seconds_per_step"] * EPOCH_IMAGES / BATCH
            entry["gflops_per_second"] = entry["flops"]["total"] / entry["seconds_per_step"] / 1e9
    return runs


def add_ratios(results, peak):
    index = {(r["model"], r["latent"], r["xla"]): r for r in results}
    for r in results:
        if "seconds_per_step" not in r:
            continue
        r["fraction_of_peak"] = r["gflops_per_second"] / peak
        best = min(r["seconds_per_step_all"])
        plain = index.get(("plain", r["latent"], r["xla"]))
        if plain and "seconds_per_step" in plain:
            r["ratio_to_plain"] = r["seconds_per_step"] / plain["seconds_per_step"]
            r["best_ratio_to_plain"] = best / min(plain["seconds_per_step_all"])
        adversarial = index.get(("adversarial", r["latent"], r["xla"]))
        if r["model"] in ("mmd", "sample_mmd") and adversarial and "seconds_per_step" in adversarial:
            r["ratio_to_adversarial"] = r["seconds_per_step"] / adversarial["seconds_per_step"]
            r["best_ratio_to_adversarial"] = best / min(adversarial["seconds_per_step_all"])


def markdown(results, info, settings):
    lines = [
        "# Training step time",
        "",
        f"Paper MLP (hidden {HIDDEN}), batch {BATCH}, Fashion-MNIST, `model.fit` on numpy data; "
        f"{settings['steps']} steps per measurement after a warm-up epoch, median of "
        f"{settings['repeats']} repeats; s/epoch = s/step x {EPOCH_IMAGES // BATCH}.",
        "",
        f"Machine: {info['cpu_model']}, {info['cpu_count']} cores ({info['usable_cores']} usable), "
        f"TensorFlow {info['tensorflow']}, Keras {info['keras']}. "
        f"float32 matmul peak ({settings['peak_size']}x{settings['peak_size']}, tf.function, best of "
        f"{settings['peak_runs']}): **{settings['peak_gflops']:.1f} GFLOP/s**; "
        f"[100,1000]x[1000,1000] (this model's hidden layer): {settings['layer_gflops']:.1f} GFLOP/s.",
        "",
        's/step is the median over the repeats ("min s/step": the fastest repeat; "best vs" '
        "columns: ratios of fastest repeats, the statistic least affected by interference); "
        '"other load": the most cores that other processes kept busy during an accepted '
        "repeat (from /proc/stat; includes hypervisor steal); repeats above "
        f"{settings['max_foreign_cores']} cores were redone up to {settings['retries']} times. "
        f'"1-core repeats": repeats in which this process used fewer than {ONE_CORE} cores '
        "on average although nobody else was busy (seen on the development VM: such repeats "
        "run ~2x slower; the cause lies outside the benchmarked code, see README).",
        "",
        "| model | latent | XLA | s/step | s/epoch | GFLOP/s | % of peak | vs plain AE | vs adversarial | min s/step | best vs plain | best vs adversarial | other load | 1-core repeats |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        head = f"| {r['label']} | {r['latent']} | {'yes' if r['xla'] else 'no'} |"
        if "seconds_per_step" not in r:
            error = (r["error"] or "no measurement").splitlines()[0].replace("|", "/")[:120]
            lines.append(f"{head} failed: {error} | | | | | | | | | | | |")
            continue
        ratio_plain = f"{r['ratio_to_plain']:.2f}x" if "ratio_to_plain" in r else ""
        ratio_adv = f"{r['ratio_to_adversarial']:.2f}x" if "ratio_to_adversarial" in r else ""
        best_plain = f"{r['best_ratio_to_plain']:.2f}x" if "best_ratio_to_plain" in r else ""
        best_adv = f"{r['best_ratio_to_adversarial']:.2f}x" if "best_ratio_to_adversarial" in r else ""
        foreign = [f for f in r["foreign_cores"] if f is not None]
        other = f"{max(foreign):.2f}" if foreign else "?"
        own = [o for o in r.get("own_cores", []) if o is not None]
        one_core = f"{sum(o < ONE_CORE for o in own)}/{len(own)}" if own else "?"
        lines.append(
            f"{head} {r['seconds_per_step'] * 1e3:.1f} ms | {r['seconds_per_epoch']:.2f} | "
            f"{r['gflops_per_second']:.1f} | {100 * r['fraction_of_peak']:.1f}% | {ratio_plain} | "
            f"{ratio_adv} | {min(r['seconds_per_step_all']) * 1e3:.1f} ms | {best_plain} | {best_adv} | "
            f"{other} | {one_core} |"
        )
    lines += ["", "Analytic training GFLOP per step (dense layers; MMD kernels roughly):", ""]
    seen = set()
    for r in results:
        key = (r["model"], r["latent"])
        if "flops" in r and key not in seen:
            seen.add(key)
            parts = ", ".join(f"{k} {v / 1e9:.3f}" for k, v in r["flops"].items() if k != "total")
            lines.append(f"- {r['label']}, d={r['latent']}: {r['flops']['total'] / 1e9:.3f} ({parts})")
    failures = [r for r in results if r.get("error")]
    if failures:
        lines += ["", "Failures:", ""]
        for r in failures:
            lines.append(f"- {r['label']}, d={r['latent']}, XLA={r['xla']}:")
            lines += ["", "```", r["error"], "```", ""]
    notes = [r for r in results if r.get("note")]
    for r in notes:
        lines.append(f"- note ({r['label']}, d={r['latent']}, XLA={r['xla']}): {r['note']}")
    return "\n".join(lines) + "\n"


# -------------------------------------------------------------------------------- main
def default_data_dir():
    return os.environ.get(
        "AAE_KERAS_FASHION_MNIST_DIR",
        os.path.join(os.path.dirname(REPO_ROOT), "shared", "data", "fashion-mnist"),
    )


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data-dir",
        default=default_data_dir(),
        help="Fashion-MNIST IDX directory (default: $AAE_KERAS_FASHION_MNIST_DIR "
        "or ../shared/data/fashion-mnist next to the repository)",
    )
    parser.add_argument("--steps", type=int, default=None, help="steps per measurement (200)")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats (3)")
    parser.add_argument("--latents", type=int, nargs="+", default=None, help="latent sizes (2 8)")
    parser.add_argument("--models", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--xla", choices=("both", "on", "off"), default="both")
    parser.add_argument(
        "--max-foreign",
        type=float,
        default=0.3,
        help="a repeat during which other processes kept more than this many "
        "cores busy is redone (up to --retries times), after waiting for "
        "quiet; negative: never (default 0.3)",
    )
    parser.add_argument("--retries", type=int, default=3)
    parser.add_argument(
        "--patience",
        type=float,
        default=45.0,
        help="minutes the whole run may spend waiting for quiet and redoing "
        "noisy repeats; afterwards repeats are kept as measured (default 45)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke test: 20 steps, 1 repeat, d=2, output to a temp dir"
    )
    parser.add_argument("--out", default=None, help=f"output directory (default {DEFAULT_OUT})")
    parser.add_argument(
        "--render",
        metavar="JSON",
        default=None,
        help="only rewrite the markdown table next to an existing step_time.json",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    args.steps = args.steps or (20 if quick else 200)
    args.repeats = args.repeats or (1 if quick else 3)
    args.latents = args.latents or ([2] if quick else [2, 8])
    if args.out is None:
        args.out = tempfile.mkdtemp(prefix="step_time_") if quick else DEFAULT_OUT
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.render:
        with open(args.render) as f:
            saved = json.load(f)
        add_ratios(saved["results"], saved["settings"]["peak_gflops"])
        table = markdown(saved["results"], saved["machine"], saved["settings"])
        with open(os.path.join(os.path.dirname(os.path.abspath(args.render)), "step_time.md"), "w") as f:
            f.write(table)
        print(table)
        return 0

    def log(message):
        print(message, flush=True)

    info = machine_info()
    log(
        f"{info['cpu_model']}, {info['cpu_count']} cores, TF {info['tensorflow']}, "
        f"Keras {info['keras']}, load {info['loadavg_at_start'][0]:.2f}"
    )
    peak_size, peak_runs = 2048, 10
    max_foreign = None if args.max_foreign < 0 else args.max_foreign
    patience = Patience(60.0 * args.patience)
    if max_foreign is not None:
        wait_for_quiet(max_foreign, 120, log, patience)
    peak = matmul_peak(peak_size, peak_runs)
    layer = matmul_at(BATCH, HIDDEN[0], HIDDEN[1])
    log(f"matmul peak {peak:.1f} GFLOP/s; [100,1000]x[1000,1000]: {layer:.1f} GFLOP/s")

    dataset = data.load("fashion_mnist", data_dir=args.data_dir)
    x = dataset.x_train[: args.steps * BATCH]
    xla_modes = {"both": (False, True), "on": (True,), "off": (False,)}[args.xla]
    results = []
    for latent in args.latents:
        results += run_latent(
            latent,
            x,
            args.models,
            xla_modes,
            args.repeats,
            log,
            max_foreign=max_foreign,
            retries=args.retries,
            patience=patience,
        )
    if max_foreign is not None:
        wait_for_quiet(max_foreign, 120, log, patience)
    peak_after = matmul_peak(peak_size, peak_runs)
    log(f"matmul peak after the runs: {peak_after:.1f} GFLOP/s")
    add_ratios(results, max(peak, peak_after))
    info["loadavg_at_end"] = list(os.getloadavg())

    settings = {
        "steps": args.steps,
        "repeats": args.repeats,
        "max_foreign_cores": args.max_foreign,
        "retries": args.retries,
        "patience_minutes": args.patience,
        "batch": BATCH,
        "latents": args.latents,
        "data_dir": os.path.abspath(args.data_dir),
        "quick": args.quick,
        "peak_size": peak_size,
        "peak_runs": peak_runs,
        "peak_gflops": max(peak, peak_after),
        "peak_gflops_before": peak,
        "peak_gflops_after": peak_after,
        "layer_gflops": layer,
        "patience_left_seconds": patience.left,
    }
    table = markdown(results, info, settings)
    print()
    print(table)
    write_results(
        os.path.join(args.out, "step_time"), table, {"machine": info, "settings": settings, "results": results}
    )
    log(f"wrote {os.path.join(args.out, 'step_time.md')} and step_time.json")
    return 0


def write_results(stem, table, payload):
    """`stem`.md (the table) and `stem`.json (the payload), each written whole or not at all."""
    os.makedirs(os.path.dirname(os.path.abspath(stem)), exist_ok=True)
    for suffix, write in ((".md", lambda f: f.write(table)), (".json", lambda f: json.dump(payload, f, indent=2))):
        with files.atomic_path(stem + suffix) as tmp, open(tmp, "w") as f:
            write(f)


if __name__ == "__main__":
    sys.exit(main())
