"""Side-by-side training benchmark of aae-keras and pythae (PyTorch) on one CPU machine.

One protocol for every model: Fashion-MNIST (images in [0, 1], 28x28; all 60000 training
images, `--train-size` for fewer), batch 100, shuffled every epoch, `--epochs` (10) epochs,
Adam with learning rate 1e-4 and betas (0.9, 0.999) for every optimizer, prior N(0, I) in 8-D,
the paper's MLP: encoder 784-1000-1000-8 (ReLU, linear codes), decoder 8-1000-1000-784 (ReLU,
sigmoid pixels), discriminator 8-1000-1000-1 (ReLU; a logit in aae-keras, a sigmoid
probability in pythae, whose losses call F.binary_cross_entropy). Every posterior is
deterministic (pythae: `deterministic_posterior=True`, the encoder returns zero
log-covariances). Runs, in this order, `--repeats` times (medians reported):

    pythae_aae              pythae Adversarial_AE + AdversarialTrainer (adversarial_loss_scale 0.5)
    ours_adversarial        AdversarialAutoencoder, the paper's three phases, three optimizers
    ours_adversarial_joint  AdversarialAutoencoder(schedule="joint"): one encoder/decoder update on
                            reconstruction + generator loss, then one discriminator update
    pythae_wae              pythae WAE_MMD (RBF kernel, reg_weight 10) + BaseTrainer
    ours_mmd                MMDAutoencoder (closed-form MMD, weight 10)
    ours_plain              a plain autoencoder (no prior): the floor

Each model trains in one call, as a user would: `model.fit(x, epochs=E, batch_size=100,
shuffle=True, verbose=0)` or pythae's `trainer.train()`. A per-epoch callback stamps the epoch's
begin and end, then (outside the timed span) evaluates on the first 2000 test images: test MSE
(per pixel) and MMD^2 to N(0, I) (biased V-statistic, RBF k(a, b) = exp(-|a - b|^2 / 2), float64,
against 2000 fixed N(0, I) samples). Reported: s/epoch (median of the epochs after the first),
the first epoch, total training seconds (the training call's wall clock minus evaluation; for
pythae it includes building the trainer and its final model save), final metrics, and
time-to-quality: training seconds until test MSE and MMD^2 both reach the peer's final values
(peer of the adversarial runs: pythae_aae; of ours_mmd: pythae_wae; ours_plain: MSE only, vs
pythae_wae). The load of other processes (/proc/stat) is recorded per epoch.

Differences the libraries keep (each library as a user gets it):
* reconstruction="mse" is the summed squared error in both, but pythae's AAE uses 0.5 * SSE
  (its generator term is 0.5 * BCE, so the AE loss is (SSE + BCE) / 2) and its WAE uses SSE;
* pythae's AAE updates encoder/decoder and discriminator simultaneously from one forward pass;
* pythae's WAE MMD: one RBF kernel exp(-|a - b|^2 / (2 d bandwidth^2)) (d = 8: s^2 = 8),
  U-statistic against fresh prior samples; ours: closed form with a 7-bandwidth ladder;
* weight init (Keras glorot-uniform vs torch's nn.Linear default) and Adam epsilon (1e-7 vs 1e-8);
* XLA: aae-keras's models compile with XLA by default on TensorFlow, CPUs included (the plain
  AE is compiled with it too); pythae runs eager PyTorch;
* pythae's trainer deep-copies the model inside every epoch whose train loss improved
  (its "best model"); that time is part of its epochs.

Install (one environment for both libraries):
    pip install pythae torch==2.13.0
    pip install -e .

Usage (from the repository root):
    python benchmarks/peers.py                       # -> benchmarks/results/peers.{md,json}
    python benchmarks/peers.py --repeats 3
    python benchmarks/peers.py --train-size 2000 --epochs 2 --only pythae_aae,ours_adversarial --out /tmp/peers
"""

import argparse
import importlib.metadata
import logging
import math
import os
import statistics
import sys
import tempfile
import time
import traceback

