"""Decoding speed: Keras predict, a direct Keras call, the reloaded SavedModel, onnxruntime and
the deployment kit (export/aae_runtime.py: onnxruntime with the batch split over the cores).

For the paper's MLP decoder (8 -> 1000 -> 1000 -> 28x28) and the conv decoder (8 -> 28x28),
at batch 1 and 256: median seconds per call over `--calls` calls after a warm-up, and images
per second. Weights are untrained (speed does not depend on them). Writes
benchmarks/results/decode.{json,md}.

    python benchmarks/decode.py --calls 200
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import onnxruntime
import tensorflow as tf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "export"))

from aae_keras import export, files, models, networks, priors  # noqa: E402
from aae_runtime import Decoder  # noqa: E402

LATENT = 8
IMAGE = (28, 28)


def decoders(directory):
    """name -> {path: callable(z)} for each decoder kind."""
    result = {}
    for kind in ("mlp", "conv"):
        keras.utils.set_random_seed(0)
        encoder, decoder, _ = networks.build(kind, IMAGE, LATENT)
        model = models.MMDAutoencoder(encoder, decoder, priors.gaussian(LATENT))
        onnx_path = os.path.join(directory, f"{kind}.onnx")
        saved_path = os.path.join(directory, f"{kind}_saved")
        export.export_decoder(model, onnx_path)
        export.export_decoder(model, saved_path)
        session = onnxruntime.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
        loaded = tf.saved_model.load(saved_path)
        kit = Decoder(onnx_path)
        result[kind] = {
            "keras predict": lambda z, d=decoder: d.predict(z, batch_size=len(z), verbose=0),
            "keras call": lambda z, d=decoder: np.asarray(d(z, training=False)),
            "SavedModel": lambda z, s=loaded: np.asarray(s.serve(z)),
            "onnxruntime": lambda z, s=session: s.run(None, {"z": z})[0],
            "deployment kit": lambda z, d=kit: d.decode(z),
        }
    return result


def seconds_per_call(function, z, calls):
    for _ in range(5):
        function(z)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        function(z)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def profile(onnx_path, batch=256, calls=30):
    """Milliseconds per call spent in each node of a plain onnxruntime session, largest first."""
    options = onnxruntime.SessionOptions()
    options.enable_profiling = True
    options.profile_file_prefix = os.path.join(os.path.dirname(onnx_path), "profile")
    session = onnxruntime.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
    z = np.random.default_rng(0).normal(size=(batch, LATENT)).astype(np.float32)
    for _ in range(calls):
        session.run(None, {"z": z})
    per_node = {}
    for event in json.loads(Path(session.end_profiling()).read_text()):
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            key = f"{event['args']['op_name']} {event['name'][: -len('_kernel_time')]}"
            per_node[key] = per_node.get(key, 0.0) + event["dur"] / 1000 / calls
    return sorted(per_node.items(), key=lambda item: -item[1])


def render(report):
    times = {(r["decoder"], r["batch"], r["path"]): r["seconds"] for r in report["rows"]}
    lines = [
        f"Decoder latent {LATENT} -> {IMAGE}, median of {report['calls']} calls after 5 warm-up calls, "
        f"{report['machine']}.",
        "",
        "| decoder | batch | path | ms per call | images/s | speed-up over Keras predict | time vs SavedModel |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in report["rows"]:
        key = (row["decoder"], row["batch"])
        lines.append(
            f"| {row['decoder']} | {row['batch']} | {row['path']} | {1000 * row['seconds']:.3f} | "
            f"{row['images_per_second']:.0f} | {times[(*key, 'keras predict')] / row['seconds']:.1f}x | "
            f"{row['seconds'] / times[(*key, 'SavedModel')]:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "decode.json"))
    parser.add_argument("--render", default=None, metavar="JSON", help="print the table of a saved report and exit")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="print where a plain onnxruntime session spends its time at batch 256, and exit",
    )
    args = parser.parse_args()
    if args.render:
        print(render(json.loads(Path(args.render).read_text())), end="")
        return
    if args.profile:
        with tempfile.TemporaryDirectory() as directory:
            decoders(directory)
            for kind in ("mlp", "conv"):
                nodes = profile(os.path.join(directory, f"{kind}.onnx"))
                print(f"{kind}: {sum(ms for _, ms in nodes):.2f} ms in nodes per call at batch 256")
                for name, ms in nodes[:6]:
                    print(f"  {ms:7.2f} ms  {name}")
        return
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        for kind, paths in decoders(directory).items():
            for batch in (1, 256):
                z = np.random.default_rng(0).normal(size=(batch, LATENT)).astype(np.float32)
                timings = {name: seconds_per_call(f, z, args.calls) for name, f in paths.items()}
                for name, seconds in timings.items():
                    rows.append(
                        {
                            "decoder": kind,
                            "batch": batch,
                            "path": name,
                            "seconds": seconds,
                            "images_per_second": batch / seconds,
                        }
                    )
                    print(kind, batch, name, f"{1000 * seconds:.3f} ms", flush=True)
    report = {
        "calls": args.calls,
        "machine": f"{os.cpu_count()} CPU cores, TensorFlow {tf.__version__}, onnxruntime {onnxruntime.__version__}",
        "rows": rows,
    }
    table = render(report)
    print(table)
    with files.atomic_path(args.out) as tmp:
        Path(tmp).write_text(json.dumps(report, indent=2) + "\n")
    with files.atomic_path(str(Path(args.out).with_suffix(".md"))) as tmp:
        Path(tmp).write_text(table)


if __name__ == "__main__":
    sys.exit(main())
