"""Sliders for the trained models: pick a class, move latent coordinates, watch the image change.

Each function returns an object with ``.sliders`` (name -> ipywidgets control), ``.widget`` (what
``display(obj)`` shows, with a picture of it for front ends without widgets: see
:class:`gencomp_utils.widgets.Shown`) and ``.images`` (the arrays on display, per model), so
tests can set a slider in code and check the displayed image against the model.

Taught in notebook 04; notebooks 06 and 07 reuse it.
"""
from __future__ import annotations

import io

import numpy as np

from .plots import grid_array
from .widgets import Shown, _png


def to_png(image, scale: int = 4) -> bytes:
    """PNG bytes of an image ``(H, W, C)`` in [0, 1], enlarged ``scale`` times (nearest)."""
    import matplotlib.image

    arr = np.clip(np.asarray(image, np.float32), 0, 1)
    arr = np.kron(arr, np.ones((scale, scale, 1), np.float32)) if scale > 1 else arr
    if arr.shape[-1] == 1:
        arr = arr[..., 0]
    buf = io.BytesIO()
    matplotlib.image.imsave(buf, arr, cmap="gray" if arr.ndim == 2 else None, vmin=0, vmax=1,
                            format="png")
    return buf.getvalue()


def _snapshot(images: dict, sliders: dict) -> bytes:
    """PNG bytes of ``{title: image (H, W, C)}`` side by side, the sliders' values below."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2.2 * len(images), 2.6), layout="constrained")
    for ax, (title, img) in zip(np.atleast_1d(fig.subplots(1, len(images))), images.items()):
        img = np.clip(np.asarray(img, np.float32), 0, 1)
        ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=1)
        ax.set_title(title)
        ax.axis("off")
    fig.supxlabel(", ".join(f"{s.description or k} {s.value:g}" if isinstance(s.value, float)
                            else f"{s.description or k} {s.label}" for k, s in sliders.items()),
                  fontsize=8)
    return _png(fig)


def _as_models(models) -> dict:
    if isinstance(models, dict):
        if not models:
            raise ValueError("Give at least one model.")
        return dict(models)
    return {getattr(models, "name", "model"): models}


def _class_names(model, class_names):
    return list(class_names) if class_names is not None else [str(i) for i in
                                                              range(model.num_classes)]


class LatentExplorer(Shown):
    """A class slider and one slider per chosen latent coordinate, shared by several models.

    The other coordinates stay at ``base`` (zeros: the prior's most likely point, or a seeded
    draw). Each model reads the same coordinates in its own latent space: the sliders move
    "dimension 0" of the VAE and "dimension 0" of the GAN, which mean different things.

    Attributes:
        models: ``{name: model}``.
        dims: the latent coordinates with a slider.
        sliders: ``{"label": ..., "z<d>": ...}``.
        images: ``{name: image (H, W, C)}`` on display.
        widget: the ipywidgets box to display.
    """

    def __init__(self, models, dims=(0, 1), span: float = 3.0, base=None, label: int = 0,
                 class_names=None, scale: int = 4, step: float = 0.25):
        import ipywidgets as w

        self.models = _as_models(models)
        first = next(iter(self.models.values()))
        d = first.latent_dim
        for m in self.models.values():
            if m.latent_dim != d or m.num_classes != first.num_classes:
                raise ValueError("The models must share latent_dim and num_classes.")
        self.dims = [int(i) for i in dims]
        bad = [i for i in self.dims if not 0 <= i < d]
        if bad:
            raise ValueError(f"Latent coordinates {bad} out of range: the latent space has {d} "
                             f"dimensions (0 to {d - 1}).")
        if base is None:
            self.base = np.zeros(d, np.float32)
        elif np.isscalar(base):
            self.base = first.latent(1, seed=int(base))[0]
        else:
            self.base = np.asarray(base, np.float32).reshape(d)
        self.scale = scale
        names = _class_names(first, class_names)
        self.sliders = {"label": w.Dropdown(options=[(n, i) for i, n in enumerate(names)],
                                            value=int(label), description="class")}
        for i in self.dims:
            self.sliders[f"z{i}"] = w.FloatSlider(value=float(self.base[i]), min=-span, max=span,
                                                  step=step, description=f"z[{i}]",
                                                  continuous_update=False)
        self.views = {name: w.Image(format="png") for name in self.models}
        self.images: dict = {}
        boxes = [w.VBox([w.Label(name), self.views[name]]) for name in self.models]
        self.widget = w.VBox([w.HBox(list(self.sliders.values())[:1]),
                              w.VBox(list(self.sliders.values())[1:]), w.HBox(boxes)])
        for s in self.sliders.values():
            s.observe(self.update, names="value")
        self.update()

    @property
    def image(self) -> np.ndarray:
        """The first model's image on display."""
        return next(iter(self.images.values()))

    def snapshot(self) -> bytes:
        """PNG bytes of the images on display."""
        return _snapshot(self.images, self.sliders)

    def latent(self) -> np.ndarray:
        """The latent vector the sliders describe, ``(latent_dim,)``."""
        z = self.base.copy()
        for i in self.dims:
            z[i] = self.sliders[f"z{i}"].value
        return z

    def update(self, change=None):
        """Redraw every model's image from the sliders (called whenever one moves)."""
        z, label = self.latent(), int(self.sliders["label"].value)
        for name, model in self.models.items():
            img = model.sample(z=z[None], labels=[label])[0]
            self.images[name] = img
            self.views[name].value = to_png(img, self.scale)