os.environ.setdefault("TQDM_DISABLE", "1")  # pythae's progress bars; tqdm reads it on import
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from pythae.data.datasets import BaseDataset  # noqa: E402
from pythae.models import WAE_MMD, Adversarial_AE, Adversarial_AE_Config, WAE_MMD_Config  # noqa: E402
from pythae.models.base.base_utils import ModelOutput  # noqa: E402
from pythae.models.nn import BaseDecoder, BaseDiscriminator, BaseEncoder  # noqa: E402
from pythae.trainers import (  # noqa: E402
    AdversarialTrainer,
    AdversarialTrainerConfig,
    BaseTrainer,
    BaseTrainerConfig,
)
from pythae.trainers.training_callbacks import TrainingCallback  # noqa: E402
from step_time import (  # noqa: E402  (first: sets TensorFlow's log level)
    BATCH,
    DEFAULT_OUT,
    REPO_ROOT,
    PlainAutoencoder,
    cpu_counters,
    default_data_dir,
    foreign_cores,
    machine_info,
    own_cores,
    short_error,
    write_results,
)
from torch import nn  # noqa: E402

from aae_keras import data, models, networks, priors  # noqa: E402
from aae_keras.models.base import LatentAutoencoder  # noqa: E402

for _name in list(logging.root.manager.loggerDict):  # pythae logs every epoch at INFO
    if _name.startswith("pythae"):
        logging.getLogger(_name).setLevel(logging.WARNING)

IMAGE, LATENT, HIDDEN = (28, 28), 8, networks.PAPER_HIDDEN
PIXELS = IMAGE[0] * IMAGE[1]
LR = 1e-4
EVAL_SIZE, PRIOR_SEED = 2000, 1234
RUNS = {  # name -> (library, peer)
    "pythae_aae": ("pythae", None),
    "ours_adversarial": ("aae-keras", "pythae_aae"),
    "ours_adversarial_joint": ("aae-keras", "pythae_aae"),
    "pythae_wae": ("pythae", None),
    "ours_mmd": ("aae-keras", "pythae_wae"),
    "ours_plain": ("aae-keras", "pythae_wae"),
}
MSE_ONLY = ("ours_plain",)  # no prior: time-to-quality on test MSE alone
RATIOS = (("ours_mmd", "ours_adversarial"), ("ours_adversarial_joint", "ours_adversarial"))


# ----------------------------------------------------------------------- metrics and timing
def kernel_mean(a, b):
    """Mean of exp(-|a_i - b_j|^2 / 2) over all pairs (float64)."""
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return float(np.exp(-np.maximum(d2, 0.0) / 2.0).mean())


class Quality:
    """Test MSE and MMD^2 to N(0, I) on the first EVAL_SIZE test images, given encode / decode."""

    def __init__(self, x_test):
        self.x = x_test[:EVAL_SIZE]
        self.prior = np.random.default_rng(PRIOR_SEED).standard_normal((len(self.x), LATENT))
        self.prior_term = kernel_mean(self.prior, self.prior)

    def __call__(self, encode, decode):
        z = np.asarray(encode(self.x), np.float64)
        x_hat = np.asarray(decode(z.astype(np.float32)), np.float64).reshape(self.x.shape)
        mse = float(np.mean((x_hat - self.x) ** 2))
        return mse, kernel_mean(z, z) + self.prior_term - 2.0 * kernel_mean(z, self.prior)


class Clock:
    """Stamps each epoch's begin and end, then evaluates (`evaluate()` -> (mse, mmd2)) untimed."""

    def __init__(self, name, epochs, evaluate, log):
        self.name, self.total, self.evaluate, self.log = name, epochs, evaluate, log
        self.epochs, self.eval_seconds = [], 0.0

    def begin(self):
        self._counters, self._start = cpu_counters(), time.perf_counter()

    def end(self):
        seconds = time.perf_counter() - self._start
        counters = cpu_counters()
        start = time.perf_counter()
        mse, mmd2 = self.evaluate()
        self.eval_seconds += time.perf_counter() - start
        other = foreign_cores(self._counters, counters, seconds)
        self.epochs.append(
            {
                "seconds": seconds,
                "test_mse": mse,
                "mmd2": mmd2,
                "other_cores": other,
                "own_cores": own_cores(self._counters, counters, seconds),
            }
        )
        self.log(
            f"  {self.name} epoch {len(self.epochs)}/{self.total}: {seconds:.2f} s, MSE {mse:.4f}, "
            f"MMD^2 {mmd2:.4f} (other processes {'?' if other is None else f'{other:.2f}'} cores)"
        )


