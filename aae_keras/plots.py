"""Figures: latent codes over the prior, grids of images, cluster exemplars (matplotlib, Agg).

The functions draw on a standalone Agg figure (no global pyplot state, safe in notebooks
and threads) and write atomically: to a temporary file in the target directory, then
`os.replace`, so a reader never sees a half-written image. The format follows the suffix
(.png, .pdf, .svg, ...).

Example:
    >>> import numpy as np
    >>> from aae_keras import plots, priors
    >>> prior = priors.gaussian_mixture(10, 2)
    >>> codes = np.asarray(prior.sample(500, seed=1))
    >>> plots.latent_scatter(codes, np.arange(500) % 10, prior, "latent.png")
    >>> plots.sample_grid(np.random.rand(16, 8, 8), "grid.png")
"""

import math

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from aae_keras import files, priors

__all__ = ["cluster_grid", "latent_scatter", "sample_grid"]

_GRID_POINTS = 200  # density grid resolution per axis
_HIST_SAMPLES = 20000  # prior samples for the histogram fallback
_HIST_BINS = 100


def latent_scatter(codes, labels, prior, path, title=None):
    """Scatter 2-D codes coloured by label over the prior's density; write the figure to `path`.

    The background is exp(prior.log_prob) on a grid when the prior has a density in the
    plotted dimensions, else a 2-D histogram of 20000 prior samples (e.g. the swiss roll, or
    any prior when the codes have d > 2: then the first two dimensions are plotted, the
    histogram shows the prior's marginal there, and the title says so). `labels` may be None.

    >>> from aae_keras import priors
    >>> latent_scatter(np.random.randn(100, 3), None, priors.gaussian(3), "codes.png")  # first 2 of 3 dims
    """
    codes = np.asarray(codes, np.float64)
    if codes.ndim != 2 or codes.shape[1] < 2 or len(codes) == 0:
        raise ValueError(f"latent_scatter needs codes of shape (n, d) with d >= 2, got {codes.shape}.")
    if labels is not None:
        labels = np.asarray(labels).reshape(-1)
        if len(labels) != len(codes):
            raise ValueError(f"Got {len(labels)} labels for {len(codes)} codes.")
    dim = codes.shape[1]
    xy = codes[:, :2]
    prior = priors.as_prior(prior)
    samples = np.asarray(prior.sample(_HIST_SAMPLES, seed=0), np.float64)[:, :2]
    lo, hi = _limits(xy, samples)

    density = _density_on_grid(prior, lo, hi) if dim == 2 else None
    if density is None:
        density, _, _ = np.histogram2d(
            samples[:, 0], samples[:, 1], bins=_HIST_BINS, range=[(lo[0], hi[0]), (lo[1], hi[1])]
        )
        density = density.T  # histogram2d is indexed [x, y]; imshow wants [row=y, col=x]
        background = f"histogram of {_HIST_SAMPLES} prior samples"
    else:
        background = "prior density"

    fig = Figure(figsize=(7.5, 6))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.imshow(
        density,
        origin="lower",
        extent=(lo[0], hi[0], lo[1], hi[1]),
        cmap="Greys",
        aspect="auto",
        interpolation="bilinear",
    )
    _scatter(fig, ax, xy, labels)
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_xlabel("z[0]")
    ax.set_ylabel("z[1]")
    if title is None:
        title = f"{len(codes)} codes over the {background}"
        if dim > 2:
            title += f"\n(first 2 of {dim} dimensions; background is the prior's marginal)"
    ax.set_title(title)
    fig.tight_layout()
    _save(fig, path)


