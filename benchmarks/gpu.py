"""Seconds per Fashion-MNIST epoch of the autoencoders on a GPU (Keras JAX backend).

What it measures: `model.fit` on numpy arrays, one epoch per call
(`fit(x, epochs=1, batch_size=B, verbose=0)`, timed with `time.perf_counter()`), after one
warm-up epoch that traces and compiles the step (excluded); the median of `--repeats` timed
epochs (default 3). Latent size 8, prior N(0, I) (`priors.gaussian(8)`), default `compile()`
optimizers, a fresh model (seed 0) per configuration:

* the paper MLP (784-1000-1000-8, `networks.PAPER_HIDDEN`): a plain autoencoder (same
  networks and BCE reconstruction loss, one Adam(1e-3), no prior; defined below), the
  closed-form MMD model (`MMDAutoencoder`, regularizer "mmd"), the sample-MMD model
  (regularizer "sample_mmd") and the `AdversarialAutoencoder`, each at batch 100 and 1000;
* the same four at batch 100 with `compile(steps_per_execution=K)` (`--steps-per-execution`,
  default 50);
* the conv networks (`networks.build("conv", ...)`: two stride-2 3x3 convolutions 32/64, an
  MLP discriminator) for the closed-form MMD and adversarial models at batch 1000.

The library models check the whole numpy array on the host at the start of every `fit`
call (finite, in [0, 1]); that check is inside every timed epoch, and its cost alone is
recorded as `host_check_s` in the JSON.

Expectations checked (seconds per 60000-image epoch; with `--epochs-images N` the measured
time is scaled by 60000 / N before the comparison):

| configuration | target |
| --- | --- |
| closed-form MMD, batch 100, one step per call (`mmd_b100`) | <= 1.0 s |
| adversarial, batch 100, one step per call (`adversarial_b100`) | <= 2.0 s |
| closed-form MMD, batch 100, steps_per_execution (`mmd_b100_spe`) | <= 0.5 s |
| adversarial, batch 100, steps_per_execution (`adversarial_b100_spe`) | <= 1.0 s |
| closed-form MMD, batch 1000 (`mmd_b1000`) | < 0.15 s |

References measured on the same kind of GPU: a PyTorch library, 3.5 s/epoch for WAE-MMD and
5.0 s/epoch adversarial at batch 100; a bare Keras-on-JAX closed-form MMD autoencoder,
0.96 s/epoch at batch 100 and 0.13 s at batch 1000.

It imports neither TensorFlow nor TensorFlow Probability (Fashion-MNIST is read from the IDX
.gz files by `aae_keras.data.load`), and runs on CPU with any backend for a smoke test.

Usage (from the repository root):
    python benchmarks/gpu.py --data-dir DIR [--out DIR] [--repeats 3] [--epochs-images N]
                             [--steps-per-execution 50] [--only NAME ...] [--synthetic]

On the GPU machine (wheel in .whl/, the IDX files in .gpu-data/):
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax || exit; nvidia-smi -L; PYTHONUNBUFFERED=1 python3 benchmarks/gpu.py --data-dir .gpu-data --out $OUT 2>&1 | tee $OUT/log

CPU smoke test:
    KERAS_BACKEND=jax JAX_PLATFORMS=cpu python benchmarks/gpu.py --synthetic --epochs-images 2000 --repeats 1

Writes `gpu.json` (every measurement, the settings and the machine) and `gpu.md` (the table)
to `--out` (default: a new temporary directory), rewriting both after every configuration.
"""

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from typing import NamedTuple

import keras
import numpy as np
from keras import ops

from aae_keras import backend, data, models, networks, priors
from aae_keras.models.base import LatentAutoencoder

LATENT = 8
EPOCH_IMAGES = 60000  # a full Fashion-MNIST training epoch; the targets are per such epoch
TARGETS = {  # configuration -> (comparison, seconds per 60000-image epoch)
    "mmd_b100": ("<=", 1.0),
    "adversarial_b100": ("<=", 2.0),
    "mmd_b100_spe": ("<=", 0.5),
    "adversarial_b100_spe": ("<=", 1.0),
    "mmd_b1000": ("<", 0.15),
}
MODELS = ("plain", "mmd", "sample_mmd", "adversarial")


class Config(NamedTuple):
    """One measured configuration."""

    name: str
    model: str  # one of MODELS
    network: str  # "mlp" or "conv"
    batch: int
    multi_step: bool  # compile(steps_per_execution=--steps-per-execution)


def configurations():
    """Every configuration, in the order they run."""
    configs = [Config(f"{m}_b{b}", m, "mlp", b, False) for b in (100, 1000) for m in MODELS]
    configs += [Config(f"{m}_b100_spe", m, "mlp", 100, True) for m in MODELS]
    configs += [Config(f"conv_{m}_b1000", m, "conv", 1000, False) for m in ("mmd", "adversarial")]
    return configs