class KerasClock(keras.callbacks.Callback):
    def __init__(self, clock):
        super().__init__()
        self.clock = clock

    def on_epoch_begin(self, epoch, logs=None):
        self.clock.begin()

    def on_epoch_end(self, epoch, logs=None):
        self.clock.end()


class PythaeClock(TrainingCallback):
    def __init__(self, clock):
        self.clock = clock

    def on_epoch_begin(self, training_config, **kwargs):
        self.clock.begin()

    def on_epoch_end(self, training_config, **kwargs):
        self.clock.end()


# ------------------------------------------------------------------------ pythae's models
def torch_mlp(sizes, output=None):
    """Linear layers of `sizes` with ReLU between them, then `output` (an activation) if given."""
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1], *([output] if output else []))


class TorchEncoder(BaseEncoder):
    """784-1000-1000-8, linear codes; zero log-covariance (deterministic posterior)."""

    def __init__(self):
        super().__init__()
        self.net = torch_mlp([PIXELS, *HIDDEN, LATENT])

    def forward(self, x):
        z = self.net(x.reshape(len(x), -1))
        return ModelOutput(embedding=z, log_covariance=torch.zeros_like(z))


class TorchDecoder(BaseDecoder):
    """8-1000-1000-784, sigmoid pixels, shaped (n, 1, 28, 28)."""

    def __init__(self):
        super().__init__()
        self.net = torch_mlp([LATENT, *HIDDEN, PIXELS], nn.Sigmoid())

    def forward(self, z):
        return ModelOutput(reconstruction=self.net(z).reshape(len(z), 1, *IMAGE))


class TorchDiscriminator(BaseDiscriminator):
    """8-1000-1000-1 ending in a sigmoid (pythae's losses take probabilities)."""

    def __init__(self):
        super().__init__()
        self.net = torch_mlp([LATENT, *HIDDEN, 1], nn.Sigmoid())

    def forward(self, z):
        return ModelOutput(embedding=self.net(z))


def torch_numpy(network, key):
    """numpy -> numpy: `network(x)[key]` under torch.no_grad() in eval mode."""

    def apply(a):
        was_training = network.training
        network.eval()
        with torch.no_grad():
            out = network(torch.from_numpy(np.ascontiguousarray(a, np.float32)))[key].numpy()
        network.train(was_training)
        return out.reshape(len(a), -1)

    return apply


def pythae_run(name, x, epochs, seed):
    """(encode, decode, train(clock), details) for a pythae run."""
    torch.manual_seed(seed)
    shapes = {"input_dim": (1, *IMAGE), "latent_dim": LATENT}
    if name == "pythae_aae":
        config = Adversarial_AE_Config(**shapes, reconstruction_loss="mse", deterministic_posterior=True)
        model = Adversarial_AE(config, TorchEncoder(), TorchDecoder(), TorchDiscriminator())
        trainer_cls, config_cls = AdversarialTrainer, AdversarialTrainerConfig
        rates = {"autoencoder_learning_rate": LR, "discriminator_learning_rate": LR}
    else:
        config = WAE_MMD_Config(**shapes, kernel_choice="rbf", reg_weight=10.0, kernel_bandwidth=1.0)
        model = WAE_MMD(config, TorchEncoder(), TorchDecoder())
        trainer_cls, config_cls, rates = BaseTrainer, BaseTrainerConfig, {"learning_rate": LR}
    dataset = BaseDataset(torch.from_numpy(x[:, None]), torch.zeros(len(x)))

    def train(clock):
        with tempfile.TemporaryDirectory(prefix="peers_pythae_") as tmp:
            config = config_cls(
                output_dir=tmp, per_device_train_batch_size=BATCH, num_epochs=epochs, seed=seed, **rates
            )
            trainer_cls(model, dataset, training_config=config, callbacks=[PythaeClock(clock)]).train()

    return torch_numpy(model.encoder, "embedding"), torch_numpy(model.decoder, "reconstruction"), train, {}


