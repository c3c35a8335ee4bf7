"""aae-keras: autoencoders whose latent space is shaped to match a prior.

`import aae_keras` registers every model and regularizer with Keras (as KerasHub does), so
`keras.saving.load_model("model.keras")` works after it with no further import.

Example:
    >>> import aae_keras, keras
    >>> keras.saving.get_registered_object("aae_keras>MMDAutoencoder").__name__
    'MMDAutoencoder'
"""

import os as _os
import sys as _sys

_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"


def _console_script_starting():
    """Whether this process is the `aae-keras` console script importing the package."""
    argv = getattr(_sys, "argv", None) or [""]
    return _os.path.basename(argv[0]).removesuffix(".exe") == "aae-keras"


# Registration imports TensorFlow (about 7 s on a small machine). The `aae-keras` console
# script skips it here so that `--help`, usage errors and an unwritable --out answer at once;
# its commands import aae_keras.models (which registers everything) once the arguments are
# checked. Every other import of the package registers eagerly.
if not _console_script_starting():
    from aae_keras import models, regularizers  # noqa: E402,F401  (registers the Keras objects)