def latent_map(model, label: int, dims=(0, 1), n: int = 7, span: float = 2.5,
               base=None) -> np.ndarray:
    """Images over a 2-D grid of two latent coordinates, the others at ``base`` (zeros).

    Args:
        model: a ``ConditionalVAE`` or ``ACGAN``.
        label: the class.
        dims: the two coordinates: rows move ``dims[0]``, columns ``dims[1]``.
        n: images per side.
        span: the grid covers ``[-span, span]`` on both.
        base: the latent vector the grid is centred on (``None``: zeros).

    Returns:
        float32 ``(n, n, H, W, C)`` in [0, 1].
    """
    d0, d1 = (int(i) for i in dims)
    if d0 == d1:
        raise ValueError("dims must name two different coordinates.")
    base = np.zeros(model.latent_dim, np.float32) if base is None else np.asarray(base, np.float32)
    ticks = np.linspace(-span, span, int(n), dtype=np.float32)
    z = np.repeat(base[None], n * n, axis=0)
    z[:, d0] = np.repeat(ticks, n)
    z[:, d1] = np.tile(ticks, n)
    return model.sample(z=z, labels=np.full(n * n, int(label))).reshape(
        (n, n) + tuple(model.image_shape))


class MapExplorer(Shown):
    """A class slider and two coordinate pickers, showing a 2-D latent map for each model.

    Attributes:
        sliders: ``{"label", "row_dim", "col_dim"}``.
        images: ``{name: map (n, n, H, W, C)}`` on display.
        widget: the ipywidgets box to display.
    """

    def __init__(self, models, n: int = 7, span: float = 2.5, label: int = 0, dims=(0, 1),
                 class_names=None, scale: int = 2):
        import ipywidgets as w

        self.models = _as_models(models)
        first = next(iter(self.models.values()))
        self.n, self.span, self.scale = int(n), float(span), scale
        names = _class_names(first, class_names)
        dim_opts = list(range(first.latent_dim))
        self.sliders = {
            "label": w.Dropdown(options=[(nm, i) for i, nm in enumerate(names)],
                                value=int(label), description="class"),
            "row_dim": w.Dropdown(options=dim_opts, value=int(dims[0]), description="rows: z["),
            "col_dim": w.Dropdown(options=dim_opts, value=int(dims[1]), description="cols: z["),
        }
        self.views = {name: w.Image(format="png") for name in self.models}
        self.images: dict = {}
        boxes = [w.VBox([w.Label(name), self.views[name]]) for name in self.models]
        self.widget = w.VBox([w.HBox(list(self.sliders.values())), w.HBox(boxes)])
        for s in self.sliders.values():
            s.observe(self.update, names="value")
        self.update()

    def snapshot(self) -> bytes:
        """PNG bytes of the maps on display."""
        return _snapshot({k: grid_array(v) for k, v in self.images.items()}, self.sliders)

    def update(self, change=None):
        """Redraw the maps (a map of one coordinate against itself shows that coordinate alone)."""
        label = int(self.sliders["label"].value)
        d0, d1 = int(self.sliders["row_dim"].value), int(self.sliders["col_dim"].value)
        for name, model in self.models.items():
            if d0 == d1:
                ticks = np.linspace(-self.span, self.span, self.n, dtype=np.float32)
                z = np.zeros((self.n, model.latent_dim), np.float32)
                z[:, d0] = ticks
                grid = model.sample(z=z, labels=np.full(self.n, label))[None]
            else:
                grid = latent_map(model, label, (d0, d1), self.n, self.span)
            self.images[name] = grid
            self.views[name].value = to_png(grid_array(grid), self.scale)


def latent_sliders(models, **kwargs) -> LatentExplorer:
    """A :class:`LatentExplorer` for one model or ``{name: model}``."""
    return LatentExplorer(models, **kwargs)


def map_explorer(models, **kwargs) -> MapExplorer:
    """A :class:`MapExplorer` for one model or ``{name: model}``."""
    return MapExplorer(models, **kwargs)


