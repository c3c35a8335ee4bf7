"""Run an aae-keras ONNX decoder with onnxruntime and numpy only (no TensorFlow, no Keras).

The decoder file carries its prior in its metadata (`aae_keras.*` metadata_props, written by
`aae_keras.export.export_decoder`), so latents are sampled here from the same prior the model
was trained with: Gaussian mixtures (diagonal or full covariances), uniform boxes,
categoricals and the swiss roll. Decoders that take a class get it as `y` (one-hot).

Installed with aae-keras as the top-level module `aae_runtime`, with the command line
`aae-keras-decode` (also `python -m aae_runtime`, or `python export/decode.py` in the source
tree). It never imports aae_keras, so it runs where only numpy and onnxruntime are installed.

Example (a decoder exported with `aae-keras export MODEL --out decoder.onnx`):

    from aae_runtime import Decoder, write_grid
    decoder = Decoder("decoder.onnx")
    z = decoder.sample_latents(64, seed=0)        # from the prior in the metadata
    images = decoder.decode(z)                    # [64, H, W] float32 in [0, 1]
    write_grid(images, "grid.png")

Command line:

    aae-keras-decode decoder.onnx --n 64 --out grid.png
    aae-keras-decode decoder.onnx --n 100 --class 3 --out threes.npy
"""

import argparse
import io
import json
import os
import struct
import sys
import tempfile
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnxruntime
from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument, InvalidGraph, InvalidProtobuf

__all__ = ["Decoder", "sample_prior", "write_grid", "write_npy", "main"]
HOW_TO_EXPORT = "export one with `aae-keras export MODEL --out decoder.onnx`"


