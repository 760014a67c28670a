"""The training engine: budgets in steps, per-epoch records, evaluation grids, resumable checkpoints.

:func:`train` builds a model (inside the ``tf.distribute`` strategy's scope), then either loads a
finished run, resumes an unfinished one, or trains from scratch, and says which. The model's own
``train_step`` does the work (``keras.Model.fit``, one call per epoch, in graph mode, with XLA
where :mod:`gencomp_utils.devices` says it pays).

Where things go:

- ``<cache>/checkpoints/<key>/``: the last ``keep`` checkpoints (model, both optimizers' state,
  step, the noise generators' state), a ``state-<step>.json`` beside each (the history up to that
  step) and the evaluation grids. ``key`` is ``<preset>-<name>-<config hash>-seed<seed>``: a
  changed configuration (model, optimizers, data, batch size, precision) never loads a stale model.
- ``<out_dir>/``: ``history.json`` (every loss per epoch, seconds, images per second, the
  evaluations) and ``grids/step_XXXXXX.png`` (samples from fixed noise and labels), so runs can
  be compared and replayed as an animation.

A run killed at any moment (SIGKILL, a Colab disconnect) resumes from its last checkpoint in a new
process and loses at most one epoch. A run whose loss turns NaN or infinite stops with
:class:`TrainingDiverged`, keeping its last good checkpoint; a collapsed GAN (samples all alike) is
flagged in the history, not hidden.

Taught in notebook 04; used by 05, 06 and 07.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import metrics, paths, plots
from .data import PREFETCH, steady
from .devices import DeviceChoice, choose, make_strategy

COLLAPSE_DIVERSITY = 0.02  # mean per-pixel std within a class below this: samples all alike


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


# --------------------------------------------------------------------------------------------
# Data


@dataclass(frozen=True)
class Data:
    """A split of a course data set, held in memory as arrays (MNIST, CIFAR-10 samples).

    Attributes:
        name: ``"mnist"``, ``"cifar10"`` or ``"celeba"``.
        split: e.g. ``"test[:8000]"`` (see :func:`gencomp_utils.load_dataset`).
        image_size: side length (``None``: the data set's own).
        attribute: CelebA label attribute.
        limit: use at most this many images.
    """

    name: str
    split: str
    image_size: int | None = None
    attribute: str = "Male"
    limit: int | None = None

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``(images float32 (N, H, W, C) in [0, 1], labels)``, loaded once per process."""
        key = (self.name, self.split, self.image_size, self.attribute, self.limit)
        if key not in _ARRAYS:
            from .data import load_numpy

            _ARRAYS[key] = load_numpy(self.name, self.split, limit=self.limit,
                                      image_size=self.image_size, attribute=self.attribute,
                                      batch_size=1000)
        return _ARRAYS[key]

    def describe(self) -> dict:
        return {"name": self.name, "split": self.split, "image_size": self.image_size,
                "attribute": self.attribute if self.name == "celeba" else None,
                "limit": self.limit}


_ARRAYS: dict = {}


@dataclass(frozen=True)
class ArrayData:
    """Images and labels given directly (tests, custom data).

    Attributes:
        images: float32 ``(N, H, W, C)`` in [0, 1].
        labels: ``(N,)`` class indices or ``(N, K)`` multi-hot.
        name: a name for the records.
    """

    images: np.ndarray
    labels: np.ndarray
    name: str = "arrays"

    def arrays(self):
        return np.asarray(self.images, np.float32), np.asarray(self.labels)

    def describe(self) -> dict:
        x, y = self.arrays()
        digest = hashlib.sha1(x.tobytes() + np.ascontiguousarray(y).tobytes()).hexdigest()[:12]
        return {"name": self.name, "shape": list(x.shape), "sha1": digest}


@dataclass(frozen=True)
class Stream:
    """A split read from its image files batch by batch, never held as one array (CelebA).

    Each epoch is a ``tf.data`` pipeline over the file paths (see
    :func:`gencomp_utils.load_dataset`): the paths are shuffled, decoded and resized in parallel,
    batched and prefetched; ``cache=True`` keeps the decoded images in a ``.npy`` file in the
    cache folder, so later epochs skip the JPEG decoding.

    Attributes:
        name: ``"celeba"`` (or any data set :func:`gencomp_utils.load_dataset` knows).
        split: e.g. ``"train[:80%]"``.
        image_size: side length (``None``: the data set's own; 64 for CelebA).
        attribute: CelebA label attribute.
        cache: keep decoded images in a cache file (``<cache>/tfdata/``).
    """

    name: str
    split: str
    image_size: int | None = None
    attribute: str = "Male"
    cache: bool = False

    def source(self):
        """The file paths and labels (no images are read); resolved once per Stream, since
        reading CelebA's attribute file for every call would repeat the same I/O."""
        if "_source" not in self.__dict__:  # frozen dataclass: cache beside the fields
            from .data import find_source

            object.__setattr__(self, "_source", find_source(self.name, self.split))
        return self.__dict__["_source"]

    def __len__(self) -> int:
        return len(self.source())

    def dataset(self, batch_size: int, seed: int = 0, epoch: int = 0, value_range=(0.0, 1.0),
                shuffle: bool = True, first: int = 0, batches: int | None = None):
        """One epoch of full batches; the order depends only on ``(seed, epoch)``. ``first`` and
        ``batches``: only the batches from the ``first``-th on, at most ``batches`` of them (the
        images before them are not read)."""
        from .data import load_dataset

        return load_dataset(self.name, self.split, self.image_size, batch_size,
                            value_range=value_range, attribute=self.attribute, shuffle=shuffle,
                            seed=int(seed) * 100_003 + int(epoch), drop_remainder=True,
                            cache=self.cache, skip=int(first) * int(batch_size),
                            take=None if batches is None else int(batches) * int(batch_size))

    def prepare(self):
        """With ``cache``: decode every image into the cache file now, unless it exists."""
        if self.cache:
            self.dataset(256, shuffle=False)  # building the first pipeline writes the file

    def head(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The first ``n`` images and labels as arrays (for checks and pictures)."""
        x, y = next(iter(self.dataset(n if n <= len(self) else len(self), shuffle=False)))
        return x.numpy(), y.numpy()

    def arrays(self):
        raise TypeError(f"{self.name} {self.split} is a Stream: it is read batch by batch, never "
                        "as one array. Use .dataset(...) or .head(n); for a small split that fits "
                        "in memory use training.Data instead.")

    def describe(self) -> dict:
        return {"name": self.name, "split": self.split, "image_size": self.image_size,
                "attribute": self.attribute, "images": len(self)}


class _ArrayFeed:
    """Batches from arrays in memory, scaled to the model's value range once."""

    def __init__(self, x, y, value_range):
        lo, hi = value_range
        self.x, self.y = (x * (hi - lo) + lo).astype(np.float32), y

    def __len__(self):
        return len(self.x)

    def epoch(self, batch_size, seed, epoch, first=0, batches=None):
        return epoch_dataset(self.x, self.y, batch_size, seed, epoch, first, batches)


class _StreamFeed:
    """Batches read from disk by a :class:`Stream`."""

    def __init__(self, stream, value_range):
        self.stream, self.value_range, self.n = stream, value_range, len(stream)
        stream.prepare()  # the cache file, if any, is written before training starts

    def __len__(self):
        return self.n

    def epoch(self, batch_size, seed, epoch, first=0, batches=None):
        return self.stream.dataset(batch_size, seed, epoch, self.value_range, first=first,
                                   batches=batches)


def _as_data(data):
    if isinstance(data, (Data, ArrayData, Stream)):
        return data
    if isinstance(data, tuple) and len(data) == 2:
        return ArrayData(*data)
    raise TypeError("data must be a training.Data, a training.ArrayData, a training.Stream or an "
                    f"(images, labels) tuple; got {type(data).__name__}.")


def epoch_dataset(x, y, batch_size: int, seed: int, epoch: int, first: int = 0,
                  batches: int | None = None):
    """One epoch of shuffled, full batches; the order depends only on ``(seed, epoch)``, so a
    resumed run sees the batches an uninterrupted run would have seen. ``first`` and
    ``batches``: only the batches from the ``first``-th on, at most ``batches`` of them."""
    import tensorflow as tf

    order = np.random.default_rng([seed, epoch]).permutation(len(x))
    n = (len(x) // batch_size) * batch_size
    stop = n if batches is None else min(n, (int(first) + int(batches)) * batch_size)
    idx = order[int(first) * batch_size:stop]
    ds = tf.data.Dataset.from_tensor_slices((x[idx], y[idx]))
    return steady(ds.batch(batch_size, drop_remainder=True).prefetch(PREFETCH))


# --------------------------------------------------------------------------------------------
# Records


def config_hash(config: dict) -> str:
    """A short, stable hash of a JSON-able configuration."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def checkpoint_key(preset: str, name: str, config: dict, seed: int) -> str:
    """``<preset>-<name>-<config hash>-seed<seed>``: where a run's checkpoints live."""
    return f"{preset}-{name}-{config_hash(config)}-seed{int(seed)}"


def _optimizers(model) -> dict:
    opts = getattr(model, "optimizers", None)
    if isinstance(opts, dict):
        return opts
    return {"optimizer": model.optimizer}


def run_config(model, data, batch_size: int) -> dict:
    """What determines a run's result, hashed into its checkpoint key."""
    from keras.optimizers import serialize

    def opt_config(o):
        o = getattr(o, "inner_optimizer", o)
        cfg = serialize(o)
        cfg.get("config", {}).pop("name", None)  # auto-numbered: "adam", "adam_1", ...
        cfg.pop("module", None)  # where the class is defined; its registered name stays
        return cfg

    return {"model": type(model).__name__, "model_config": model.get_config(),
            "optimizers": {k: opt_config(o) for k, o in _optimizers(model).items()},
            "data": _as_data(data).describe(), "batch_size": int(batch_size)}


@dataclass
class Run:
    """A trained (or loaded) model with its records.

    Attributes:
        name: the run's name (e.g. ``"vae"``).
        model: the Keras model.
        history: the records (see the module docstring).
        key: checkpoint key.
        run_dir: checkpoint folder.
        out_dir: output folder (history.json, grids/).
        how: ``"trained"``, ``"resumed"`` or ``"loaded"``.
    """

    name: str
    model: object
    history: dict
    key: str
    run_dir: Path
    out_dir: Path
    how: str = "trained"
    strategy: object = field(default=None, repr=False)

    @property
    def epochs(self) -> list[dict]:
        return self.history["epochs"]

    def metric(self, name: str) -> np.ndarray:
        """One metric per epoch, e.g. ``run.metric("loss")``."""
        return np.array([e["metrics"][name] for e in self.epochs])

    def _timed_epochs(self) -> list[dict]:
        later = [e for e in self.epochs if e["epoch"] > 0]  # the first one builds the graph
        return later or self.epochs

    def seconds_per_step(self) -> float:
        """Median seconds per step over the epochs after the first (which builds the graph)."""
        return float(np.median([e["seconds"] / e["steps"] for e in self._timed_epochs()]))

    def seconds_per_epoch(self) -> float:
        """Seconds a full epoch (``steps_per_epoch`` steps) takes at :meth:`seconds_per_step`."""
        return self.seconds_per_step() * self.history["steps_per_epoch"]

    def images_per_second(self) -> float:
        """Training throughput: images per second at :meth:`seconds_per_step`."""
        return self.history["batch_size"] / self.seconds_per_step()

    def grids(self) -> tuple[list[np.ndarray], list[int]]:
        """The evaluation grids (fixed noise and labels) and their steps, oldest first."""
        frames, steps = [], []
        for ev in self.history["evals"]:
            p = self.out_dir / ev["grid"]
            if p.is_file():
                frames.append(plots.load_png(p))
                steps.append(ev["step"])
        return frames, steps

    def summary(self) -> str:
        h = self.history
        return (f"{self.name}: {self.how}; {h['step']} steps of {h['batch_size']} images "
                f"({h['images_seen']:,} images seen) in {h['train_seconds']:.1f} s of training "
                f"({h['wall_seconds']:.1f} s wall); {self.seconds_per_epoch():.2f} s per epoch, "
                f"{self.images_per_second():.0f} images/s")


# --------------------------------------------------------------------------------------------
# Evaluation


def eval_labels(num_classes: int, per_class: int = 10) -> np.ndarray:
    """Fixed labels of the evaluation grids: one row per class."""
    return np.repeat(np.arange(min(num_classes, 10)), per_class).astype(np.int32)


def diversity(images, labels) -> float:
    """Mean over classes of the per-pixel standard deviation across that class's samples.

    Near 0 when a model draws the same image whatever the noise (mode collapse).
    """
    images, labels = np.asarray(images), np.asarray(labels)
    per = [images[labels == c].std(axis=0).mean() for c in np.unique(labels) if
           (labels == c).sum() > 1]
    return float(np.mean(per)) if per else float("nan")


def _make_callback(engine):
    """A Keras callback for the work after each call into TensorFlow: progress, NaN detection."""
    import keras

    class StepCallback(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            # ``batch``: the index of the call's last step in this ``fit`` (a call runs up to
            # ``steps_per_execution`` steps, fewer at the end of the data)
            engine._after_steps(batch + 1, logs or {})

    return StepCallback()


def _weighted_means(parts: list[tuple[int, dict]]) -> dict:
    """Metrics over several ``fit`` calls of one model: each call's means, weighted by its
    steps."""
    steps = sum(n for n, _ in parts)
    return {k: sum(n * values[k] for n, values in parts) / steps for k in parts[0][1]}


class _Engine:
    def __init__(self, name, model, feed, steps, batch_size, seed, eval_every, eval_fn,
                 run_dir, out_dir, manager, ckpt, step_var, history, progress, per_class):
        self.name, self.model, self.feed = name, model, feed
        self.steps, self.batch_size, self.seed = steps, batch_size, seed
        self.eval_every, self.eval_fn = eval_every, eval_fn
        self.run_dir, self.out_dir = run_dir, out_dir
        self.manager, self.ckpt, self.step_var = manager, ckpt, step_var
        self.history = history
        self.step = history["step"]
        self.labels = eval_labels(model.num_classes, per_class)
        self.z = model.latent(len(self.labels), seed=10_000 + seed)
        self.bar = None
        self.progress = progress
        self.eval_seconds = 0.0
        self.bad = None
        self.call_start = self.call_steps = 0  # the current fit call: the step before it, its steps

    # -- evaluation ------------------------------------------------------------------------
    def evaluate(self):
        t0 = time.perf_counter()
        images = self.model.sample(z=self.z, labels=self.labels)
        rel = f"grids/step_{self.step:06d}.png"
        classes = len(np.unique(self.labels))  # a row per class; one class: a square grid
        grid = plots.grid_array(images, rows=classes if classes > 1 else None)
        plots.save_png(grid, self.run_dir / rel)
        plots.save_png(grid, self.out_dir / rel)
        div = diversity(images, self.labels)
        record = {"step": self.step, "grid": rel, "diversity": div,
                  "sharpness": float(metrics.laplacian_variance(images).mean()),
                  "collapsed": bool(div < COLLAPSE_DIVERSITY or metrics.is_collapsed(images)),
                  "metrics": {}}
        if self.eval_fn is not None:
            # numbers, lists of numbers (a histogram) or None (not measured for this model)
            record["metrics"] = paths._plain(dict(self.eval_fn(self.model, self.step)))
        self.history["evals"] = [e for e in self.history["evals"] if e["step"] != self.step]
        self.history["evals"].append(record)
        if record["collapsed"] and self.step > 0:  # an untrained model draws near-constant images
            self.history["collapsed_at"] = self.history.get("collapsed_at") or self.step
        self.eval_seconds += time.perf_counter() - t0

    # -- inside fit -------------------------------------------------------------------------
    def _after_steps(self, done: int, logs):
        """``done`` steps of the current ``fit`` call have run; ``logs``: the last step's."""
        step = self.call_start + min(done, self.call_steps)
        first, self.step = self.step + 1, step
        bad = {k: float(v) for k, v in logs.items() if not np.isfinite(float(v))}
        if bad and self.bad is None:
            # a call's steps are checked together: the first non-finite value is in first..step
            self.bad = {"step": step, "first_step": first, "metrics": bad}
            self.model.stop_training = True
            return
        if self.bar is not None:
            self.bar.update(step - first + 1)

    def _fit(self, epoch: int, first: int, n: int, callback) -> tuple[float, dict]:
        """Train the batches ``first .. first + n - 1`` of ``epoch`` in one ``fit`` call; return
        its seconds and its metrics (means over its steps)."""
        ds = self.feed.epoch(self.batch_size, self.seed, epoch, first=first, batches=n)
        self.call_start, self.call_steps = self.step, n
        t0 = time.perf_counter()
        out = self.model.fit(ds, epochs=1, steps_per_epoch=n, verbose=0, shuffle=False,
                             callbacks=[callback])
        seconds = time.perf_counter() - t0
        if self.bad is not None:
            self._diverged()
        return seconds, {k: float(v[-1]) for k, v in out.history.items()}

    def _diverged(self):
        h, bad = self.history, self.bad
        h["status"] = "diverged"
        h["diverged"] = bad | {"metrics": {k: str(v) for k, v in bad["metrics"].items()}}
        paths.write_json(self.out_dir / "history.json", h)
        last = self.manager.latest_checkpoint
        kept = (f"The last good checkpoint (step {int(last.split('-')[-1])}) is kept in "
                f"{self.run_dir}." if last else "No checkpoint was written yet.")
        where = (f"at step {bad['step']}" if bad["first_step"] == bad["step"] else
                 f"by step {bad['step']} (in steps {bad['first_step']}-{bad['step']}, which ran "
                 "in one call)")
        raise TrainingDiverged(
            f"{self.name}: training diverged {where}: "
            + ", ".join(f"{k} = {v}" for k, v in bad["metrics"].items())
            + f". {kept} Lower the learning rate or train in float32, then run again (a "
            "changed configuration starts a new run).")

    # -- checkpoints ------------------------------------------------------------------------
    def save(self):
        self.step_var.assign(self.step)
        self.history["step"] = self.step
        self.history["images_seen"] = self.step * self.batch_size
        paths.write_json(self.run_dir / f"state-{self.step:07d}.json", self.history)
        self.manager.save(checkpoint_number=self.step)
        kept = {int(Path(p).name.split("-")[-1]) for p in self.manager.checkpoints}
        for f in self.run_dir.glob("state-*.json"):
            if int(f.stem.split("-")[1]) not in kept:
                f.unlink(missing_ok=True)
        paths.write_json(self.out_dir / "history.json", self.history)

    def run(self):
        """Train epoch by epoch: one ``fit`` call per epoch, split where an evaluation falls,
        so that evaluations happen at their exact steps whatever the steps per call."""
        from tqdm.auto import tqdm

        h = self.history
        spe = h["steps_per_epoch"]
        if self.progress:
            self.bar = tqdm(total=self.steps, initial=self.step, desc=self.name, unit="step",
                            leave=True)
        t_start = time.perf_counter()
        wall0 = h["wall_seconds"]
        callback = _make_callback(self)
        try:
            if self.step == 0 and not h["evals"]:
                self.evaluate()
            while self.step < self.steps:
                epoch, start = self.step // spe, self.step
                end = min((epoch + 1) * spe, self.steps)
                seconds, parts = 0.0, []  # eval_seconds: since the last epoch's record
                while self.step < end:
                    stop = end
                    if self.eval_every:
                        stop = min(stop, (self.step // self.eval_every + 1) * self.eval_every)
                    n = stop - self.step
                    s, values = self._fit(epoch, self.step - epoch * spe, n, callback)
                    seconds += s
                    parts.append((n, values))
                    if self.eval_every and self.step % self.eval_every == 0 \
                            and self.step < self.steps:
                        self.evaluate()
                if self.step >= self.steps:
                    self.evaluate()
                    h["status"] = "completed"
                values = _weighted_means(parts)
                h["metric_names"] = list(values)
                h["epochs"].append({
                    "epoch": epoch, "step": self.step, "steps": self.step - start,
                    "images": (self.step - start) * self.batch_size, "seconds": seconds,
                    "images_per_second": (self.step - start) * self.batch_size
                    / max(seconds, 1e-9),
                    "eval_seconds": self.eval_seconds, "metrics": values})
                self.eval_seconds = 0.0
                if self.bar is not None:
                    self.bar.set_postfix({k: f"{v:.3g}" for k, v in list(values.items())[:3]})
                h["train_seconds"] = float(sum(e["seconds"] for e in h["epochs"]))
                h["wall_seconds"] = wall0 + time.perf_counter() - t_start
                self.save()
        finally:
            if self.bar is not None:
                self.bar.close()
        return h


def _restore(manager, ckpt, run_dir: Path):
    """Restore the latest checkpoint that has its state file and can be read whole; return the
    history or None. A checkpoint that cannot be read (cut short, damaged) is said and passed
    over before any weight is touched."""
    import tensorflow as tf

    for path in reversed(manager.checkpoints):
        n = int(Path(path).name.split("-")[-1])
        state = run_dir / f"state-{n:07d}.json"
        if not state.is_file():
            continue
        try:
            history = json.loads(state.read_text())
            reader = tf.train.load_checkpoint(path)
            for name in reader.get_variable_to_shape_map():
                reader.get_tensor(name)
        except Exception as e:
            print(f"The checkpoint {path} cannot be read ({type(e).__name__}); "
                  "an earlier one is tried, else training starts again.")
            continue
        ckpt.restore(path).assert_existing_objects_matched()
        return history
    return None


def _copy_grids(src: Path, dst: Path):
    if (src / "grids").is_dir():
        (dst / "grids").mkdir(parents=True, exist_ok=True)
        for f in (src / "grids").glob("*.png"):
            if not (dst / "grids" / f.name).exists():
                shutil.copy2(f, dst / "grids" / f.name)


def train(build, data, steps: int, *, name: str, batch_size: int = 64, seed: int = 0,
          preset: str = "custom", out_dir=None, eval_every: int | None = None, eval_fn=None,
          keep: int = 3, device: DeviceChoice | None = None, strategy=None,
          retrain: bool = False, progress: bool = True, per_class: int = 10,
          verbose: bool = True) -> Run:
    """Load a finished run, resume an unfinished one, or train from scratch.

    Args:
        build: a function returning the model (``ConditionalVAE``/``ACGAN``, compiled or not); it
            is called inside the strategy's scope, after seeding with ``seed``.
        data: a :class:`Data` or :class:`ArrayData` (held in memory), a :class:`Stream` (read
            from disk batch by batch), or ``(images in [0, 1], labels)``.
        steps: the budget, in optimisation steps (an ACGAN step updates both networks once).
        name: the run's name (``"vae"``, ``"gan"``), in the key and the records.
        batch_size: the global batch (split across replicas).
        seed: seeds the weights, the noise and the batch order: same seed, same result.
        preset: preset name, part of the checkpoint key.
        out_dir: where history.json and grids/ go (default: ``output_dir("runs")/<name>``).
        eval_every: steps between evaluations (sample grid, ``eval_fn``); ``None``: at the
            start and the end only.
        eval_fn: ``eval_fn(model, step) -> {metric: value}``, recorded at each evaluation (the
            hook for the metrics of notebook 08).
        keep: checkpoints kept (the last ``keep``).
        device: from :func:`gencomp_utils.devices.choose` (``None``: ``choose()``); its
            ``jit_compile`` and ``steps_per_execution`` are used (the latter only with the
            default strategy); the model's precision is the model's own.
        strategy: a ``tf.distribute.Strategy`` (``None``: from ``device``).
        retrain: delete any checkpoint of this key first.
        progress: show a progress bar.
        per_class: evaluation samples per class (columns of the grid; a one-class model's
            samples are drawn as a square grid, e.g. 10x10 for 100).
        verbose: print which path was taken.

    Returns:
        A :class:`Run`.

    Raises:
        TrainingDiverged: a loss became NaN or infinite.
        ValueError: bad steps, batch size, labels, or images that do not fit the model.
    """
    import keras
    import tensorflow as tf

    if int(steps) < 1:
        raise ValueError(f"steps must be at least 1, got {steps!r}.")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size!r}.")
    steps, batch_size = int(steps), int(batch_size)
    data = _as_data(data)
    device = device or choose()
    strategy = strategy or make_strategy(device)
    if batch_size % strategy.num_replicas_in_sync:
        raise ValueError(f"batch_size {batch_size} does not split evenly across "
                         f"{strategy.num_replicas_in_sync} replicas.")
    streamed = isinstance(data, Stream)
    x, y = data.head(min(batch_size, len(data))) if streamed else data.arrays()
    # several steps per call fail under a distribution strategy (see gencomp_utils.devices)
    per_call = device.steps_per_execution if strategy is tf.distribute.get_strategy() else 1
    with strategy.scope():
        keras.utils.set_random_seed(seed)
        model = build()
        if not model.compiled:
            model.compile(jit_compile=device.jit_compile, steps_per_execution=per_call)
        else:
            model.jit_compile = device.jit_compile
            model.steps_per_execution = per_call
            model.train_function = None
        for opt_name, opt in _optimizers(model).items():
            if opt is None:
                raise ValueError(f"The model's {opt_name} is missing: compile it first.")
        if getattr(model, "optimizer", None) is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        x = model.check_images(x)  # a Stream: its first batch stands for the rest
        y = model.check_labels(y)
        feed = (_StreamFeed(data, model.value_range) if streamed else
                _ArrayFeed(x, y, model.value_range))
        if len(feed) < batch_size:
            raise ValueError(f"{len(feed)} training images are fewer than one batch of "
                             f"{batch_size}.")
        step_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        ckpt = tf.train.Checkpoint(
            step=step_var, model=list(model.variables),
            **{k: list(o.variables) for k, o in _optimizers(model).items()})

    config = run_config(model, data, batch_size)
    # a run's curve is part of its record: other evaluations, another run
    config["evaluations"] = {"every": eval_every, "hook": getattr(eval_fn, "settings", None)}
    key = checkpoint_key(preset, name, config, seed)
    run_dir = paths.cache_dir("checkpoints") / key
    if retrain and run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    out_dir = Path(out_dir) if out_dir is not None else paths.output_dir("runs") / name
    out_dir.mkdir(parents=True, exist_ok=True)
    manager = tf.train.CheckpointManager(ckpt, str(run_dir), max_to_keep=int(keep),
                                         checkpoint_name="ckpt")
    history = _restore(manager, ckpt, run_dir)
    spe = len(feed) // batch_size
    if history is not None and history["step"] >= steps:
        how = "loaded"
        _copy_grids(run_dir, out_dir)
        paths.write_json(out_dir / "history.json", history)
        if verbose:
            print(f"{name}: found a trained model ({history['step']} steps, key {key}) in "
                  f"{run_dir}: loaded it, no training.")
        return Run(name, model, history, key, run_dir, out_dir, how, strategy)
    if history is not None:
        how = "resumed"
        history.setdefault("resumes", []).append({"step": history["step"], "time": time.time()})
        history["steps"] = steps
        history["status"] = "running"
        _copy_grids(run_dir, out_dir)
        if verbose:
            print(f"{name}: resuming from the checkpoint at step {history['step']} of {steps} "
                  f"(key {key}).")
    else:
        how = "trained"
        history = {"name": name, "key": key, "preset": preset, "seed": int(seed),
                   "config": config, "device": str(device), "precision": model.precision,
                   "replicas": int(strategy.num_replicas_in_sync), "steps": steps,
                   "batch_size": batch_size, "steps_per_epoch": spe,
                   "train_images": int(len(feed)), "step": 0, "images_seen": 0,
                   "status": "running", "epochs": [], "evals": [], "wall_seconds": 0.0,
                   "train_seconds": 0.0, "metric_names": [], "collapsed_at": None,
                   "diverged": None, "resumes": []}
        if verbose:
            print(f"{name}: no trained model for key {key}: training {steps} steps "
                  f"({steps * batch_size:,} images) from scratch.")
    engine = _Engine(name, model, feed, steps, batch_size, seed, eval_every, eval_fn, run_dir,
                     out_dir, manager, ckpt, step_var, history, progress, per_class)
    engine.run()
    return Run(name, model, history, key, run_dir, out_dir, how, strategy)