# -------------------------------------------------------------------------- our models
class PlainMSE(PlainAutoencoder):
    """step_time's plain autoencoder with the summed squared error and the numpy API."""

    reconstruction = "mse"

    def encode(self, x):
        return LatentAutoencoder._predict(self, self.encoder, x, 256, "encode")

    def decode(self, z):
        return LatentAutoencoder._predict(self, self.decoder, z, 256, "decode")


def ours_run(name, x, epochs, seed, options=None, optimizers=None):
    """(encode, decode, train(clock), details) for an aae-keras run; `options`: extra
    AdversarialAutoencoder keywords, `optimizers`: compile keywords replacing the Adam(LR) ones."""
    keras.utils.set_random_seed(seed)
    options = dict(options or {})
    outputs = 2 * LATENT if options.get("posterior") == "gaussian" else None
    encoder, decoder, discriminator = networks.build("mlp", IMAGE, LATENT, outputs, hidden=HIDDEN)
    prior = priors.gaussian(LATENT)
    compile_args = {"optimizer": keras.optimizers.Adam(LR)}
    if name == "ours_plain":  # XLA like the library's models (a bare keras.Model skips it on CPU)
        model, compile_args["jit_compile"] = PlainMSE(encoder, decoder), True
    elif name == "ours_mmd":
        model = models.MMDAutoencoder(encoder, decoder, prior, reconstruction="mse", weight=10.0, seed=seed)
    else:
        options.setdefault("schedule", "joint" if name == "ours_adversarial_joint" else "paper")
        model = models.AdversarialAutoencoder(
            encoder, decoder, discriminator, prior, reconstruction="mse", seed=seed, **options
        )
        compile_args["discriminator_optimizer"] = keras.optimizers.Adam(LR)
        if model.schedule == "paper":
            compile_args["generator_optimizer"] = keras.optimizers.Adam(LR)
    model.compile(**{**compile_args, **(optimizers or {})})

    def train(clock):
        """Fits; returns the fit history (per-epoch logs)."""
        return model.fit(
            x, epochs=epochs, batch_size=BATCH, shuffle=True, verbose=0, callbacks=[KerasClock(clock)]
        ).history

    return model.encode, model.decode, train, {"jit_compile": bool(model.jit_compile)}


def run_one(name, x, epochs, seed, quality, log, build=None):
    """Build (`build`, default by the run's library) and train one model; its epochs, total
    training seconds, load and (aae-keras) fit history."""
    np.random.seed(seed)
    build = build or (pythae_run if RUNS[name][0] == "pythae" else ours_run)
    encode, decode, train, details = build(name, x, epochs, seed)
    clock = Clock(name, epochs, lambda: quality(encode, decode), log)
    before, start = cpu_counters(), time.perf_counter()
    history = train(clock)
    wall = time.perf_counter() - start
    run = {
        "seed": seed,
        **details,
        "epochs": clock.epochs,
        "seconds": wall - clock.eval_seconds,
        "eval_seconds": clock.eval_seconds,
        "other_cores": foreign_cores(before, cpu_counters(), wall),
    }
    if history:
        run["history"] = {key: [float(v) for v in values] for key, values in history.items()}
    return run


# ----------------------------------------------------------------------------- summary
def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def time_to_quality(epochs, mse, mmd2=None):
    """Training seconds until test MSE <= mse and (unless None) MMD^2 <= mmd2; None if never."""
    elapsed = 0.0
    for epoch in epochs:
        elapsed += epoch["seconds"]
        if epoch["test_mse"] <= mse and (mmd2 is None or epoch["mmd2"] <= mmd2):
            return elapsed
    return None