class Decoder:
    """An exported decoder: `sample_latents(n)`, `decode(z, y=None)`, `metadata`.

    `threads` (default: the CPU count) single-threaded onnxruntime runs decode a batch side by
    side, in pieces of at most `rows_per_run` rows. On 2 cores this decodes the conv decoder's
    batch of 256 in 12.7 ms against 20.6 ms for one onnxruntime run on its own thread pool,
    whose transposed convolutions go one image at a time (benchmarks/decode.py).
    `threads=1` makes one run per batch on onnxruntime's own thread pool instead.
    """

    def __init__(self, path, threads=None, rows_per_run=32):
        self.threads = int(os.cpu_count() or 1) if threads is None else int(threads)
        if self.threads < 1 or rows_per_run < 1:
            raise ValueError(f"threads and rows_per_run must be at least 1, got {threads} and {rows_per_run}.")
        self.rows_per_run = int(rows_per_run)
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path} does not exist or is not a file; {HOW_TO_EXPORT}.")
        options = onnxruntime.SessionOptions()
        if self.threads > 1:
            options.intra_op_num_threads = 1
        try:
            self.session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        except (InvalidProtobuf, InvalidArgument, InvalidGraph):
            raise ValueError(
                f"{path} is not an ONNX model (onnxruntime cannot read it: a different or truncated "
                f"file?); {HOW_TO_EXPORT}."
            ) from None
        self._pool = ThreadPoolExecutor(self.threads) if self.threads > 1 else None
        props = self.session.get_modelmeta().custom_metadata_map
        if "aae_keras.prior" not in props:
            raise ValueError(
                f"{path} has no aae-keras metadata (aae_keras.prior); export the decoder with "
                "aae_keras.export.export_decoder or `aae-keras export`, which records the prior."
            )
        self.metadata = {
            key.split(".", 1)[1]: json.loads(value) for key, value in props.items() if key.startswith("aae_keras.")
        }
        if self.metadata.get("part") != "decoder":
            raise ValueError(f"{path} holds an exported {self.metadata.get('part')}, not a decoder.")
        self.latent_dim = int(self.metadata["latent_dim"])
        self.num_classes = int(self.metadata.get("num_classes", 0))
        self.takes_class = "y" in self.metadata["inputs"]

    def sample_latents(self, n, seed=None, component=None):
        """n latents [n, latent_dim] from the prior recorded in the metadata; `component`
        restricts a mixture prior to one component (the class of a label-conditioned model).

        A dimensionality-reduction decoder reads y W + z: a prior sample plus the head W[k] of
        a uniformly drawn cluster k (or of cluster `component`)."""
        rng = np.random.default_rng(seed)
        heads = self.metadata.get("cluster_heads")
        if heads is None:
            return sample_prior(self.metadata["prior"], n, rng, component)
        heads = np.asarray(heads, np.float32)
        if component is not None and not 0 <= component < len(heads):
            raise ValueError(f"cluster {component} does not exist: this decoder has {len(heads)} clusters.")
        clusters = rng.integers(len(heads), size=n) if component is None else np.full(n, component)
        return sample_prior(self.metadata["prior"], n, rng) + heads[clusters]

    def decode(self, z, y=None, batch_size=256):
        """Images for latents z [n, latent_dim]; `y` (ints or one-hot rows) for class decoders."""
        z = np.asarray(z, np.float32)
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"Latents must have shape (n, {self.latent_dim}) for this decoder, got {z.shape}.")
        bad = np.argwhere(~np.isfinite(z))
        if len(bad):
            raise ValueError(
                f"Latents must be finite: {len(bad)} values are NaN or inf, first in row {bad[0][0]} "
                f"(index {tuple(int(i) for i in bad[0])}); clean or drop those rows."
            )
        feeds = {"z": z}
        if self.takes_class:
            if y is None:
                raise ValueError(f"This decoder takes a class: pass y (ints in 0..{self.num_classes - 1}).")
            y = np.asarray(y)
            if y.ndim < 2:
                y = np.broadcast_to(y, (len(z),))
                if y.min() < 0 or y.max() >= self.num_classes:
                    raise ValueError(f"Classes must lie in 0..{self.num_classes - 1}, got {y.min()}..{y.max()}.")
                y = np.eye(self.num_classes, dtype=np.float32)[y]
            feeds["y"] = y.astype(np.float32)
        outputs = [
            self._run({k: v[start : start + batch_size] for k, v in feeds.items()})
            for start in range(0, len(z), batch_size)
        ]
        return np.concatenate(outputs, axis=0)

    def _run(self, feeds):
        """One batch: in pieces of at most `rows_per_run` rows on the worker threads."""
        rows = len(feeds["z"])
        if self._pool is None or rows <= self.rows_per_run:
            return self.session.run(None, feeds)[0]
        bounds = np.linspace(0, rows, -(-rows // self.rows_per_run) + 1).astype(int)
        parts = [{k: v[a:b] for k, v in feeds.items()} for a, b in zip(bounds[:-1], bounds[1:])]
        return np.concatenate(list(self._pool.map(lambda part: self.session.run(None, part)[0], parts)), axis=0)


def sample_prior(prior, n, rng, component=None):
    """n samples [n, d] of a prior described as in the metadata (`aae_keras.priors.to_config`);
    `component` picks one component of a mixture."""
    kind = prior["kind"]
    if component is not None and (kind != "mixture" or not 0 <= component < len(prior["weights"])):
        raise ValueError(f"component {component} does not exist in this {kind} prior.")
    if kind == "mixture":
        weights, means = np.asarray(prior["weights"]), np.asarray(prior["means"])
        picks = (
            rng.choice(len(weights), size=n, p=weights / weights.sum()) if component is None else np.full(n, component)
        )
        noise = rng.standard_normal((n, means.shape[1]))
        if "covariances" in prior:
            noise = np.einsum("nij,nj->ni", np.linalg.cholesky(np.asarray(prior["covariances"]))[picks], noise)
        else:
            noise = noise * np.sqrt(np.asarray(prior["variances"]))[picks]
        return (means[picks] + noise).astype(np.float32)
    if kind == "uniform":
        return rng.uniform(prior["low"], prior["high"], size=(n, len(prior["low"]))).astype(np.float32)
    if kind == "categorical":
        probs = np.asarray(prior["probs"])
        return np.eye(len(probs), dtype=np.float32)[rng.choice(len(probs), size=n, p=probs / probs.sum())]
    if kind == "swiss_roll":
        t, noise = rng.uniform(size=n), rng.normal(scale=prior["noise"], size=n)
        angle, radius = 2 * np.pi * prior["turns"] * np.sqrt(t), prior["radius"] * np.sqrt(t) + noise
        return np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1).astype(np.float32)
    raise ValueError(f"The decoder's prior is {kind!r}: it cannot be sampled here; pass latents to decode().")


def write_grid(images, path, rows=None):
    """Write images [n, H, W] (or [n, H, W, C], C in 1/3) in [0, 1] as one PNG grid, atomically."""
    images = np.clip(np.asarray(images, np.float32), 0, 1)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    n, h, w = images.shape[:3]
    rows = rows or int(np.ceil(np.sqrt(n)))
    cols = int(np.ceil(n / rows))
    channels = images.shape[3] if images.ndim == 4 else 1
    grid = np.full((rows * (h + 1) + 1, cols * (w + 1) + 1, channels), 0.5, np.float32)
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        grid[1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + c * (w + 1) : 1 + c * (w + 1) + w] = image.reshape(
            h, w, channels
        )
    pixels = (grid * 255 + 0.5).astype(np.uint8)
    raw = b"".join(b"\x00" + row.tobytes() for row in pixels)
    color = {1: 0, 3: 2}[channels]

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", grid.shape[1], grid.shape[0], 8, color, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )
    _atomic_write(path, png)


def write_npy(array, path):
    """Write an array as .npy, atomically."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    _atomic_write(path, buffer.getvalue())


def _atomic_write(path, data):
    """Write bytes to a temporary file next to `path`, then rename it; errors name `path`."""
    path = os.fspath(path)
    tmp = None
    try:
        with tempfile.NamedTemporaryFile(
            dir=os.path.dirname(os.path.abspath(path)), prefix=".aae_runtime-", delete=False
        ) as f:
            tmp = f.name
            f.write(data)
        os.replace(tmp, path)
    except OSError as error:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
        raise OSError(
            f"cannot write {path}: {error.strerror or error}; check that its folder exists and is writable."
        ) from None


# ---------------------------------------------------------------------------- command line
def _at_least(minimum):
    """An argparse type: a whole number of at least `minimum`."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be a whole number of at least {minimum}, got {text!r}")
        return value

    return parse