# --------------------------------------------------------------------------------- models
class PlainAutoencoder(keras.Model):
    """Encoder -> decoder trained on the library's BCE reconstruction loss alone (no prior).

    Written with Keras' own train step (only `compute_loss` is overridden), so it runs on every
    backend and `fit(x)` needs no targets.
    """

    reconstruction = "bce"  # read by LatentAutoencoder.reconstruction_loss

    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder, self.decoder = encoder, decoder

    def call(self, x, training=False):
        return self.decoder(self.encoder(x, training=training), training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Batch mean of the per-example BCE summed over pixels, as in the library's models."""
        return ops.mean(LatentAutoencoder.reconstruction_loss(self, x, y_pred))


def build_model(config, image_shape, steps_per_execution):
    """A fresh, compiled model of `config` (seeded, so every run starts from the same weights)."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    encoder, decoder, discriminator = networks.build(config.network, image_shape, LATENT)
    prior = priors.gaussian(LATENT)
    if config.model == "plain":
        model = PlainAutoencoder(encoder, decoder)
    elif config.model == "adversarial":
        model = models.AdversarialAutoencoder(encoder, decoder, discriminator, prior)
    else:
        model = models.MMDAutoencoder(encoder, decoder, prior, regularizer=config.model)
    spe = steps_per_execution if config.multi_step else 1
    if config.model == "plain":
        model.compile(optimizer=keras.optimizers.Adam(1e-3), steps_per_execution=spe)
    else:
        model.compile(steps_per_execution=spe)  # the "auto" optimizers
    return model


# ---------------------------------------------------------------------------------- timing
def fit_epoch(model, x, batch):
    """Seconds of one `fit` epoch over x."""
    start = time.perf_counter()
    model.fit(x, epochs=1, batch_size=batch, verbose=0)
    return time.perf_counter() - start


def measure(config, x, args):
    """The timings of one configuration as a dict (with "error" instead if it failed)."""
    spe = args.steps_per_execution if config.multi_step else 1
    result = {
        "name": config.name,
        "model": config.model,
        "network": config.network,
        "batch": config.batch,
        "steps_per_execution": spe,
        "images": len(x),
    }
    try:
        model = build_model(config, x.shape[1:], args.steps_per_execution)
        result["warmup_s"] = fit_epoch(model, x, config.batch)
        result["epoch_s"] = [fit_epoch(model, x, config.batch) for _ in range(args.repeats)]
        result["jit_compile"] = bool(getattr(model, "jit_compile", False))
    except Exception as error:  # recorded, and the run goes on
        result["error"] = f"{type(error).__name__}: {error}"
        result["traceback"] = traceback.format_exc()
        return result
    median = statistics.median(result["epoch_s"])
    result.update(
        median_s=median,
        min_s=min(result["epoch_s"]),
        images_per_s=len(x) / median,
        per_60k_s=median * EPOCH_IMAGES / len(x),
    )
    result.update(judge(config.name, result["per_60k_s"]))
    return result


def judge(name, per_60k):
    """{"expected": "<= 1.0", "met": True/False} where `name` has a target, else {}."""
    if name not in TARGETS:
        return {}
    comparison, seconds = TARGETS[name]
    met = per_60k <= seconds if comparison == "<=" else per_60k < seconds
    return {"expected": f"{comparison} {seconds}", "met": met}


def host_check_seconds(x):
    """Seconds of the library's host-side check of the whole array (run by every `fit` call)."""
    start = time.perf_counter()
    data.check_images(x)
    return time.perf_counter() - start


# ---------------------------------------------------------------------------------- output
def markdown(results, meta):
    """The results as a markdown table with a short header."""
    lines = [
        f"# GPU benchmark: {meta['device']} (Keras {meta['versions'].get('keras')}, backend {meta['keras_backend']})",
        "",
        f"Median of {meta['settings']['repeats']} `fit` epochs of {meta['settings']['images']} "
        f"{'synthetic' if meta['settings']['synthetic'] else 'Fashion-MNIST'} images after one "
        'warm-up epoch; latent 8, N(0, I) prior. "s/60k" scales to a 60000-image epoch; the '
        "targets apply to it.",
        "",
        "| configuration | batch | steps_per_execution | s/epoch | images/s | s/60k | expected | status |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for r in results:
        head = f"| {r['name']} | {r['batch']} | {r['steps_per_execution']} |"
        if "error" in r:
            error = r["error"][:120].replace("\n", " ").replace("|", "/")
            lines.append(f"{head} error: {error} | | | | |")
            continue
        status = "" if "met" not in r else ("met" if r["met"] else "missed")
        lines.append(
            f"{head} {r['median_s']:.3f} | {r['images_per_s']:,.0f} | {r['per_60k_s']:.3f} | "
            f"{r.get('expected', '')} | {status} |"
        )
    return "\n".join(lines) + "\n"


def versions():
    """Installed versions of the packages that matter (read from metadata, nothing imported)."""
    found = {}
    for package in ("keras", "jax", "jaxlib", "numpy", "aae-keras", "torch", "tensorflow"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def device_name():
    """The accelerator the backend trains on, e.g. "NVIDIA H200", or "cpu"."""
    return getattr(backend.current(), "device_name", lambda: "unknown")()


def metadata(args, x):
    """The machine, the versions, the settings and the command line of this run."""
    return {
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([sys.executable, *sys.argv]),
        "keras_backend": keras.backend.backend(),
        "device": device_name(),
        "versions": versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "env": {k: os.environ[k] for k in ("KERAS_BACKEND", "JAX_PLATFORMS", "XLA_FLAGS") if k in os.environ},
        "settings": {
            "repeats": args.repeats,
            "images": len(x),
            "synthetic": args.synthetic,
            "steps_per_execution": args.steps_per_execution,
            "latent": LATENT,
            "data_dir": args.data_dir,
            "only": args.only,
        },
        "host_check_s": host_check_seconds(x),
        "targets": {name: f"{c} {s}" for name, (c, s) in TARGETS.items()},
    }


def write(out, meta, results):
    """(Re)write gpu.json and gpu.md in `out`."""
    with open(os.path.join(out, "gpu.json"), "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=2)
    with open(os.path.join(out, "gpu.md"), "w") as f:
        f.write(markdown(results, meta))


# ------------------------------------------------------------------------------------ main
def load_images(args):
    """The training images: the first --epochs-images of Fashion-MNIST, or random ones."""
    if args.synthetic:
        n = args.epochs_images or EPOCH_IMAGES
        return np.random.default_rng(0).uniform(size=(n, 28, 28)).astype(np.float32)
    x, _ = data.load("fashion_mnist", data_dir=args.data_dir, split="train")
    return x[: args.epochs_images] if args.epochs_images else x


def parse_args(argv=None):
    """The command line (see the module docstring)."""
    names = [c.name for c in configurations()]
    parser = argparse.ArgumentParser(description="Seconds per Fashion-MNIST epoch on a GPU (see the docstring).")
    parser.add_argument("--data-dir", help="directory with the Fashion-MNIST IDX .gz files")
    parser.add_argument("--out", help="output directory for gpu.json and gpu.md (default: a temp dir)")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per configuration (median)")
    parser.add_argument(
        "--epochs-images",
        type=int,
        default=None,
        metavar="N",
        help="use only the first N training images (default: all 60000)",
    )
    parser.add_argument(
        "--steps-per-execution",
        type=int,
        default=50,
        metavar="K",
        help="steps_per_execution of the *_spe configurations",
    )
    parser.add_argument(
        "--only", nargs="+", choices=names, metavar="NAME", help=f"run only these configurations: {', '.join(names)}"
    )
    parser.add_argument("--synthetic", action="store_true", help="random images instead of Fashion-MNIST")
    args = parser.parse_args(argv)
    if not args.synthetic and not args.data_dir:
        parser.error("--data-dir is required unless --synthetic is given")
    if args.repeats < 1 or args.steps_per_execution < 1 or (args.epochs_images is not None and args.epochs_images < 1):
        parser.error("--repeats, --steps-per-execution and --epochs-images must be >= 1")
    return args


def main(argv=None):
    """Run the selected configurations, print the table, write gpu.json and gpu.md."""
    args = parse_args(argv)
    out = args.out or tempfile.mkdtemp(prefix="aae_gpu_bench_")
    os.makedirs(out, exist_ok=True)
    x = load_images(args)
    meta = metadata(args, x)
    print(
        f"backend {meta['keras_backend']}, device {meta['device']}, {len(x)} images, "
        f"host check {meta['host_check_s']:.3f} s per fit call",
        flush=True,
    )
    results = []
    for config in configurations():
        if args.only and config.name not in args.only:
            continue
        print(f"{config.name}: ...", flush=True)
        result = measure(config, x, args)
        results.append(result)
        write(out, meta, results)
        summary = result.get("error") or (
            f"warm-up {result['warmup_s']:.2f} s, epochs {', '.join(f'{t:.3f}' for t in result['epoch_s'])} s"
        )
        print(f"{config.name}: {summary}", flush=True)
    print(markdown(results, meta), flush=True)
    print(f"wrote {os.path.join(out, 'gpu.json')} and gpu.md", flush=True)


if __name__ == "__main__":
    main()