def summarize(results):
    """Medians over the repeats, time-to-quality against the peers, s/epoch ratios."""
    for entry in results.values():
        runs = [r for r in entry["runs"] if "epochs" in r]
        if not runs:
            continue
        entry["seconds_per_epoch"] = median([median([e["seconds"] for e in r["epochs"][1:]]) for r in runs])
        entry["first_epoch_seconds"] = median([r["epochs"][0]["seconds"] for r in runs])
        entry["total_seconds"] = median([r["seconds"] for r in runs])
        entry["test_mse"] = median([r["epochs"][-1]["test_mse"] for r in runs])
        entry["mmd2"] = median([r["epochs"][-1]["mmd2"] for r in runs])
        entry["other_cores_max"] = max(
            (e["other_cores"] for r in runs for e in r["epochs"] if e["other_cores"] is not None), default=None
        )
        keys = ("seconds", "test_mse", "mmd2")
        entry["history"] = [
            {key: median([r["epochs"][i][key] for r in runs]) for key in keys} for i in range(len(runs[0]["epochs"]))
        ]
    for name, entry in results.items():
        peer = results.get(entry["peer"], {})
        if "test_mse" not in entry or "test_mse" not in peer:
            continue
        mmd_target = None if name in MSE_ONLY else peer["mmd2"]
        times = [time_to_quality(r["epochs"], peer["test_mse"], mmd_target) for r in entry["runs"] if "epochs" in r]
        entry["time_to_quality_runs"] = times
        ttq = statistics.median([math.inf if t is None else t for t in times])
        entry["time_to_quality"] = None if math.isinf(ttq) else ttq
        entry["vs_peer"] = _ratio(entry, peer)
    return {f"{a}/{b}": _ratio(results[a], results[b]) for a, b in RATIOS if a in results and b in results}


def _ratio(a, b):
    if a.get("seconds_per_epoch") and b.get("seconds_per_epoch"):
        return a["seconds_per_epoch"] / b["seconds_per_epoch"]
    return None


def _fmt(value, spec, missing="?"):
    return missing if value is None else format(value, spec)


def _peer_cells(name, entry, results):
    """The (time-to-quality, s/epoch vs peer) cells of a row."""
    if entry["peer"] is None:
        return "(reference)", ""
    if "test_mse" not in results.get(entry["peer"], {}):
        return f"(no {entry['peer']} result)", ""
    ttq = "not reached" if entry["time_to_quality"] is None else f"{entry['time_to_quality']:.1f} s"
    return ttq + (" (MSE only)" if name in MSE_ONLY else ""), f"{_fmt(entry['vs_peer'], '.2f')}x vs {entry['peer']}"


def _history_cell(entry, i):
    if i >= len(entry["history"]):
        return ""
    epoch = entry["history"][i]
    return f"{epoch['seconds']:.2f} s, {epoch['test_mse']:.4f}, {epoch['mmd2']:.4f}"