def main(argv=None):
    """`aae-keras-decode DECODER [--n N] [--class K] [--seed S] [--batch-size B] [--threads T]
    [--out grid.png|array.npy]`: decode prior samples; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="aae-keras-decode",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Decode prior samples with an exported aae-keras ONNX decoder (onnxruntime + numpy only).",
        epilog="  aae-keras-decode decoder.onnx --n 64 --out grid.png\n"
        "  aae-keras-decode decoder.onnx --n 100 --class 3 --out threes.npy",
    )
    parser.add_argument("decoder", help="an .onnx decoder written by aae_keras.export or `aae-keras export`")
    parser.add_argument("--n", type=_at_least(1), default=64, help="number of images (default: %(default)s)")
    parser.add_argument(
        "--class",
        dest="label",
        type=int,
        default=None,
        help="class to draw: the decoder's class input, or the mixture component of a "
        "label-conditioned prior (default: every class in turn)",
    )
    parser.add_argument("--seed", type=_at_least(0), default=0)
    parser.add_argument("--batch-size", type=_at_least(1), default=256)
    parser.add_argument(
        "--threads",
        type=_at_least(1),
        default=None,
        help="decode pieces of each batch on this many threads (default: the CPU count)",
    )
    parser.add_argument("--out", default="samples.png", help=".png grid or .npy array (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        decoder = Decoder(args.decoder, threads=args.threads)
        y = None
        if decoder.takes_class:
            y = args.label if args.label is not None else np.arange(args.n) % decoder.num_classes
            z = decoder.sample_latents(args.n, seed=args.seed)
        else:
            z = decoder.sample_latents(args.n, seed=args.seed, component=args.label)
        images = decoder.decode(z, y, batch_size=args.batch_size)
        (write_npy if args.out.endswith(".npy") else write_grid)(images, args.out)
    except (ValueError, OSError) as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    print(f"Wrote {len(images)} images to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
