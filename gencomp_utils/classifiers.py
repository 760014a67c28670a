"""Domain classifiers that judge generated images: is this sample the digit (class, attribute) the
model was asked for?

One small convolutional network, scaled by the image size like the generative models: a digit
classifier for MNIST now, the same code for the ten CIFAR-10 classes and for CelebA attributes
(one attribute as two classes, or several as independent yes/no outputs). A trained classifier is
kept in ``<cache>/classifiers/`` with its held-out accuracy, and loaded on the next call.

Taught in notebook 04; the metrics notebook (08) builds on it.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import paths
from .data import PREFETCH, check_name, class_names, default_splits, steady

VERSION = 3  # bump when the architecture or training recipe changes: old caches are ignored
# The judges' seed, the same for every training seed and model: measures taken on its features
# (FD, KID, precision and recall) compare across seeds only if the features are the same.
JUDGE_SEED = 0


@dataclass
class ConditionalAccuracy:
    """How often samples are judged to be of the class they were generated for.

    Attributes:
        overall: fraction of all samples judged right.
        per_class: ``{class name: fraction}``.
        counts: ``{class name: samples}``.
    """

    overall: float
    per_class: dict
    counts: dict

    @property
    def worst(self) -> tuple[str, float]:
        """The class with the lowest accuracy and that accuracy."""
        name = min(self.per_class, key=self.per_class.get)
        return name, self.per_class[name]

    def __str__(self) -> str:
        cells = ", ".join(f"{k}: {v:.2f}" for k, v in self.per_class.items())
        return f"{self.overall:.3f} overall ({cells})"


@dataclass
class Classifier:
    """A trained classifier and what it was trained and measured on.

    Attributes:
        model: the Keras model (logits).
        dataset: ``"mnist"``, ``"cifar10"`` or ``"celeba"``.
        class_names: names of the outputs.
        multi_label: several independent yes/no outputs (CelebA attribute lists).
        accuracy: accuracy on ``eval_split`` (for multi-label: mean over the attributes).
        train_split, eval_split: the splits used.
        path: the cached ``.keras`` file.
        how: ``"trained"`` or ``"loaded"``.
        info: the rest of the record (per-class accuracy, seconds, steps).
    """

    model: object
    dataset: str
    class_names: list
    multi_label: bool
    accuracy: float
    train_split: str
    eval_split: str
    path: Path
    how: str = "trained"
    info: dict = field(default_factory=dict)

    def predict_proba(self, images, batch_size: int = 500) -> np.ndarray:
        """Class probabilities ``(N, K)`` (independent probabilities when multi-label)."""
        import keras

        images = np.asarray(images, np.float32)
        shape = tuple(self.model.input_shape[1:])
        if images.shape[1:] != shape:
            raise ValueError(f"Images of shape {images.shape[1:]} given to a classifier of input "
                             f"shape {shape}.")
        out = []
        for i in range(0, len(images), batch_size):
            logits = self.model(images[i:i + batch_size], training=False)
            act = keras.ops.sigmoid if self.multi_label else keras.ops.softmax
            out.append(keras.ops.convert_to_numpy(act(logits)))
        return np.concatenate(out) if out else np.zeros((0, len(self.class_names)), np.float32)

    def features(self, images, batch_size: int = 500) -> np.ndarray:
        """The penultimate layer's activations ``(N, 128)`` (float64): the feature space of
        "FD (domain classifier)", KID and precision/recall."""
        import keras

        images = np.asarray(images, np.float32)
        if not hasattr(self, "_features"):
            self._features = keras.Model(self.model.input, self.model.get_layer("dense").output)
        out = [keras.ops.convert_to_numpy(self._features(images[i:i + batch_size], training=False))
               for i in range(0, len(images), batch_size)]
        return np.concatenate(out).astype(np.float64)

    def predict(self, images) -> np.ndarray:
        """Predicted class of each image ``(N,)``, or 0/1 per attribute ``(N, K)``."""
        p = self.predict_proba(images)
        return (p > 0.5).astype(np.int32) if self.multi_label else p.argmax(axis=1)

    def score(self, images, labels) -> float:
        """Accuracy on labelled images."""
        return float(np.mean(self.predict(images) == np.asarray(labels)))

    def attribute(self, name: str) -> "AttributeView":
        """The two-class view of one attribute of a multi-label classifier (e.g. ``"Male"``)."""
        return AttributeView(self, name)

    def conditional_accuracy(self, images, labels) -> ConditionalAccuracy:
        """How often generated ``images`` are judged to be the ``labels`` they were asked for.

        Args:
            images: generated images in [0, 1].
            labels: the class each was generated for (``(N,)``), or the multi-hot request.

        Returns:
            A :class:`ConditionalAccuracy`.
        """
        labels = np.asarray(labels)
        hit = self.predict(images) == labels
        if self.multi_label:
            per = {n: float(hit[:, k].mean()) for k, n in enumerate(self.class_names)}
            counts = {n: int(len(labels)) for n in self.class_names}
            return ConditionalAccuracy(float(hit.mean()), per, counts)
        per, counts = {}, {}
        for c in np.unique(labels):
            name = self.class_names[int(c)]
            per[name] = float(hit[labels == c].mean())
            counts[name] = int((labels == c).sum())
        return ConditionalAccuracy(float(hit.mean()), per, counts)


class AttributeView(Classifier):
    """One attribute of a multi-label CelebA classifier, seen as a two-class classifier
    (``["female", "male"]`` for ``Male``): what judges a model conditioned on that attribute.

    Its features are the whole classifier's, and its ``accuracy`` is the held-out accuracy on
    that attribute alone.
    """

    def __init__(self, parent: Classifier, attribute: str):
        if not parent.multi_label or attribute not in parent.class_names:
            raise ValueError(f"{attribute!r} is not an output of this classifier; it has "
                             f"{', '.join(parent.class_names)}.")
        self.parent, self.column = parent, parent.class_names.index(attribute)
        per = parent.info.get("per_class", {})
        super().__init__(parent.model, parent.dataset, class_names(parent.dataset, attribute),
                         False, float(per.get(attribute, parent.accuracy)), parent.train_split,
                         parent.eval_split, parent.path, parent.how, parent.info)

    def predict_proba(self, images, batch_size: int = 500) -> np.ndarray:
        p = self.parent.predict_proba(images, batch_size)[:, self.column]
        return np.stack([1.0 - p, p], axis=1)

    def features(self, images, batch_size: int = 500) -> np.ndarray:
        return self.parent.features(images, batch_size)


def build_classifier(image_shape, num_outputs: int, base_filters: int = 32, seed: int = 0):
    """A small CNN: blocks of a 3x3 convolution and a 2x2 pooling until the image is at most
    8 pixels a side, then a dense layer. Random shifts of up to 10% augment training. Images
    larger than 32 pixels a side are first averaged down to at most 32 (CelebA's 64x64 faces:
    a quarter of the work, and sex or a smile still show).

    Args:
        image_shape: ``(H, W, C)``.
        num_outputs: classes (softmax) or attributes (sigmoid), as logits.
        base_filters: filters of the first block (doubled at each block).
        seed: seed of the augmentation.

    Returns:
        An uncompiled ``keras.Model`` from images in [0, 1] to logits ``(B, num_outputs)``.
    """
    import keras
    from keras import layers

    h, w, c = (int(s) for s in image_shape)
    inp = keras.Input((h, w, c), name="image")
    x = layers.RandomTranslation(0.1, 0.1, fill_mode="constant", seed=seed, name="shift")(inp)
    side = min(h, w)
    while side > 32:  # faces at 64x64: attributes read as well at 32x32, at a quarter the cost
        x = layers.AveragePooling2D(2, name=f"shrink{side}")(x)
        side //= 2
    f, block = int(base_filters), 0
    while True:
        # (B, s, s, .) -> (B, s, s, f) -> (B, s / 2, s / 2, f)
        x = layers.Conv2D(f, 3, padding="same", activation="relu", name=f"b{block}_conv")(x)
        x = layers.MaxPooling2D(2, name=f"b{block}_pool")(x)
        side, f, block = side // 2, f * 2, block + 1
        if side <= 8:
            break
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(0.3, seed=seed, name="drop1")(x)
    x = layers.Dense(128, activation="relu", name="dense")(x)
    x = layers.Dropout(0.3, seed=seed + 1, name="drop2")(x)
    out = layers.Dense(int(num_outputs), name="logits")(x)
    return keras.Model(inp, out, name="classifier")


def _labels_for(dataset: str, attribute) -> tuple[list, bool]:
    names = class_names(dataset, attribute)
    return names, dataset == "celeba" and not isinstance(attribute, str)


def get_classifier(dataset: str = "mnist", train_split: str | None = None,
                   eval_split: str | None = None, steps: int = 1500, batch_size: int = 64,
                   image_size: int | None = None, attribute="Male", base_filters: int = 32,
                   learning_rate: float = 1e-3, seed: int = JUDGE_SEED, retrain: bool = False,
                   verbose: bool = True) -> Classifier:
    """Load the cached classifier for these settings, or train one and cache it.

    Args:
        dataset: ``"mnist"``, ``"cifar10"`` or ``"celeba"``.
        train_split, eval_split: splits (``None``: :func:`gencomp_utils.default_splits`, e.g.
            MNIST offline: ``test[:8000]`` and ``test[8000:]``).
        steps: optimisation steps.
        batch_size: images per step.
        image_size: side length (``None``: the data set's own).
        attribute: CelebA: the attribute (two classes) or a list of attributes (multi-label).
        base_filters: width of the first block.
        learning_rate: Adam's learning rate (halved twice over training).
        seed: seeds weights, augmentation and batch order; leave it at :data:`JUDGE_SEED` for
            the judge of an experiment, so that every seed is measured by the same classifier.
        retrain: ignore a cached classifier.
        verbose: print which path was taken and the held-out accuracy.

    Returns:
        A :class:`Classifier` whose ``accuracy`` is measured on ``eval_split``.
    """
    import keras
    import tensorflow as tf

    from .training import Data, config_hash

    dataset = check_name(dataset)
    if int(steps) < 1:
        raise ValueError(f"steps must be at least 1, got {steps!r}.")
    if train_split is None or eval_split is None:
        splits = default_splits(dataset)
        train_split = train_split or splits.train
        eval_split = eval_split or splits.eval
    names, multi = _labels_for(dataset, attribute)
    settings = {"version": VERSION, "dataset": dataset, "train": train_split, "eval": eval_split,
                "steps": int(steps), "batch_size": int(batch_size), "image_size": image_size,
                "attribute": attribute if dataset == "celeba" else None,
                "base_filters": int(base_filters), "learning_rate": float(learning_rate),
                "seed": int(seed)}
    if multi:  # attributes trained with each one's yeses and noes weighed alike
        settings["loss"] = "balanced"
    folder = paths.cache_dir("classifiers")
    stem = f"{dataset}-{config_hash(settings)}"
    path, record_path = folder / f"{stem}.keras", folder / f"{stem}.json"
    cached = path.is_file() and record_path.is_file() and not retrain
    if cached:
        record = {}
        try:
            record = json.loads(record_path.read_text())
            model = keras.saving.load_model(path, compile=False)  # for inference only
        except Exception as e:  # another Keras's file, or one cut short: train it again
            reason = (str(e).strip().splitlines() or [""])[0][:160]
            print(f"Classifier: the cached {path.name} cannot be loaded (written by Keras "
                  f"{record.get('keras', 'unknown')}, this is Keras {keras.__version__}; "
                  f"{type(e).__name__}: {reason}), so it is trained again.")
        else:
            if verbose:
                print(f"Classifier: found a trained {dataset} classifier in {path}: loaded it "
                      f"(held-out accuracy {record['accuracy']:.4f} on {eval_split}).")
            return Classifier(model, dataset, names, multi, record["accuracy"], train_split,
                              eval_split, path, "loaded", record)

    if dataset == "celeba":  # read from the image files batch by batch, never all at once
        ds, n_train, shape = _celeba_batches(train_split, image_size, attribute, batch_size, seed,
                                             multi)
    else:
        x, y = Data(dataset, train_split, image_size, attribute).arrays()
        order = np.random.default_rng(seed).permutation(len(x))
        ds = steady(tf.data.Dataset.from_tensor_slices((x[order], y[order].astype(
            np.float32 if multi else np.int32))).shuffle(len(x), seed=seed).repeat()
              .batch(int(batch_size)).prefetch(PREFETCH))
        n_train, shape = len(x), x.shape[1:]
    keras.utils.set_random_seed(seed)
    model = build_classifier(shape, len(names), base_filters, seed)
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
        [int(steps * 0.6), int(steps * 0.85)],
        [learning_rate, learning_rate / 2, learning_rate / 4])
    loss = (balanced_binary_crossentropy(_positive_share(train_split, attribute)) if multi else
            keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=loss, jit_compile=False)
    if verbose and not cached:  # else the message above says why it trains
        print(f"Classifier: no cached {dataset} classifier for these settings: training "
              f"{steps} steps on {train_split} ({n_train} images).")
    t0 = time.perf_counter()
    model.fit(ds, steps_per_epoch=int(steps), epochs=1, verbose=0, shuffle=False)
    seconds = time.perf_counter() - t0
    clf = Classifier(model, dataset, names, multi, 0.0, train_split, eval_split, path, "trained")
    hits, ys = [], []
    for xe, ye in _eval_batches(dataset, eval_split, image_size, attribute):
        hits.append(clf.predict(xe) == ye)
        ys.append(ye)
    hit, ye = np.concatenate(hits), np.concatenate(ys)
    clf.accuracy = float(hit.mean())
    per = ({n: float(hit[:, k].mean()) for k, n in enumerate(names)} if multi else
           {names[c]: float(hit[ye == c].mean()) for c in np.unique(ye)})
    clf.info = {"accuracy": clf.accuracy, "per_class": per, "seconds": seconds,
                "settings": settings, "eval_images": int(len(ye)), "keras": keras.__version__}
    if multi:  # rare attributes: always answering "no" scores high accuracy, balanced 0.5
        clf.info["balanced_accuracy"] = {n: balanced_accuracy(hit[:, k], ye[:, k])
                                         for k, n in enumerate(names)}
    part = path.with_name(f"{path.stem}.part{os.getpid()}.keras")  # whole, or not at all
    model.save(part)
    os.replace(part, path)
    paths.write_json(record_path, clf.info)
    if verbose:
        print(f"Classifier: trained in {seconds:.1f} s; held-out accuracy {clf.accuracy:.4f} on "
              f"{eval_split} ({len(ye)} images); saved to {path}.")
    return clf


def _positive_share(split, attributes) -> np.ndarray:
    """The share of CelebA faces of ``split`` with each attribute, from the attribute file."""
    from .data import CELEBA_ATTRIBUTES, find_source

    cols = [CELEBA_ATTRIBUTES.index(a) for a in attributes]
    return (find_source("celeba", split).labels[:, cols] > 0).mean(axis=0)


def balanced_binary_crossentropy(positive_share):
    """A loss for several yes/no attributes that weighs the yeses and the noes of each attribute
    equally (each answer's mean cross-entropy, averaged): the loss of which balanced accuracy is
    the score. With the plain cross-entropy a judge learns to deny a rare attribute (4% of faces
    have a moustache in the course's sample) and scores 96% while telling nothing."""
    from keras import ops

    p = np.clip(np.asarray(positive_share, np.float32), 0.01, 0.99)
    w_yes, w_no = 0.5 / p, 0.5 / (1.0 - p)

    def loss(y, logits):
        y = ops.cast(y, logits.dtype)
        return ops.mean(w_yes * y * ops.softplus(-logits) + w_no * (1 - y) * ops.softplus(logits))

    return loss


def balanced_accuracy(hit, truth) -> float:
    """The mean over the true answers (yes, no) present of the share judged right among images
    with that answer: 0.5 for a judge that always gives one answer, however rare the other."""
    hit, truth = np.asarray(hit, bool), np.asarray(truth)
    return float(np.mean([hit[truth == v].mean() for v in np.unique(truth)]))


def _celeba_batches(split, image_size, attribute, batch_size, seed, multi):
    """Training batches streamed from the CelebA image files: ``(dataset, images, shape)``."""
    import tensorflow as tf

    from .data import find_source, load_dataset

    ds = load_dataset("celeba", split, image_size, int(batch_size), attribute=attribute,
                      shuffle=True, seed=seed, repeat=True, drop_remainder=True)
    ds = ds.map(lambda x, y: (x, tf.cast(y, tf.float32 if multi else tf.int32)))
    return ds, len(find_source("celeba", split)), tuple(ds.element_spec[0].shape[1:])


def _eval_batches(dataset, split, image_size, attribute, batch_size: int = 500):
    """Held-out ``(images, labels)`` as numpy batches (streamed for CelebA)."""
    from .data import load_dataset

    for x, y in load_dataset(dataset, split, image_size, batch_size, attribute=attribute,
                             shuffle=False):
        yield x.numpy(), y.numpy()


def digit_classifier(train_split: str | None = None, eval_split: str | None = None,
                     steps: int = 1500, **kwargs) -> Classifier:
    """The MNIST digit classifier (see :func:`get_classifier`)."""
    return get_classifier("mnist", train_split, eval_split, steps=steps, **kwargs)