def markdown(results, ratios, info, settings):
    lines = [
        "# aae-keras vs pythae: training time and quality",
        "",
        f"Machine: {info['cpu_model']}, {info['cpu_count']} cores ({info['usable_cores']} usable); "
        f"TensorFlow {info['tensorflow']}, Keras {info['keras']}, torch {info['torch']} "
        f"({info['torch_threads']} threads), pythae {info['pythae']}.",
        "",
        f"Command: `{settings['command']}`",
        "",
        f"Fashion-MNIST, {settings['train_size']} training images, batch {BATCH}, {settings['epochs']} epochs, "
        f"Adam(1e-4) everywhere, paper MLP (hidden {HIDDEN}), latent 8, prior N(0, I); medians over "
        f"{settings['repeats']} repeat(s). Metrics on the first {EVAL_SIZE} test images after each epoch "
        "(untimed): per-pixel MSE and biased RBF (bandwidth 1) MMD^2 to fixed N(0, I) samples. "
        "seconds/epoch: median of the epochs after the first; time-to-quality: training seconds until "
        "test MSE and MMD^2 both reach the peer's final values (plain AE: MSE only); other load: the most "
        "cores other processes kept busy during an epoch.",
        "",
        "| model | library | seconds/epoch | first epoch s | test MSE | MMD^2 | time-to-quality | s/epoch vs peer "
        "| other load |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, entry in results.items():
        head = f"| {name} | {entry['library']} |"
        if "test_mse" not in entry:
            error = next((r["error"] for r in entry["runs"] if "error" in r), "no result")
            lines.append(f"{head} failed: {error.splitlines()[0].replace('|', '/')[:120]} | | | | | | |")
            continue
        ttq, vs = _peer_cells(name, entry, results)
        lines.append(
            f"{head} {_fmt(entry['seconds_per_epoch'], '.2f')} | {entry['first_epoch_seconds']:.2f} | "
            f"{entry['test_mse']:.4f} | {entry['mmd2']:.4f} | {ttq} | {vs} | {_fmt(entry['other_cores_max'], '.2f')} |"
        )
    lines += [""] + [f"- s/epoch {key}: {_fmt(value, '.2f')}x" for key, value in ratios.items()]
    done = [name for name, entry in results.items() if "history" in entry]
    if done:
        lines += [
            "",
            "Per epoch (median over repeats): seconds, test MSE, MMD^2",
            "",
            "| epoch | " + " | ".join(done) + " |",
            "| --- |" + " --- |" * len(done),
        ]
        for i in range(max(len(results[name]["history"]) for name in done)):
            lines.append(f"| {i + 1} | " + " | ".join(_history_cell(results[name], i) for name in done) + " |")
    failures = [(name, r) for name, entry in results.items() for r in entry["runs"] if "error" in r]
    if failures:
        lines += ["", "Failures:", ""]
        for name, run in failures:
            lines += [f"- {name} (seed {run['seed']}):", "", "```", run["error"], "```", ""]
    return "\n".join(lines) + "\n"


# -------------------------------------------------------------------------------- main
def names_in(known):
    """An argparse type: comma-separated run names, each one of `known`."""

    def parse(text):
        names = [name.strip() for name in text.split(",") if name.strip()]
        unknown = [name for name in names if name not in known]
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown run(s) {', '.join(unknown)}; choose from {', '.join(known)}")
        return names

    return parse


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data-dir",
        default=default_data_dir(),
        help="Fashion-MNIST IDX directory (default: $AAE_KERAS_FASHION_MNIST_DIR "
        "or ../shared/data/fashion-mnist next to the repository)",
    )
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--train-size", type=int, default=None, help="training images (default: all 60000)")
    parser.add_argument("--repeats", type=int, default=1, help="cycles over the runs; medians reported")
    parser.add_argument(
        "--only",
        type=names_in(RUNS),
        default=list(RUNS),
        help=f"comma-separated runs, of {','.join(RUNS)} (default: all)",
    )
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)

    def log(message):
        print(message, flush=True)

    info = machine_info()
    info.update(
        torch=torch.__version__, torch_threads=torch.get_num_threads(), pythae=importlib.metadata.version("pythae")
    )
    script = os.path.relpath(os.path.abspath(__file__), REPO_ROOT)
    command = " ".join(["python", script, *(sys.argv[1:] if argv is None else argv)])
    log(
        f"{info['cpu_model']}, {info['cpu_count']} cores, TF {info['tensorflow']}, torch {info['torch']}, "
        f"pythae {info['pythae']}, load {info['loadavg_at_start'][0]:.2f}"
    )
    dataset = data.load("fashion_mnist", data_dir=args.data_dir)
    x = dataset.x_train[: args.train_size]
    quality = Quality(dataset.x_test)
    names = [name for name in RUNS if name in args.only]
    results = {name: {"library": RUNS[name][0], "peer": RUNS[name][1], "runs": []} for name in names}
    for repeat in range(args.repeats):
        for name in names:
            log(f"{name} (repeat {repeat + 1}/{args.repeats})")
            try:
                run = run_one(name, x, args.epochs, repeat, quality, log)
            except Exception as error:  # record, go on with the other runs
                run = {"seed": repeat, "error": short_error(error), "traceback": traceback.format_exc()[-4000:]}
                log(f"  {name} FAILED: {run['error'].splitlines()[0]}")
            results[name]["runs"].append(run)
    ratios = summarize(results)
    info["loadavg_at_end"] = list(os.getloadavg())
    settings = {
        "command": command,
        "epochs": args.epochs,
        "train_size": len(x),
        "repeats": args.repeats,
        "batch": BATCH,
        "learning_rate": LR,
        "latent": LATENT,
        "hidden": list(HIDDEN),
        "eval_size": EVAL_SIZE,
        "prior_seed": PRIOR_SEED,
        "runs": names,
        "data_dir": os.path.abspath(args.data_dir),
    }
    table = markdown(results, ratios, info, settings)
    print()
    print(table)
    write_results(
        os.path.join(args.out, "peers"),
        table,
        {"machine": info, "settings": settings, "ratios": ratios, "results": results},
    )
    log(f"wrote {os.path.join(args.out, 'peers.md')} and peers.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
