"""Export a trained model's decoder or encoder to ONNX or a TensorFlow SavedModel, verified.

`export_decoder(model, "decoder.onnx")` writes an ONNX file with named inputs (`z`, plus `y`
for decoders that take a class), a dynamic batch axis named `batch`, static image dims, and
metadata (`metadata_props`): the latent size, the output names and shape, the prior's
parameters (or "sample_only"), the model class and name, the dtype policy it was trained in,
the zoo preset it was loaded from (if any), the library version, and for a
dimensionality-reduction decoder, which reads y W + z, its cluster heads W (`cluster_heads`).
The output is `images` (decoders) or `codes` (encoders); a Gaussian-posterior encoder has two,
`codes` (the means) and `log_variances`. A directory path (or `format="tf_saved_model"`) writes
a SavedModel with the same metadata in `aae_keras.json`.

The graph always takes and returns float32: a network built under a mixed-precision policy is
exported as a float32 copy with the same weights. Every export runs the written artifact
against the exported Keras network on batches of 1, 5 and 17 and raises if any output differs
by more than 1e-5 (`TOLERANCE`) times the largest magnitude of that output (at least 1): float32
rounding grows with the outputs' size, so logits of 77 differ by about 1e-4; for a mixed-precision network it also raises if the artifact
differs from the network as trained by more than `MIXED_TOLERANCE` (0.05) times the largest
magnitude of that output (at least 1): bfloat16 keeps about 3 significant digits. Files appear
only once verified (temp path, then rename).

Example:
    >>> from aae_keras import export, models, networks, priors
    >>> enc, dec, _ = networks.build("mlp", (8, 8), 2, hidden=(16,))
    >>> model = models.MMDAutoencoder(enc, dec, priors.gaussian_mixture(10, 2))
    >>> info = export.export_decoder(model, "decoder.onnx")
    >>> info["max_difference"] < 1e-5, info["inputs"]
    (True, ['z'])
"""

import contextlib
import json
import os
import shutil
import tempfile

import keras
import numpy as np

import aae_keras
from aae_keras import files, priors

__all__ = ["export_decoder", "export_encoder", "FORMATS", "TOLERANCE", "MIXED_TOLERANCE", "METADATA_FILE"]

FORMATS = ("onnx", "tf_saved_model")
TOLERANCE = 1e-5  # exported vs float32 Keras network: max |difference| / max(1, max |Keras output|)
MIXED_TOLERANCE = 0.05  # vs a mixed-precision network: max |difference| / max(1, max |Keras output|)
METADATA_FILE = "aae_keras.json"  # the metadata inside an exported SavedModel directory
_CHECK_BATCHES = (1, 5, 17)


def export_decoder(model, path, format=None, opset=17, overwrite=False):
    """Export `model`'s decoder to `path`; returns a dict with the path, format, input and
    output names, metadata, the largest difference from Keras found by the check
    (`max_difference`), that difference relative to the outputs' scale (`relative_difference`,
    what `TOLERANCE` bounds) and, for a mixed-precision model, from the network as trained
    (`mixed_precision_difference`, else None)."""
    return _export(model, "decoder", path, format, opset, overwrite)


def export_encoder(model, path, format=None, opset=17, overwrite=False):
    """Export `model`'s encoder (input `x`: images) to `path`, as `export_decoder`."""
    return _export(model, "encoder", path, format, opset, overwrite)