def sample_grid(images, path, rows=None):
    """Write a grid of images (n, H, W) or (n, H, W, C), C in {1, 3, 4}, values in [0, 1].

    `rows` defaults to ceil(sqrt(n)); columns are as many as needed. Grey images use a black
    background with white digits (values are clipped to [0, 1]).

    >>> sample_grid(np.random.rand(10, 28, 28), "samples.png", rows=2)   # 2 x 5
    """
    images = np.asarray(images, np.float64)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim not in (3, 4) or len(images) == 0 or (images.ndim == 4 and images.shape[-1] not in (3, 4)):
        raise ValueError(
            f"sample_grid needs a non-empty array of shape (n, H, W) or (n, H, W, C) with C in "
            f"{{1, 3, 4}}, got {images.shape}."
        )
    n, height, width = images.shape[:3]
    rows = math.ceil(math.sqrt(n)) if rows is None else int(rows)
    if rows < 1:
        raise ValueError(f"rows must be a positive integer, got {rows}.")
    cols = math.ceil(n / rows)
    pad = 1
    mosaic = np.full((rows * (height + pad) + pad, cols * (width + pad) + pad) + images.shape[3:], 0.5)
    for i, image in enumerate(np.clip(images, 0.0, 1.0)):
        r, c = divmod(i, cols)
        top, left = pad + r * (height + pad), pad + c * (width + pad)
        mosaic[top : top + height, left : left + width] = image

    cell = min(0.6, 12.0 / max(rows, cols))  # inches per image; at most 12 inches overall
    fig = Figure(figsize=(max(cols * cell, 1.0), max(rows * cell, 1.0)))
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(mosaic, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_axis_off()
    _save(fig, path, dpi=max(100, math.ceil((height + pad) / cell)))


def cluster_grid(images, assignments, path, num_clusters=None, per_cluster=10):
    """Write cluster exemplars: row k shows up to `per_cluster` images assigned to cluster k.

    Clusters with fewer members leave blank (mid-grey) cells.

    >>> cluster_grid(np.random.rand(30, 8, 8), np.arange(30) % 3, "clusters.png")   # 3 rows
    """
    images, assignments = np.asarray(images, np.float64), np.asarray(assignments)
    if len(images) != len(assignments):
        raise ValueError(f"Need one cluster per image, got {len(assignments)} for {len(images)} images.")
    num_clusters = int(num_clusters or assignments.max() + 1)
    cells = np.full((num_clusters, per_cluster) + images.shape[1:], 0.5)
    for k in range(num_clusters):
        members = images[assignments == k][:per_cluster]
        cells[k, : len(members)] = members
    sample_grid(cells.reshape((-1,) + images.shape[1:]), path, rows=num_clusters)


def _limits(xy, samples):
    """Plot limits covering every code and the central 99% of the prior, with a 5% margin."""
    lo = np.minimum(xy.min(axis=0), np.percentile(samples, 0.5, axis=0))
    hi = np.maximum(xy.max(axis=0), np.percentile(samples, 99.5, axis=0))
    margin = 0.05 * np.maximum(hi - lo, 1e-6)
    return lo - margin, hi + margin


def _density_on_grid(prior, lo, hi):
    """exp(log_prob) on a grid over [lo, hi] (rows = y), or None if the prior has no density."""
    xs = np.linspace(lo[0], hi[0], _GRID_POINTS)
    ys = np.linspace(lo[1], hi[1], _GRID_POINTS)
    gx, gy = np.meshgrid(xs, ys)
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)
    try:
        log_p = np.asarray(prior.log_prob(grid), np.float64)
    except (NotImplementedError, TypeError, ValueError):  # e.g. a sample-only swiss roll
        return None
    density = np.exp(log_p).reshape(gx.shape)
    return density if np.all(np.isfinite(density)) and density.max() > 0 else None


def _scatter(fig, ax, xy, labels):
    kwargs = dict(s=8, alpha=0.8, linewidths=0)
    if labels is None:
        ax.scatter(xy[:, 0], xy[:, 1], color="tab:red", **kwargs)
        return
    classes = np.unique(labels)
    if len(classes) <= 10:
        for k, label in enumerate(classes):
            keep = labels == label
            ax.scatter(xy[keep, 0], xy[keep, 1], color=f"C{k}", label=str(label), **kwargs)
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), markerscale=2.5, frameon=False)
    else:
        points = ax.scatter(xy[:, 0], xy[:, 1], c=labels, cmap="viridis", **kwargs)
        fig.colorbar(points, ax=ax, label="label")


def _save(fig, path, **kwargs):
    """Write the figure atomically; an OSError names `path`, not the temporary file."""
    try:
        with files.atomic_path(path) as tmp:
            fig.savefig(tmp, **kwargs)
    except OSError as error:
        raise OSError(
            error.errno,
            f"cannot write {path}: {error.strerror or error}; check that its directory exists and is writable",
        ) from None
