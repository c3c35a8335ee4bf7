"""Export a trained model's decoder or encoder to ONNX or a TensorFlow SavedModel, verified.

`export_decoder(model, "decoder.onnx")` writes an ONNX file with named inputs (`z`, plus `y`
for decoders that take a class), a dynamic batch axis named `batch`, static image dims, and
metadata (`metadata_props`): the latent size, output shape, the prior's parameters (or
"sample_only"), the model class and name, the zoo preset it was loaded from (if any), the
library version, and for a dimensionality-reduction
decoder, which reads y W + z, its cluster heads W (`cluster_heads`). A directory path (or
`format="tf_saved_model"`) writes a SavedModel with the same metadata in `aae_keras.json`.
Every export runs the written artifact against Keras on batches of 1, 5 and 17 and raises if
any output differs by more than 1e-5. Files appear only once verified (temp path, then rename).

Example:
    >>> from aae_keras import export, models, networks, priors
    >>> enc, dec, _ = networks.build("mlp", (8, 8), 2, hidden=(16,))
    >>> model = models.MMDAutoencoder(enc, dec, priors.gaussian_mixture(10, 2))
    >>> info = export.export_decoder(model, "decoder.onnx")
    >>> info["max_difference"] < 1e-5, info["inputs"]
    (True, ['z'])
"""

import json
import os
import shutil
import tempfile

import keras
import numpy as np

import aae_keras
from aae_keras import priors

__all__ = ["export_decoder", "export_encoder", "FORMATS", "TOLERANCE", "METADATA_FILE"]

FORMATS = ("onnx", "tf_saved_model")
TOLERANCE = 1e-5
METADATA_FILE = "aae_keras.json"  # the metadata inside an exported SavedModel directory
_CHECK_BATCHES = (1, 5, 17)


def export_decoder(model, path, format=None, opset=17, overwrite=False):
    """Export `model`'s decoder to `path`; returns a dict with the path, format, input names,
    metadata and the largest difference from Keras found by the check."""
    return _export(model, "decoder", path, format, opset, overwrite)


def export_encoder(model, path, format=None, opset=17, overwrite=False):
    """Export `model`'s encoder (input `x`: images) to `path`, as `export_decoder`."""
    return _export(model, "encoder", path, format, opset, overwrite)


def _export(model, part, path, format, opset, overwrite):
    path = os.fspath(path)
    format = _format(path, format)
    if not getattr(model, "built", False) or not getattr(model, part).built:
        raise ValueError(f"The model's {part} is not built; train it or call it on data once before exporting.")
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path!r} exists; pass overwrite=True to replace it or choose another path.")
    network, specs = _network(model, part)
    metadata = _metadata(model, part, network, specs)
    target_dir = os.path.dirname(os.path.abspath(path))
    os.makedirs(target_dir, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix=".aae-export-", dir=target_dir)
    try:
        tmp = os.path.join(scratch, "artifact.onnx" if format == "onnx" else "artifact")
        network.export(tmp, format=format, input_signature=[_one_argument(specs)], verbose=False,
                       **({"opset_version": int(opset)} if format == "onnx" else {}))
        if format == "onnx":
            _finish_onnx(tmp, metadata)
        else:
            with open(os.path.join(tmp, METADATA_FILE), "w") as f:
                json.dump(metadata, f, indent=2)
        difference = _check(network, tmp, format, specs, model)
        if difference > TOLERANCE:
            raise RuntimeError(
                f"The exported {part} differs from Keras by {difference:.3g} (> {TOLERANCE}); nothing was written."
            )
        if os.path.isdir(path):
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {"path": path, "format": format, "inputs": [s.name for s in specs], "metadata": metadata,
            "max_difference": difference}


def _format(path, format):
    if format is None:
        format = "onnx" if path.lower().endswith(".onnx") else "tf_saved_model"
    if format == "saved_model":
        format = "tf_saved_model"
    if format not in FORMATS:
        raise ValueError(f"Unknown export format {format!r}; choose one of {', '.join(FORMATS)}.")
    if (format == "onnx") != path.lower().endswith(".onnx"):
        raise ValueError(f"Format {format!r} does not fit the path {path!r}: ONNX files end in .onnx, "
                         "a SavedModel is a directory.")
    return format