def _export(model, part, path, format, opset, overwrite):
    import keras

    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(
            f"Export (SavedModel, and ONNX through tf2onnx) runs on the TensorFlow backend; Keras runs on "
            f"{keras.backend.backend()!r}. Save the model (model.save or save_to_preset) and export it from a "
            "TensorFlow install: KERAS_BACKEND=tensorflow aae-keras export ... (the weights load on every backend)."
        )
    from aae_keras.models import LatentAutoencoder

    if not isinstance(model, LatentAutoencoder):
        raise ValueError(
            f"{type(model).__name__} is not an autoencoder, so it has no {part} to export: aae_keras.export "
            "(aae-keras export) writes the decoder or encoder of an aae-keras autoencoder. To serve this model "
            "whole, use Keras's model.export(path) (a SavedModel; format='onnx' for ONNX)."
        )
    path = os.fspath(path)
    format = _format(path, format)
    if not getattr(model, "built", False) or not getattr(model, part).built:
        raise ValueError(f"The model's {part} is not built; train it or call it on data once before exporting.")
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path!r} exists; pass overwrite=True to replace it or choose another path.")
    trained, policy = getattr(model, part), _policy(getattr(model, part))
    with _float32_policy():
        network, specs, outputs = _network(model, part, _float32_copy(trained, part, policy))
        references = [network]
        if policy != "float32":  # also compare with the network as trained
            references.append(_network(model, part, trained)[0])
    metadata = _metadata(model, part, network, specs, outputs, policy)
    target_dir = os.path.dirname(os.path.abspath(path))
    os.makedirs(target_dir, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix=".aae-export-", dir=target_dir)
    try:
        tmp = os.path.join(scratch, "artifact.onnx" if format == "onnx" else "artifact")
        network.export(
            tmp,
            format=format,
            input_signature=[_one_argument(specs)],
            verbose=False,
            **({"opset_version": int(opset)} if format == "onnx" else {}),
        )
        if format == "onnx":
            _finish_onnx(tmp, metadata)
        else:
            with open(os.path.join(tmp, METADATA_FILE), "w") as f:
                json.dump(metadata, f, indent=2)
        (difference, relative), *mixed = _check(tmp, format, specs, outputs, references)
        if relative > TOLERANCE:
            raise RuntimeError(
                f"The exported {part} differs from Keras by {difference:.3g}, {relative:.3g} relative to its outputs' "
                f"scale (> {TOLERANCE}); nothing was written."
            )
        mixed = [scaled for _, scaled in mixed]
        if mixed and mixed[0] > MIXED_TOLERANCE:
            raise RuntimeError(
                f"The exported float32 {part} differs from the {policy} Keras {part} by {mixed[0]:.3g} "
                f"(relative to the largest output above 1; > {MIXED_TOLERANCE}); nothing was written."
            )
        files.replace_directory(tmp, path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {
        "path": path,
        "format": format,
        "inputs": [s.name for s in specs],
        "outputs": outputs,
        "metadata": metadata,
        "max_difference": difference,
        "relative_difference": relative,
        "mixed_precision_difference": mixed[0] if mixed else None,
    }


def _format(path, format):
    if format is None:
        format = "onnx" if path.lower().endswith(".onnx") else "tf_saved_model"
    if format == "saved_model":
        format = "tf_saved_model"
    if format not in FORMATS:
        raise ValueError(f"Unknown export format {format!r}; choose one of {', '.join(FORMATS)}.")
    if (format == "onnx") != path.lower().endswith(".onnx"):
        raise ValueError(
            f"Format {format!r} does not fit the path {path!r}: ONNX files end in .onnx, a SavedModel is a directory."
        )
    return format


def _network(model, part, core):
    """(a Keras model with named float32 inputs around `core`, its InputSpecs, output names)."""
    if part == "encoder":
        spec = keras.InputSpec(shape=(None, *core.input_shape[1:]), dtype="float32", name="x")
        if model.posterior != "gaussian":
            return core, [spec], ["codes"]
        x, d = keras.Input(spec.shape[1:], name="x"), model.latent_dim
        out = core(x)  # [class logits of a variant,] means, log-variances: the last d are log-variances
        split = core.output_shape[-1] - d
        wrapped = keras.Model(x, {"codes": out[:, :split], "log_variances": out[:, split:]}, name="encoder")
        return wrapped, [spec], ["codes", "log_variances"]
    z_spec = keras.InputSpec(shape=(None, model.latent_dim), dtype="float32", name="z")
    if not model.decoder_takes_class:
        return core, [z_spec], ["images"]
    z, y = keras.Input((model.latent_dim,), name="z"), keras.Input((model.num_classes,), name="y")
    wrapped = keras.Model([z, y], core(keras.layers.Concatenate()([y, z])), name="decoder")
    y_spec = keras.InputSpec(shape=(None, model.num_classes), dtype="float32", name="y")
    return wrapped, [z_spec, y_spec], ["images"]


def _policy(network):
    """The dtype policy `network`'s layers use: "float32", "mixed_bfloat16", ... (comma-joined if several)."""
    names = set()
    stack = [network]
    while stack:
        layer = stack.pop()
        names.add(layer.dtype_policy.name)
        stack.extend(getattr(layer, "layers", ()))
    return ", ".join(sorted(names - {"float32"})) or "float32"


def _float32_copy(network, part, policy):
    """`network` itself if it computes in float32, else a float32 rebuild holding its weights."""
    if policy == "float32":
        return network
    config = _with_float32_policies(keras.saving.serialize_keras_object(network))
    try:
        copy = keras.saving.deserialize_keras_object(config)
        copy.set_weights(network.get_weights())
    except Exception as error:
        raise ValueError(f"Cannot rebuild the {policy} {part} in float32 for export: {error}") from None
    return copy


def _with_float32_policies(config):
    """A copy of a serialized Keras object with every dtype policy set to float32."""
    if isinstance(config, list):
        return [_with_float32_policies(v) for v in config]
    if not isinstance(config, dict):
        return config
    if config.get("class_name") == "DTypePolicy":
        return {**config, "config": {**config["config"], "name": "float32"}}
    return {k: _with_float32_policies(v) for k, v in config.items()}


@contextlib.contextmanager
def _float32_policy():
    """Build layers under the float32 global dtype policy; the caller's is restored after."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _metadata(model, part, network, specs, outputs, policy):
    info = priors.describe(model.prior)
    prior = (
        priors.to_config(model.prior) if info["kind"] != "sample_only" else {"kind": "sample_only", "dim": info["dim"]}
    )
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
        "outputs": outputs,
        "output_shape": [int(v) for v in keras.tree.flatten(network.output)[0].shape[1:]],  # of each output
        "trained_dtype_policy": policy,
        "prior": prior,
    }
    if part == "decoder":
        metadata.update(model.decoder_metadata())  # e.g. the cluster heads of dimensionality reduction
    return metadata


def _finish_onnx(path, metadata):
    """Name the batch axis `batch` and the outputs as in `metadata["outputs"]`; store the metadata."""
    import onnx

    graph_model = onnx.load(path)
    graph = graph_model.graph
    for value in [*graph.input, *graph.output]:
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    renames = {value.name: name for value, name in zip(graph.output, metadata["outputs"])}
    for node in graph.node:
        node.output[:] = [renames.get(o, o) for o in node.output]
    for value in graph.output:
        value.name = renames[value.name]
    del graph_model.metadata_props[:]
    for key, value in metadata.items():
        entry = graph_model.metadata_props.add()
        entry.key, entry.value = f"aae_keras.{key}", json.dumps(value)
    onnx.save(graph_model, path)


def _check(path, format, specs, outputs, references):
    """For each Keras network of `references`, (the largest |exported - Keras|, the largest
    |exported - Keras| / max(1, max |Keras output|)) over every output on batches of 1, 5 and 17
    inputs: float32 rounding grows with the outputs' size (logits of 77 round to about 1e-4)."""
    rng = np.random.default_rng(0)
    if format == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        run = lambda feeds: session.run(outputs, feeds)  # noqa: E731
    else:
        import tensorflow as tf

        loaded = tf.saved_model.load(path)  # keep a reference: its variables live with it
        run = lambda feeds: _named(loaded.serve(_one_argument(list(feeds.values()))), outputs)  # noqa: E731
    worst = [(0.0, 0.0)] * len(references)
    for n in _CHECK_BATCHES:
        feeds = {s.name: _example_inputs(s, n, rng) for s in specs}
        got = run(feeds)
        for i, network in enumerate(references):
            for g, e in zip(got, _named(network(_one_argument(list(feeds.values()))), outputs)):
                gap = float(np.max(np.abs(g - e)))
                scale = max(1.0, float(np.max(np.abs(e))))
                worst[i] = (max(worst[i][0], gap), max(worst[i][1], gap / scale))
    return worst


def _named(result, outputs):
    """A network's or SavedModel's result as float32 arrays in the order of `outputs`."""
    values = [result[name] for name in outputs] if isinstance(result, dict) else [result]
    return [np.asarray(v).astype(np.float32) for v in values]


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
