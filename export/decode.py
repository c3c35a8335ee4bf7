"""Decode prior samples with an exported aae-keras ONNX decoder (onnxruntime + numpy only).

The source tree's script for `aae_runtime.main` (installed as `aae-keras-decode`):

    python export/decode.py decoder.onnx --n 64 --out grid.png
    python export/decode.py decoder.onnx --n 100 --class 3 --out threes.npy
"""

import sys

from aae_runtime import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
