"""Network builders: the paper's MLP (two hidden layers of 1000 ReLU units) and a small conv net.

Each builder returns a functional `keras.Model`. Encoders flatten any image shape; decoders
end in a sigmoid and reshape to the image shape; discriminators output one logit.

Example:
    >>> from aae_keras import networks
    >>> enc = networks.mlp_encoder((28, 28), latent_dim=2)
    >>> dec = networks.mlp_decoder(2, (28, 28))
    >>> disc = networks.mlp_discriminator(2)
"""

import math

import keras
from keras import layers

__all__ = [
    "PAPER_HIDDEN",
    "mlp_encoder",
    "mlp_decoder",
    "mlp_discriminator",
    "conv_encoder",
    "conv_decoder",
    "build",
]

PAPER_HIDDEN = (1000, 1000)


def mlp_encoder(input_shape, latent_dim, hidden=PAPER_HIDDEN, name="encoder"):
    """Flatten -> Dense(h, relu) for h in hidden -> Dense(latent_dim) (linear codes).

    For a Gaussian posterior pass `latent_dim=2 * d` (means then log-variances).

    >>> mlp_encoder((8, 8), 2, hidden=(64,)).output_shape
    (None, 2)
    """
    inputs = keras.Input(tuple(input_shape), name="x")
    h = layers.Flatten()(inputs)
    for i, units in enumerate(hidden):
        h = layers.Dense(units, activation="relu", name=f"hidden_{i}")(h)
    return keras.Model(inputs, layers.Dense(latent_dim, name="codes")(h), name=name)


def mlp_decoder(latent_dim, output_shape, hidden=PAPER_HIDDEN, name="decoder"):
    """Dense(h, relu) for h in hidden -> Dense(prod(output_shape), sigmoid) -> Reshape.

    >>> mlp_decoder(2, (8, 8), hidden=(64,)).output_shape
    (None, 8, 8)
    """
    inputs = keras.Input((latent_dim,), name="z")
    h = inputs
    for i, units in enumerate(hidden):
        h = layers.Dense(units, activation="relu", name=f"hidden_{i}")(h)
    h = layers.Dense(math.prod(output_shape), activation="sigmoid", name="pixels")(h)
    return keras.Model(inputs, layers.Reshape(tuple(output_shape))(h), name=name)


def mlp_discriminator(latent_dim, hidden=PAPER_HIDDEN, name="discriminator"):
    """Dense(h, relu) for h in hidden -> Dense(1) logit (no batch norm, as is stable for AAEs).

    >>> mlp_discriminator(2, hidden=(64,)).output_shape
    (None, 1)
    """
    inputs = keras.Input((latent_dim,), name="z")
    h = inputs
    for i, units in enumerate(hidden):
        h = layers.Dense(units, activation="relu", name=f"hidden_{i}")(h)
    return keras.Model(inputs, layers.Dense(1, name="logit")(h), name=name)


def conv_encoder(input_shape, latent_dim, filters=(32, 64), name="encoder"):
    """Two stride-2 3x3 convolutions (ReLU) -> Dense(latent_dim); images (H, W) or (H, W, C).

    >>> conv_encoder((28, 28), 8).output_shape
    (None, 8)
    """
    inputs = keras.Input(tuple(input_shape), name="x")
    h = layers.Reshape(_with_channels(input_shape))(inputs)
    for i, f in enumerate(filters):
        h = layers.Conv2D(f, 3, strides=2, padding="same", activation="relu", name=f"conv_{i}")(h)
    h = layers.Flatten()(h)
    return keras.Model(inputs, layers.Dense(latent_dim, name="codes")(h), name=name)


def conv_decoder(latent_dim, output_shape, filters=(64, 32), name="decoder"):
    """Dense -> two stride-2 transposed convolutions -> crop -> 1x1 conv (sigmoid) -> image.

    >>> conv_decoder(8, (28, 28)).output_shape
    (None, 28, 28)
    """
    height, width, channels = _with_channels(output_shape)
    scale = 2 ** len(filters)
    small = (math.ceil(height / scale), math.ceil(width / scale), filters[0])
    inputs = keras.Input((latent_dim,), name="z")
    h = layers.Dense(math.prod(small), activation="relu", name="project")(inputs)
    h = layers.Reshape(small)(h)
    for i, f in enumerate(filters):
        h = layers.Conv2DTranspose(f, 3, strides=2, padding="same", activation="relu", name=f"deconv_{i}")(h)
    extra_h, extra_w = small[0] * scale - height, small[1] * scale - width
    if extra_h or extra_w:
        h = layers.Cropping2D(((0, extra_h), (0, extra_w)))(h)
    h = layers.Conv2D(channels, 1, activation="sigmoid", name="pixels")(h)
    return keras.Model(inputs, layers.Reshape(tuple(output_shape))(h), name=name)


def build(kind, image_shape, latent_dim, encoder_outputs=None, hidden=PAPER_HIDDEN):
    """(encoder, decoder, discriminator) for kind "mlp" or "conv" (discriminator is an MLP).

    `encoder_outputs` defaults to `latent_dim` (2 * latent_dim for a Gaussian posterior).

    >>> enc, dec, disc = build("mlp", (8, 8), 2, hidden=(32,))
    """
    outputs = encoder_outputs or latent_dim
    if kind == "mlp":
        encoder = mlp_encoder(image_shape, outputs, hidden)
        decoder = mlp_decoder(latent_dim, image_shape, hidden)
    elif kind == "conv":
        encoder = conv_encoder(image_shape, outputs)
        decoder = conv_decoder(latent_dim, image_shape)
    else:
        raise ValueError(f'Unknown network kind {kind!r}; choose "mlp" or "conv".')
    return encoder, decoder, mlp_discriminator(latent_dim, hidden)


def _with_channels(shape):
    shape = tuple(shape)
    if len(shape) == 2:
        return shape + (1,)
    if len(shape) == 3:
        return shape
    raise ValueError(f"Conv networks need images of shape (H, W) or (H, W, C), got {shape}.")