def attribute_direction(vae, images, labels, has_attribute) -> np.ndarray:
    """A direction in a VAE's latent space for an attribute the model was *not* conditioned on.

    Encode real images (through the posterior mean) and take the mean code of those that have the
    attribute minus the mean code of those that do not ("attribute arithmetic"). Adding it to a
    code should add the attribute; notebook 07 checks this with the attribute classifier.

    Args:
        vae: a trained ``ConditionalVAE``.
        images, labels: real images in [0, 1] and the labels the VAE is conditioned on.
        has_attribute: ``(N,)`` booleans (e.g. CelebA's ``Smiling``).

    Returns:
        float32 ``(latent_dim,)``.
    """
    has = np.asarray(has_attribute).astype(bool)
    if has.all() or not has.any():
        raise ValueError("Need images both with and without the attribute to find its direction.")
    mean, _ = vae.encode_numpy(images, labels)
    return (mean[has].mean(0) - mean[~has].mean(0)).astype(np.float32)


class FaceExplorer(Shown):
    """Sliders for one model: the label as a blend (0: first class, 1: second), a walk between
    two latent codes, and an amount along each named latent direction.

    The image shows ``model.blend(z, [1 - a, a])`` with
    ``z = (1 - t) z_start + t z_end + sum_k amount_k direction_k``.

    Attributes:
        sliders: ``{"label", "between", <direction names>...}``.
        image: the image on display ``(H, W, C)``.
        widget: the ipywidgets box to display.
    """

    def __init__(self, model, z_start, z_end, directions: dict | None = None, label: float = 0.0,
                 class_names=None, span: float = 3.0, scale: int = 3, title: str = ""):
        import ipywidgets as w

        if model.num_classes != 2:
            raise ValueError("FaceExplorer blends two classes; this model has "
                             f"{model.num_classes}.")
        self.model = model
        self.z_start = np.asarray(z_start, np.float32).reshape(model.latent_dim)
        self.z_end = np.asarray(z_end, np.float32).reshape(model.latent_dim)
        self.directions = {k: np.asarray(v, np.float32).reshape(model.latent_dim)
                           for k, v in (directions or {}).items()}
        names = _class_names(model, class_names)
        self.scale, self.title = scale, title
        self.sliders = {
            "label": w.FloatSlider(value=float(label), min=0, max=1, step=0.1,
                                   description=f"{names[0]}→{names[1]}", continuous_update=False),
            "between": w.FloatSlider(value=0.0, min=0, max=1, step=0.1, description="face A→B",
                                     continuous_update=False)}
        for k in self.directions:
            self.sliders[k] = w.FloatSlider(value=0.0, min=-span, max=span, step=0.25,
                                            description=k, continuous_update=False)
        self.view = w.Image(format="png")
        self.widget = w.HBox([w.VBox([w.Label(title)] + list(self.sliders.values())),
                              self.view])
        for s in self.sliders.values():
            s.observe(self.update, names="value")
        self.update()

    def snapshot(self) -> bytes:
        """PNG bytes of the image on display."""
        return _snapshot({self.title: self.image}, self.sliders)

    def latent(self) -> np.ndarray:
        """The latent vector the sliders describe."""
        t = float(self.sliders["between"].value)
        z = (1 - t) * self.z_start + t * self.z_end
        for k, d in self.directions.items():
            z = z + float(self.sliders[k].value) * d
        return z.astype(np.float32)

    def weights(self) -> np.ndarray:
        """The label weights ``[1 - a, a]`` the label slider describes."""
        a = float(self.sliders["label"].value)
        return np.array([1 - a, a], np.float32)

    def update(self, change=None):
        """Redraw the image from the sliders."""
        self.image = self.model.blend(self.latent()[None], self.weights())[0]
        self.view.value = to_png(self.image, self.scale)


def scores_along(model, codes, labels, direction, amounts, score) -> list[float]:
    """The mean of ``score(images)`` for images decoded from ``codes + a * direction``, for each
    amount ``a``: how an attribute classifier's score moves along a latent direction.

    Args:
        model: a ``ConditionalVAE`` (or any model with ``sample(z=, labels=)``).
        codes: latent vectors ``(n, latent_dim)``; labels: their conditioning labels.
        direction: ``(latent_dim,)``.
        amounts: the multiples of ``direction`` to add.
        score: ``images -> (n,)`` scores, e.g. a classifier's probability of ``Smiling``.

    Returns:
        One mean score per amount.
    """
    d = np.asarray(direction, np.float32)
    return [float(np.mean(score(model.sample(z=codes + a * d, labels=labels))))
            for a in amounts]


def random_directions(like, n: int, seed: int = 0) -> np.ndarray:
    """``n`` random directions with the norm of ``like``: the control for a found direction."""
    r = np.random.default_rng(seed).standard_normal((int(n), len(like)))
    return (r / np.linalg.norm(r, axis=1, keepdims=True) * np.linalg.norm(like)).astype(np.float32)
