"""Why do our adversarial autoencoder's codes match N(0, I) worse than pythae's?

At peers.py's protocol (Fashion-MNIST, paper MLP 784-1000-1000-8, discriminator 8-1000-1000-1,
batch 100, Adam(1e-4) everywhere, N(0, I) 8-D prior, summed squared error, 10 epochs) the issue
reported pythae's Adversarial_AE at MMD^2 0.0099 and test MSE 0.0154, our AdversarialAutoencoder
(the paper's three phases) at 0.0447 and 0.0225. Each run here changes one
thing of ours, to find the factor that closes the gap:

    paper                          schedule="paper", three Adam(1e-4)
    joint                          schedule="joint", generator_weight=1: one encoder/decoder update on
                                   reconstruction + generator loss and one discriminator update from one
                                   forward pass (what pythae does)
    joint_w3                       schedule="joint", generator_weight=3
    paper_slow_generator           paper schedule, generator_optimizer=Adam(1e-5)
    paper_gaussian                 paper schedule, posterior="gaussian" (encoder outputs 2 x 8)
    paper_two_discriminator_steps  paper schedule, discriminator_steps=2

Models are built and trained by peers.py (`ours_run`, `run_one`), metrics are its `Quality`
(after every epoch, untimed: per-pixel MSE and biased RBF MMD^2, bandwidth 1, between the codes
of the first 2000 test images and 2000 fixed N(0, I) samples). pythae is not rerun here.

Usage (from the repository root):
    python benchmarks/adversarial_quality.py        # -> benchmarks/results/adversarial_quality.{md,json}
    python benchmarks/adversarial_quality.py --train-size 2000 --epochs 2 --out /tmp/aq_smoke
    python benchmarks/adversarial_quality.py --only paper,joint

Findings (one run, seed 0, 60000 images, 10 epochs; benchmarks/results/adversarial_quality.md):
the schedule is the cause. `joint` alone closes the gap: MSE 0.0152, MMD^2 0.0023 (pythae in
results/peers.json: 0.0164, 0.0322; the issue's earlier figures: 0.0154, 0.0099), with MMD^2 falling every epoch, where `paper` swings between 0.024 and 0.062 (0.0298 at
epoch 10; MSE 0.0247). In the paper schedule the generator has its own Adam, whose steps are as
large as the reconstruction's whatever the loss scale, so against the summed squared error
(about 12 per image) the generator acts with a far larger weight than 1. The discriminator is then
fooled (accuracy 0.54) but the codes don't settle. Slowing that generator to Adam(1e-5) gives back
the MSE (0.0154) but stalls MMD^2 at 0.0127 from epoch 3 on (discriminator accuracy 0.98); a
heavier joint generator (w=3) is worse than w=1 (0.0161, 0.0058). A Gaussian posterior (0.0221,
0.0305; MMD^2 of the posterior means) and two discriminator steps (0.0266, 0.0327) change nothing.
Other processes used ~0.5-1 core throughout, so the s/epoch figures are only rough.
"""

import argparse
import importlib.metadata
import os
import subprocess
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import peers  # noqa: E402  (first: sets TensorFlow's log level, imports pythae)
import torch  # noqa: E402

from aae_keras import data  # noqa: E402

PYTHAE = {"test_mse": 0.0164, "mmd2": 0.0322}  # pythae_aae in results/peers.json, for reference
RUNS = {  # name -> (AdversarialAutoencoder options, {compile keyword: Adam learning rate} overrides)
    "paper": ({"schedule": "paper"}, {}),
    "joint": ({"schedule": "joint", "generator_weight": 1.0}, {}),
    "joint_w3": ({"schedule": "joint", "generator_weight": 3.0}, {}),
    "paper_slow_generator": ({}, {"generator_optimizer": 1e-5}),
    "paper_gaussian": ({"posterior": "gaussian"}, {}),
    "paper_two_discriminator_steps": ({"discriminator_steps": 2}, {}),
}
MARKS = (1, 5, 10)  # epochs whose MMD^2 the table shows
DEFAULT_OUT = os.path.join(peers.REPO_ROOT, "benchmarks", "results", "adversarial_quality")


def builder(options, rates):
    """peers.run_one's `build`: our adversarial model with `options` and fresh Adam(rate) optimizers."""

    def build(name, x, epochs, seed):
        optimizers = {key: keras.optimizers.Adam(rate) for key, rate in rates.items()}
        return peers.ours_run("ours_adversarial", x, epochs, seed, options, optimizers)

    return build


def describe(options, rates):
    cells = [f"{k}={v}" for k, v in options.items()] + [f"{k}=Adam({r:g})" for k, r in rates.items()]
    return ", ".join(cells) or "defaults"


def summarize(run):
    """Final metrics, MMD^2 at MARKS, last-epoch discriminator accuracy, s/epoch of one run."""
    epochs = run["epochs"]
    accuracy = run.get("history", {}).get("discriminator_accuracy")
    return {
        "test_mse": epochs[-1]["test_mse"],
        "mmd2": epochs[-1]["mmd2"],
        "mmd2_at": {e: epochs[e - 1]["mmd2"] for e in MARKS if e <= len(epochs)},
        "discriminator_accuracy": accuracy[-1] if accuracy else None,
        "seconds_per_epoch": peers.median([e["seconds"] for e in epochs[1:]] or [epochs[0]["seconds"]]),
    }