def _network(model, part):
    """(a Keras model with named float32 inputs, their InputSpecs) for the part to export."""
    if part == "encoder":
        shape = tuple(model.encoder.input_shape[1:])
        return model.encoder, [keras.InputSpec(shape=(None, *shape), dtype="float32", name="x")]
    z_spec = keras.InputSpec(shape=(None, model.latent_dim), dtype="float32", name="z")
    if not _takes_class(model):
        return model.decoder, [z_spec]
    z, y = keras.Input((model.latent_dim,), name="z"), keras.Input((model.num_classes,), name="y")
    wrapped = keras.Model([z, y], model.decoder(keras.layers.Concatenate()([y, z])), name="decoder")
    return wrapped, [z_spec, keras.InputSpec(shape=(None, model.num_classes), dtype="float32", name="y")]


def _takes_class(model):
    width = model.decoder.input_shape[-1]
    return hasattr(model, "num_classes") and width == model.latent_dim + model.num_classes


def _metadata(model, part, network, specs):
    info = priors.describe(model.prior)
    prior = priors.to_config(model.prior) if info["kind"] != "sample_only" else {"kind": "sample_only", "dim": info["dim"]}
    metadata = {
        "library": "aae_keras",
        "library_version": aae_keras.__version__,
        "keras_version": keras.__version__,
        "part": part,
        "model_class": type(model).__name__,
        "model_name": model.name,
        "preset": (getattr(model, "preset", None) or {}).get("name"),
        "latent_dim": int(model.latent_dim),
        "num_classes": int(getattr(model, "num_classes", 0) or 0),
        "inputs": [s.name for s in specs],
        "output_shape": [int(v) for v in network.output_shape[1:]],
        "prior": prior,
    }
    if part == "decoder" and hasattr(model, "heads"):
        # dimensionality reduction: the decoder reads y W + z, a cluster head plus a prior sample
        metadata["cluster_heads"] = np.asarray(model.heads, np.float64).tolist()
    return metadata


def _finish_onnx(path, metadata):
    """Name the batch axis `batch`, the output `images` / `codes`, and store the metadata."""
    import onnx

    graph_model = onnx.load(path)
    graph = graph_model.graph
    for value in [*graph.input, *graph.output]:
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    new_name = "images" if metadata["part"] == "decoder" else "codes"
    old_name = graph.output[0].name
    for node in graph.node:
        node.output[:] = [new_name if o == old_name else o for o in node.output]
    graph.output[0].name = new_name
    del graph_model.metadata_props[:]
    for key, value in metadata.items():
        entry = graph_model.metadata_props.add()
        entry.key, entry.value = f"aae_keras.{key}", json.dumps(value)
    onnx.save(graph_model, path)


def _check(network, path, format, specs, model):
    """Largest |exported - Keras| over batches of 1, 5 and 17 inputs."""
    rng = np.random.default_rng(0)
    if format == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        run = lambda feeds: session.run(None, feeds)[0]  # noqa: E731
    else:
        import tensorflow as tf

        loaded = tf.saved_model.load(path)  # keep a reference: its variables live with it
        run = lambda feeds: np.asarray(loaded.serve(_one_argument(list(feeds.values()))))  # noqa: E731
    worst = 0.0
    for n in _CHECK_BATCHES:
        feeds = {s.name: _example_inputs(s, n, rng) for s in specs}
        expected = np.asarray(network(_one_argument(list(feeds.values()))))
        worst = max(worst, float(np.max(np.abs(run(feeds) - expected))))
    return worst


def _one_argument(values):
    """The single call argument: the value itself, or the list of them for several inputs."""
    return values if len(values) > 1 else values[0]


def _example_inputs(spec, n, rng):
    width = spec.shape[1:]
    if spec.name == "y":
        return np.eye(width[0], dtype=np.float32)[rng.integers(width[0], size=n)]
    if spec.name == "x":
        return rng.uniform(size=(n, *width)).astype(np.float32)
    return (2.0 * rng.normal(size=(n, *width))).astype(np.float32)
