"""Decode prior samples with an exported aae-keras ONNX decoder (onnxruntime + numpy only).

    python export/decode.py decoder.onnx --n 64 --out grid.png
    python export/decode.py decoder.onnx --n 100 --class 3 --out threes.npy
"""

import argparse
import sys

import numpy as np
from aae_runtime import Decoder, write_grid, write_npy


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("decoder", help="an .onnx decoder written by aae_keras.export")
    parser.add_argument("--n", type=int, default=64, help="number of images (default: %(default)s)")
    parser.add_argument("--class", dest="label", type=int, default=None,
                        help="class to draw: the decoder's class input, or the mixture component of a "
                        "label-conditioned prior (default: every class in turn)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None,
                        help="decode pieces of each batch on this many threads (default: the CPU count)")
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
        print(f"decode: error: {error}", file=sys.stderr)
        return 2
    print(f"Wrote {len(images)} images to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