def git_state():
    """HEAD and the aae_keras files that differ from it (another engineer edits them meanwhile)."""

    def git(*args):
        return subprocess.run(["git", *args], cwd=peers.REPO_ROOT, capture_output=True, text=True).stdout.strip()

    return {
        "head": git("rev-parse", "--short", "HEAD"),
        "aae_keras_changed": git("status", "--porcelain", "aae_keras").splitlines(),
    }


def epoch_cell(epochs, i):
    return f"{epochs[i]['test_mse']:.4f} / {epochs[i]['mmd2']:.4f}" if i < len(epochs) else ""


def markdown(results, info, settings):
    f = peers._fmt
    lines = [
        "# Adversarial autoencoder: what makes the codes match N(0, I)",
        "",
        f"Machine: {info['cpu_model']}, {info['cpu_count']} cores ({info['usable_cores']} usable); "
        f"TensorFlow {info['tensorflow']}, Keras {info['keras']}, torch {info['torch']} "
        f"({info['torch_threads']} threads), pythae {info['pythae']}.",
        "",
        f"Command: `{settings['command']}` (git {settings['git']['head']}, "
        f"{len(settings['git']['aae_keras_changed'])} aae_keras file(s) changed from it)",
        "",
        f"peers.py's protocol: Fashion-MNIST, {settings['train_size']} training images, batch {peers.BATCH}, "
        f"{settings['epochs']} epochs, Adam(1e-4) unless stated, paper MLP, latent 8, prior N(0, I), summed "
        f"squared error. Metrics on the first {peers.EVAL_SIZE} test images: per-pixel MSE, biased RBF "
        "(bandwidth 1) MMD^2 to fixed N(0, I) samples. Discriminator accuracy: the fit history's mean over "
        "the last epoch. s/epoch: median of the epochs after the first. Reference, not rerun: pythae's "
        f"Adversarial_AE reached MSE {PYTHAE['test_mse']} and MMD^2 {PYTHAE['mmd2']} (results/peers.json).",
        "",
        "| run | options | test MSE | MMD^2 | "
        + " | ".join(f"MMD^2 ep {e}" for e in MARKS)
        + " | discriminator accuracy | s/epoch |",
        "| --- | --- | --- | --- |" + " --- |" * len(MARKS) + " --- | --- |",
    ]
    for name, entry in results.items():
        head = f"| {name} | {entry['options']} |"
        if "error" in entry:
            lines.append(
                f"{head} failed: {entry['error'].splitlines()[0].replace('|', '/')[:120]} |" + " |" * (len(MARKS) + 3)
            )
            continue
        s = entry["summary"]
        marks = " | ".join(f(s["mmd2_at"].get(e), ".4f", "") for e in MARKS)
        lines.append(
            f"{head} {s['test_mse']:.4f} | {s['mmd2']:.4f} | {marks} | "
            f"{f(s['discriminator_accuracy'], '.3f')} | {s['seconds_per_epoch']:.2f} |"
        )
    done = [name for name, entry in results.items() if "summary" in entry]
    if done:
        lines += [
            "",
            "Per epoch: test MSE / MMD^2",
            "",
            "| epoch | " + " | ".join(done) + " |",
            "| --- |" + " --- |" * len(done),
        ]
        for i in range(max(len(results[n]["epochs"]) for n in done)):
            cells = [epoch_cell(results[name]["epochs"], i) for name in done]
            lines.append(f"| {i + 1} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=peers.default_data_dir(), help="Fashion-MNIST IDX directory")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--train-size", type=int, default=None, help="training images (default: all 60000)")
    parser.add_argument(
        "--only", type=peers.names_in(RUNS), default=list(RUNS), help=f"comma-separated, of {','.join(RUNS)}"
    )
    parser.add_argument("--out", default=DEFAULT_OUT, help="output path without extension (.md and .json written)")
    args = parser.parse_args(argv)

    info = peers.machine_info()
    info.update(
        torch=torch.__version__, torch_threads=torch.get_num_threads(), pythae=importlib.metadata.version("pythae")
    )
    script = os.path.relpath(os.path.abspath(__file__), peers.REPO_ROOT)
    settings = {
        "command": " ".join(["python", script, *(sys.argv[1:] if argv is None else argv)]),
        "epochs": args.epochs,
        "git": git_state(),
        "data_dir": os.path.abspath(args.data_dir),
    }
    dataset = data.load("fashion_mnist", data_dir=args.data_dir)
    x = dataset.x_train[: args.train_size]
    settings["train_size"] = len(x)
    quality = peers.Quality(dataset.x_test)
    results = {}
    for name in [n for n in RUNS if n in args.only]:
        options, rates = RUNS[name]
        print(f"{name}: {describe(options, rates)}", flush=True)
        entry = {"options": describe(options, rates), "constructor": options, "learning_rates": rates}
        try:
            entry.update(peers.run_one(name, x, args.epochs, 0, quality, print, build=builder(options, rates)))
            entry["summary"] = summarize(entry)
        except Exception as error:  # record, go on with the other runs
            entry.update(error=peers.short_error(error), traceback=traceback.format_exc()[-4000:])
            print(f"  {name} FAILED: {entry['error'].splitlines()[0]}", flush=True)
        results[name] = entry
    info["loadavg_at_end"] = list(os.getloadavg())
    table = markdown(results, info, settings)
    print("\n" + table)
    out = os.path.splitext(args.out)[0] if args.out.endswith((".md", ".json")) else args.out
    peers.write_results(
        out, table, {"machine": info, "settings": settings, "pythae_reference": PYTHAE, "results": results}
    )
    print(f"wrote {out}.md and {out}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
