"""Figures of the course: image grids, loss curves, seconds per epoch, samples over training.

Every function returns the matplotlib ``Figure`` (or an array) and saves only when given a path;
nothing here sets a global style. ``grid_array`` and ``save_png`` need no figure at all, so the
training engine can write grids from any process.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


def grid_array(images, rows: int | None = None, pad: int = 1, pad_value: float = 1.0) -> np.ndarray:
    """Tile images into one array, row by row.

    Args:
        images: ``(N, H, W, C)`` or ``(rows, cols, H, W, C)`` in [0, 1].
        rows: number of rows (``None``: from a 5-D input, else about square).
        pad: pixels between images.
        pad_value: colour of the padding.

    Returns:
        float32 ``(rows * (H + pad) - pad, cols * (W + pad) - pad, C)``.
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 5:
        rows = images.shape[0] if rows is None else rows
        images = images.reshape((-1,) + images.shape[2:])
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise ValueError(f"images must be (N, H, W, C) or (rows, cols, H, W, C); got "
                         f"{images.shape}.")
    n, h, w, c = images.shape
    rows = int(rows) if rows else max(1, int(np.floor(np.sqrt(n))))
    cols = int(np.ceil(n / rows))
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad, c), pad_value, np.float32)
    for i in range(n):
        r, k = divmod(i, cols)
        out[r * (h + pad):r * (h + pad) + h, k * (w + pad):k * (w + pad) + w] = images[i]
    return np.clip(out, 0.0, 1.0)


def save_png(array, path) -> Path:
    """Write a ``(H, W, C)`` or ``(H, W)`` array in [0, 1] as a PNG (grey for one channel)."""
    import matplotlib.image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.clip(np.asarray(array, np.float32), 0, 1)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    matplotlib.image.imsave(path, arr, cmap="gray" if arr.ndim == 2 else None, vmin=0, vmax=1)
    return path


def load_png(path) -> np.ndarray:
    """Read a PNG written by :func:`save_png` back as float32 ``(H, W, C)`` in [0, 1]."""
    import matplotlib.image

    arr = np.asarray(matplotlib.image.imread(str(path)), np.float32)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.shape[-1] == 4:  # RGBA: grey PNGs come back as equal RGB channels
        arr = arr[..., :3]
        if np.allclose(arr[..., 0], arr[..., 1]) and np.allclose(arr[..., 0], arr[..., 2]):
            arr = arr[..., :1]
    return arr


def _show(ax, array, title=None):
    arr = np.asarray(array)
    if arr.ndim == 3 and arr.shape[2] == 1:
        ax.imshow(arr[..., 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(np.clip(arr, 0, 1), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)


def _finish(fig, title, path, dpi):
    """Title, tight layout, and an optional save: the end of every grid figure."""
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=dpi)
    return fig


def image_grid(images, rows: int | None = None, titles=None, row_labels=None, title=None,
               size: float = 0.6, path=None):
    """Show images in a grid, e.g. one row per digit (the paper's Figure 3).

    Args:
        images: ``(N, H, W, C)`` in [0, 1], or ``(rows, cols, H, W, C)``; or a dict
            ``{title: images}`` to put several grids side by side (e.g. GAN and VAE).
        rows: rows of each grid.
        titles: a title per grid (when ``images`` is a list of arrays).
        row_labels: a label per row (e.g. the digit), written at the left.
        title: the figure's title.
        size: inches per image.
        path: save the figure there too.

    Returns:
        The matplotlib ``Figure``.
    """
    import matplotlib.pyplot as plt

    if isinstance(images, dict):
        titles, grids = list(images), list(images.values())
    elif isinstance(images, (list, tuple)):
        grids = list(images)
    else:
        grids = [images]
    if titles is not None and len(titles) != len(grids):
        raise ValueError(f"{len(titles)} titles for {len(grids)} grids.")
    arrays = [grid_array(g, rows) for g in grids]
    first = np.asarray(grids[0])
    cell = first.shape[-3] + 1
    nrows = arrays[0].shape[0] / cell
    ncols = sum(a.shape[1] for a in arrays) / cell
    fig, axes = plt.subplots(1, len(arrays), squeeze=False,
                             figsize=(max(2.0, size * ncols + 0.6 * len(arrays)),
                                      max(1.5, size * nrows + (0.6 if titles or title else 0.2))))
    for k, (ax, arr) in enumerate(zip(axes[0], arrays)):
        _show(ax, arr, titles[k] if titles else None)
        if row_labels is not None:
            r = len(row_labels)
            ax.set_yticks([(i + 0.5) * arr.shape[0] / r for i in range(r)])
            ax.set_yticklabels([str(v) for v in row_labels])
            ax.tick_params(length=0)
    return _finish(fig, title, path, dpi=120)


def loss_curves(histories: dict, keys: dict | None = None, x: str = "step", path=None):
    """Per-epoch losses of several runs, one panel per run.

    Args:
        histories: ``{name: history}`` (a history as written by the training engine, or a
            :class:`gencomp_utils.training.Run`).
        keys: ``{name: [metric, ...]}`` to plot (default: every metric of each run).
        x: ``"step"`` or ``"epoch"`` on the x axis.
        path: save the figure there too.

    Returns:
        The matplotlib ``Figure``.
    """
    import matplotlib.pyplot as plt

    histories = {k: getattr(v, "history", v) for k, v in histories.items()}
    fig, axes = plt.subplots(1, len(histories), squeeze=False,
                             figsize=(4.2 * len(histories), 3.2))
    for ax, (name, h) in zip(axes[0], histories.items()):
        epochs = h["epochs"]
        names = (keys or {}).get(name) or list(h.get("metric_names", []))
        for m in names:
            ax.plot([e[x] for e in epochs], [e["metrics"][m] for e in epochs], marker=".",
                    label=m)
        ax.set_title(name)
        ax.set_xlabel(x)
        ax.legend(fontsize="small")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def epoch_times(histories: dict, path=None):
    """Seconds per epoch of several runs (first epoch includes building the graph)."""
    import matplotlib.pyplot as plt

    histories = {k: getattr(v, "history", v) for k, v in histories.items()}
    fig, ax = plt.subplots(figsize=(5, 3))
    for name, h in histories.items():
        ax.plot([e["epoch"] for e in h["epochs"]], [e["seconds"] for e in h["epochs"]],
                marker="o", label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("seconds")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def grids_over_training(frames, steps, max_frames: int = 6, path=None):
    """Sample grids from fixed noise and labels at several steps, side by side.

    Args:
        frames: list of grid arrays ``(H, W, C)`` (from ``Run.grids()``).
        steps: the step of each frame.
        max_frames: show at most this many, evenly spread, always with the last.

    Returns:
        The matplotlib ``Figure``.
    """
    import matplotlib.pyplot as plt

    idx = np.unique(np.linspace(0, len(frames) - 1, min(max_frames, len(frames))).round()
                    .astype(int))
    fig, axes = plt.subplots(1, len(idx), squeeze=False, figsize=(2.2 * len(idx), 2.4))
    for ax, i in zip(axes[0], idx):
        _show(ax, frames[i], f"step {steps[i]}")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def animate(frames, steps, interval: int = 400):
    """A matplotlib animation of the sample grids over training (``.to_jshtml()`` in Jupyter)."""
    import matplotlib.pyplot as plt
    from matplotlib import animation

    fig, ax = plt.subplots(figsize=(3, 3))
    arr = np.asarray(frames[0])
    im = ax.imshow(arr[..., 0] if arr.shape[-1] == 1 else arr, cmap="gray", vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])
    ttl = ax.set_title(f"step {steps[0]}")

    def update(i):
        a = np.asarray(frames[i])
        im.set_data(a[..., 0] if a.shape[-1] == 1 else a)
        ttl.set_text(f"step {steps[i]}")
        return im, ttl

    anim = animation.FuncAnimation(fig, update, frames=len(frames), interval=interval, blit=False)
    plt.close(fig)
    return anim


def labelled_grid(images, labels=None, class_names=None, ncols: int = 8, title: str | None = None,
                  size: float = 1.2, path=None):
    """A grid of images in [0, 1], each titled with its label's name (real data at a glance).

    Args:
        images: ``(N, H, W, C)`` in [0, 1].
        labels: ``(N,)`` ints, or None for no titles.
        class_names: names indexed by label.
        ncols: images per row.
        title: the figure's title.
        size: inches per image.
        path: save the figure there too.

    Returns:
        The matplotlib ``Figure``.
    """
    import matplotlib.pyplot as plt

    images = np.asarray(images, np.float32)
    n = len(images)
    nrows = max(1, -(-n // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * size * 1.15),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            name = None
            if labels is not None:
                name = class_names[int(labels[i])] if class_names else str(int(labels[i]))
            _show(ax, images[i], name)
            ax.title.set_fontsize(8)
    return _finish(fig, title, path, dpi=80)
