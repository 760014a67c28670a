"""Data sets of the course: MNIST, CIFAR-10 and CelebA as ``tf.data`` pipelines.

Data is looked for, in order, in ``GENCOMP_DATA_DIR``, the repository's ``data/``, the Keras cache
(``~/.keras/datasets``) and the project cache's ``downloads/``; only then is it downloaded (MNIST and
CIFAR-10, from the official addresses, checksum verified). CelebA is read from a local folder only.

Accepted on-disk formats:

- MNIST: the original IDX files (``t10k-images-idx3-ubyte[.gz]`` ...) or Keras' ``mnist.npz``.
- CIFAR-10: ``cifar-10-batches-py/``, ``cifar-10-python.tar.gz``, or an ``.npz`` with ``x`` and
  ``y`` (taken as the test split unless its name contains ``train``) or with ``x_train`` ... keys.
- CelebA: ``img_align_celeba/*.jpg`` with ``list_attr_celeba.txt`` (original layout) or Kaggle's
  layout (``img_align_celeba/img_align_celeba/*.jpg`` with ``list_attr_celeba.csv``), at any
  resolution. Splits follow ``list_eval_partition`` if present, else the official file-number
  ranges.

``import gencomp_utils.data`` does not import TensorFlow; :func:`load_dataset` does.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import re
import shutil
import struct
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import paths

DATASETS = ("mnist", "cifar10", "celeba")
MAX_SIDE = 72  # the paper resizes every image to at most 72x72
MIN_SIDE = 8
PARALLEL_CALLS = max(1, os.cpu_count() or 1)  # threads of a pipeline's decoding and scaling
PREFETCH = 2  # batches read ahead of training

MNIST_CLASSES = [str(d) for d in range(10)]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck"]
CELEBA_ATTRIBUTES = [
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
    "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair",
    "Bushy_Eyebrows", "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair",
    "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache",
    "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline",
    "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings",
    "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
]
# Default image size (height, width, channels) of each data set.
DEFAULT_SHAPE = {"mnist": (28, 28, 1), "cifar10": (32, 32, 3), "celeba": (64, 64, 3)}
SPLITS = {"mnist": ("train", "test"), "cifar10": ("train", "test"),
          "celeba": ("train", "validation", "test")}

# Official CelebA partition by file number (list_eval_partition.txt): last number of each split.
_CELEBA_LAST = {"train": 162_770, "validation": 182_637, "test": 202_599}
# Square face crop: 140 of the 178-pixel width of the aligned images, centred.
_CELEBA_CROP = 140 / 178

MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"

CELEBA_HOWTO = (
    "CelebA cannot be downloaded automatically (its Google Drive quota breaks scripted downloads). "
    "Download 'img_align_celeba.zip' and 'list_attr_celeba.txt' from the CelebA site, or Kaggle's "
    "'celeba-dataset' (jessicali9530), and unpack them into <data dir>/celeba/ so that it holds "
    "img_align_celeba/000001.jpg ... and list_attr_celeba.txt (or Kaggle's list_attr_celeba.csv)."
)


class DataError(RuntimeError):
    """A data file is missing, unreadable or not in the expected format."""


class DataNotFoundError(DataError, FileNotFoundError):
    """No copy of the requested data set or split was found (and none could be downloaded)."""


# --------------------------------------------------------------------------------------------
# Arguments


def check_name(name: str) -> str:
    """Return the data set's canonical name, or raise a ValueError listing the valid ones."""
    key = str(name).lower().replace("-", "").replace("_", "")
    aliases = {"mnist": "mnist", "cifar10": "cifar10", "cifar": "cifar10", "celeba": "celeba"}
    if key not in aliases:
        raise ValueError(f"Unknown data set {name!r}. Choose one of: {', '.join(DATASETS)}.")
    return aliases[key]


def check_attribute(attribute):
    """Validate a CelebA attribute name (or a list of names); raise a ValueError listing them."""
    names = [attribute] if isinstance(attribute, str) else list(attribute)
    for a in names:
        if a not in CELEBA_ATTRIBUTES:
            close = [c for c in CELEBA_ATTRIBUTES if c.lower() == str(a).lower()]
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"Unknown CelebA attribute {a!r}.{hint} Valid attributes: "
                             f"{', '.join(CELEBA_ATTRIBUTES)}.")
    return attribute


def check_image_size(image_size, name: str) -> tuple[int, int]:
    """Return ``(height, width)``; ``None`` means the data set's default size.

    Raises:
        ValueError: not a positive int or pair of ints between 8 and 72 (the paper's limit).
    """
    if image_size is None:
        return DEFAULT_SHAPE[name][:2]
    size = (image_size, image_size) if isinstance(image_size, (int, np.integer)) else image_size
    try:
        h, w = (int(s) for s in size)
        ok = all(float(s) == int(s) for s in size)
    except (TypeError, ValueError):
        ok = False
    if not ok or not (MIN_SIDE <= h <= MAX_SIDE and MIN_SIDE <= w <= MAX_SIDE):
        raise ValueError(
            f"Bad image_size {image_size!r}: give an int or (height, width) with each side from "
            f"{MIN_SIDE} to {MAX_SIDE} pixels (the paper's limit is 72x72); e.g. 28, 32 or 64.")
    return h, w


_SPLIT_RE = re.compile(r"^(train|test|validation)(?:\[\s*(-?\d+%?)?\s*:\s*(-?\d+%?)?\s*\])?$")


def parse_split(split: str):
    """Parse a TFDS-style split: ``"train"``, ``"test[:8000]"``, ``"train[:10%]"``, ``"test[-500:]"``.

    Returns:
        ``(base, start, stop)`` where start and stop are None, an int, or a string like ``"10%"``.
    """
    m = _SPLIT_RE.match(str(split).strip().replace(" ", ""))
    if not m:
        raise ValueError(f"Bad split {split!r}: use 'train', 'test' or 'validation', optionally "
                         "sliced like 'test[:8000]', 'test[8000:]' or 'train[:10%]'.")
    return m.group(1), m.group(2), m.group(3)


def _index(spec, n: int):
    if spec is None:
        return None
    if spec.endswith("%"):
        pct = int(spec[:-1])
        if not -100 <= pct <= 100:
            raise ValueError(f"Bad split percentage {spec!r}: use -100% to 100%.")
        return int(round(n * pct / 100))
    return int(spec)


def slice_indices(split: str, n: int) -> range:
    """Indices of the examples ``split`` selects from a split of ``n`` examples."""
    _, start, stop = parse_split(split)
    return range(n)[slice(_index(start, n), _index(stop, n))]


# --------------------------------------------------------------------------------------------
# Finding files


def _dirs(*subfolders: str) -> list[Path]:
    out = []
    for root in paths.data_search_dirs():
        for sub in subfolders:
            d = root / sub if sub else root
            if d.is_dir() and d not in out:
                out.append(d)
    return out


def _offline() -> bool:
    return os.environ.get("GENCOMP_OFFLINE", "").lower() in ("1", "true", "yes")


def _searched() -> str:
    return "; ".join(str(d) for d in paths.data_search_dirs())


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _download(fname: str, url: str, file_hash: str, what: str) -> Path:
    """Download into the project cache with keras.utils.get_file (checksum verified)."""
    import keras

    try:
        return Path(keras.utils.get_file(fname, origin=url, file_hash=file_hash,
                                         cache_dir=str(paths.cache_dir()),
                                         cache_subdir="downloads"))
    except Exception as e:  # keras raises a bare Exception on network failures
        raise DataNotFoundError(f"{what}\nThe download from {url} failed too: {e}") from None


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file of unsigned bytes (gzipped or not), checking its size against its header."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"Cannot read {path}: {e}. The file is damaged or truncated; "
                        "replace it with a fresh copy.") from None
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != 0x08:
        raise DataError(f"{path} is not an IDX file of unsigned bytes (bad header); "
                        "replace it with a fresh copy.")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    offset = 4 + 4 * ndim
    expected = offset + int(np.prod(dims))
    if len(raw) != expected:
        raise DataError(f"{path} is truncated or damaged: {len(raw)} bytes where its header "
                        f"promises {expected}; replace it with a fresh copy.")
    return np.frombuffer(raw, np.uint8, offset=offset).reshape(dims)


def _load_npz(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"Cannot read {path}: {e}. The file is damaged or truncated; "
                        "replace it with a fresh copy.") from None


def _check_pair(x: np.ndarray, y: np.ndarray, origin: str, shape) -> tuple[np.ndarray, np.ndarray]:
    if x.ndim == 3:
        x = x[..., None]
    if x.shape[1:] != shape or len(x) != len(y):
        raise DataError(f"{origin}: images of shape {x.shape} and {len(y)} labels; expected "
                        f"(N, {', '.join(map(str, shape))}) images with one label each.")
    return np.ascontiguousarray(x, dtype=np.uint8), np.asarray(y, dtype=np.int32).reshape(-1)


def _find_mnist(base: str, download: bool):
    prefix = {"train": "train", "test": "t10k"}[base]
    for d in _dirs("mnist", "MNIST", os.path.join("MNIST", "raw"), ""):
        for img_name, lbl_name in [(f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"),
                                   (f"{prefix}-images.idx3-ubyte", f"{prefix}-labels.idx1-ubyte")]:
            for ext in (".gz", ""):
                img, lbl = d / (img_name + ext), d / (lbl_name + ext)
                if img.is_file() and lbl.is_file():
                    x, y = read_idx(img), read_idx(lbl)
                    return _check_pair(x, y, f"{img} + {lbl}", (28, 28, 1)) + (f"{img.parent} (IDX)",)
    for d in _dirs("mnist", ""):
        npz = d / "mnist.npz"
        if npz.is_file():
            z = _load_npz(npz)
            if f"x_{base}" in z:
                return _check_pair(z[f"x_{base}"], z[f"y_{base}"], str(npz), (28, 28, 1)) + (str(npz),)
    what = (f"MNIST {base} split not found. Put its original IDX files "
            f"{prefix}-images-idx3-ubyte.gz and {prefix}-labels-idx1-ubyte.gz (gzipped or not), or "
            f"Keras' mnist.npz, in <data dir>/mnist/, where <data dir> is GENCOMP_DATA_DIR or the "
            f"repository's data/ folder. Searched: {_searched()}.")
    if not download:
        raise DataNotFoundError(what)
    npz = _download("mnist.npz", MNIST_URL, MNIST_SHA256, what)
    z = _load_npz(npz)
    return _check_pair(z[f"x_{base}"], z[f"y_{base}"], str(npz), (28, 28, 1)) + (str(npz),)


def _read_cifar_batch(path: Path):
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        x = np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return x, np.asarray(batch[b"labels"])
    except Exception as e:
        raise DataError(f"Cannot read CIFAR-10 batch {path}: {e}. The file is damaged or "
                        "truncated; replace it with a fresh copy.") from None


def _cifar_from_batches(folder: Path, base: str):
    names = [f"data_batch_{i}" for i in range(1, 6)] if base == "train" else ["test_batch"]
    files = [folder / n for n in names]
    if not all(f.is_file() for f in files):
        return None
    parts = [_read_cifar_batch(f) for f in files]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    return _check_pair(x, y, str(folder), (32, 32, 3)) + (str(folder),)


def _extract_cifar_archive(archive: Path) -> Path:
    """Verify the official archive's md5, then unpack it into the cache (once)."""
    dest = paths.cache_dir("cifar10")
    folder = dest / "cifar-10-batches-py"
    if (folder / "test_batch").is_file():
        return folder
    digest = _md5(archive)
    if digest != CIFAR10_MD5:
        raise DataError(f"{archive} is not the official CIFAR-10 archive (md5 {digest}, expected "
                        f"{CIFAR10_MD5}); it may be truncated. Replace it with a fresh download.")
    part = dest / f"unpacking{os.getpid()}"  # renamed into place once whole
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(part, filter="data")
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(part / "cifar-10-batches-py", folder)
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DataError(f"Cannot unpack {archive}: {e}.") from None
    finally:
        shutil.rmtree(part, ignore_errors=True)
    return folder


def _find_cifar10(base: str, download: bool):
    dirs = _dirs("cifar10", "cifar-10", "")
    for d in dirs:
        found = _cifar_from_batches(d / "cifar-10-batches-py", base)
        if found:
            return found
    for d in dirs:
        for npz in sorted(d.glob("cifar*.npz")):
            z = _load_npz(npz)
            if f"x_{base}" in z:
                return _check_pair(z[f"x_{base}"], z[f"y_{base}"], str(npz), (32, 32, 3)) + (str(npz),)
            if "x" in z and "y" in z:
                npz_split = "train" if "train" in npz.name.lower() else "test"
                if npz_split == base:
                    return _check_pair(z["x"], z["y"], str(npz), (32, 32, 3)) + (str(npz),)
    cached = paths.cache_dir("cifar10", create=False) / "cifar-10-batches-py"
    if cached.is_dir():
        try:
            found = _cifar_from_batches(cached, base)
        except DataError as e:  # the unpacked copy is damaged: unpack the archive again
            print(f"The unpacked CIFAR-10 copy in the cache cannot be read ({e}); unpacking "
                  "it again.")
            shutil.rmtree(cached)
            found = None
        if found:
            return found
    for d in dirs:
        archive = d / "cifar-10-python.tar.gz"
        if archive.is_file():
            return _cifar_from_batches(_extract_cifar_archive(archive), base)
    npz_hint = "cifar10_train.npz" if base == "train" else "cifar10_test.npz"
    what = (f"CIFAR-10 {base} split not found. Put one of these in <data dir>/cifar10/, where "
            f"<data dir> is GENCOMP_DATA_DIR or the repository's data/ folder: the unpacked "
            f"cifar-10-batches-py/ folder, the archive cifar-10-python.tar.gz, or an .npz with "
            f"arrays x (N, 32, 32, 3 uint8) and y named like {npz_hint}. Searched: {_searched()}.")
    if not download:
        raise DataNotFoundError(what)
    archive = _download("cifar-10-python.tar.gz", CIFAR10_URL, CIFAR10_MD5, what)
    return _cifar_from_batches(_extract_cifar_archive(archive), base)


@dataclass
class CelebaFiles:
    """Where a CelebA copy lives: image folder, attribute file, and optional partition file."""

    image_dir: Path
    attr_file: Path
    partition_file: Path | None


def find_celeba() -> CelebaFiles:
    """Locate a CelebA copy (original or Kaggle layout) in the data folders."""
    for d in _dirs("celeba", "CelebA", "celeba-dataset", ""):
        image_dir = None
        for cand in (d / "img_align_celeba" / "img_align_celeba", d / "img_align_celeba"):
            if cand.is_dir() and any(cand.glob("*.jpg")):
                image_dir = cand
                break
        attr = next((p for p in (d / "list_attr_celeba.txt", d / "Anno" / "list_attr_celeba.txt",
                                 d / "list_attr_celeba.csv") if p.is_file()), None)
        if image_dir and attr:
            part = next((p for p in (d / "list_eval_partition.txt", d / "Eval" /
                                     "list_eval_partition.txt", d / "list_eval_partition.csv")
                         if p.is_file()), None)
            return CelebaFiles(image_dir, attr, part)
    raise DataNotFoundError(f"CelebA not found. {CELEBA_HOWTO} Searched: {_searched()}.")


def read_celeba_attributes(path: Path) -> tuple[list[str], np.ndarray, list[str]]:
    """Read ``list_attr_celeba.txt`` (original) or ``.csv`` (Kaggle).

    Returns:
        ``(file names, values (N, 40) int8 of 1/-1, attribute names)``.
    """
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
        if path.suffix == ".csv":
            header = lines[0].strip().split(",")[1:]
            rows = [ln.strip().split(",") for ln in lines[1:] if ln.strip()]
        else:
            header = lines[1].split()
            rows = [ln.split() for ln in lines[2:] if ln.strip()]
        names = [r[0] for r in rows]
        values = np.array([r[1:] for r in rows], dtype=np.int8)
    except (OSError, UnicodeDecodeError, IndexError, ValueError) as e:
        raise DataError(f"Cannot read the CelebA attribute file {path}: {e}. Expected the "
                        "original list_attr_celeba.txt (count, names, then '<file> <40 x 1/-1>' "
                        "rows) or Kaggle's list_attr_celeba.csv.") from None
    if values.ndim != 2 or values.shape[1] != len(header):
        raise DataError(f"{path}: rows do not have one value for each of the {len(header)} "
                        "attributes; the file is damaged or truncated.")
    return names, values, header


def _celeba_partition(files: CelebaFiles, names: list[str]) -> np.ndarray:
    """Split code of each file: 0 train, 1 validation, 2 test."""
    if files.partition_file is not None:
        sep = "," if files.partition_file.suffix == ".csv" else None
        table = {}
        for ln in files.partition_file.read_text().splitlines():
            parts = ln.strip().split(sep)
            if len(parts) == 2 and parts[1].strip().isdigit():
                table[parts[0].strip()] = int(parts[1])
        return np.array([table.get(n, -1) for n in names])
    numbers = np.array([int(Path(n).stem) if Path(n).stem.isdigit() else -1 for n in names])
    return np.select([numbers < 1, numbers <= _CELEBA_LAST["train"],
                      numbers <= _CELEBA_LAST["validation"]], [-1, 0, 1], default=2)


def _find_celeba(base: str):
    files = find_celeba()
    names, values, header = read_celeba_attributes(files.attr_file)
    present = set(os.listdir(files.image_dir))
    keep = np.array([n in present for n in names], dtype=bool)
    code = {"train": 0, "validation": 1, "test": 2}[base]
    keep &= _celeba_partition(files, names) == code
    if not keep.any():
        first, last = ({0: 1, 1: _CELEBA_LAST["train"] + 1, 2: _CELEBA_LAST["validation"] + 1}[code],
                       _CELEBA_LAST[base])
        raise DataNotFoundError(
            f"CelebA {base} split not found: {files.image_dir} holds {len(present)} images, none of "
            f"them in the {base} split ({first:06d}.jpg to {last:06d}.jpg, or as listed in "
            f"list_eval_partition.txt). Add those images to {files.image_dir}, or use a slice "
            f"of a split that is present, e.g. 'train[:80%]'.")
    idx = np.flatnonzero(keep)
    file_paths = [str(files.image_dir / names[i]) for i in idx]
    order = [header.index(a) for a in CELEBA_ATTRIBUTES if a in header]
    if len(order) != len(CELEBA_ATTRIBUTES):
        missing = sorted(set(CELEBA_ATTRIBUTES) - set(header))
        raise DataError(f"{files.attr_file} lacks the attributes {missing}.")
    return file_paths, values[idx][:, order], f"{files.image_dir} + {files.attr_file.name}"


# --------------------------------------------------------------------------------------------
# Public API


@dataclass
class Source:
    """What a split resolved to, before any TensorFlow: arrays (MNIST, CIFAR-10) or file paths."""

    name: str
    split: str
    origin: str
    images: np.ndarray | None = None     # (N, H, W, C) uint8
    labels: np.ndarray | None = None     # (N,) int32, or (N, 40) int8 of 1/-1 for CelebA
    files: list[str] | None = None       # CelebA image paths

    def __len__(self) -> int:
        return len(self.files) if self.files is not None else len(self.images)


def find_source(name: str, split: str = "train", download: bool | None = None) -> Source:
    """Resolve a data set and split to arrays or file paths, without TensorFlow.

    Args:
        name: ``"mnist"``, ``"cifar10"`` or ``"celeba"``.
        split: a split, optionally sliced (``"test[:8000]"``).
        download: allow a download (MNIST, CIFAR-10); default True unless ``GENCOMP_OFFLINE=1``.

    Raises:
        ValueError: unknown data set or bad split.
        DataNotFoundError: the split is in none of the data folders and cannot be downloaded.
        DataError: a file is unreadable or truncated (its path is in the message).
    """
    name = check_name(name)
    base, _, _ = parse_split(split)
    if base not in SPLITS[name]:
        raise ValueError(f"{name} has no {base!r} split; it has: {', '.join(SPLITS[name])}.")
    download = (not _offline()) if download is None else download
    if name == "celeba":
        files, values, origin = _find_celeba(base)
        idx = slice_indices(split, len(files))
        return Source(name, split, origin, labels=values[idx.start:idx.stop:idx.step],
                      files=[files[i] for i in idx])
    finder = _find_mnist if name == "mnist" else _find_cifar10
    x, y, origin = finder(base, download)
    idx = slice_indices(split, len(x))
    sl = slice(idx.start, idx.stop, idx.step)
    return Source(name, split, origin, images=x[sl], labels=y[sl])


def available(name: str, split: str = "train") -> bool:
    """Whether ``split`` of ``name`` is on disk (no download is tried)."""
    try:
        return len(find_source(name, split, download=False)) > 0
    except DataNotFoundError:
        return False


def class_names(name: str, attribute: str | list[str] = "Male") -> list[str]:
    """Names of the labels ``load_dataset`` yields.

    For CelebA with one attribute: ``["not <attribute>", "<attribute>"]`` (``["female", "male"]``
    for ``Male``); with a list of attributes, the attribute names (one multi-hot entry each).
    """
    name = check_name(name)
    if name == "mnist":
        return list(MNIST_CLASSES)
    if name == "cifar10":
        return list(CIFAR10_CLASSES)
    check_attribute(attribute)
    if not isinstance(attribute, str):
        return list(attribute)
    if attribute == "Male":
        return ["female", "male"]
    return [f"not {attribute}", attribute]


@dataclass
class Splits:
    """Which split to train on and which to evaluate on, and why."""

    train: str
    eval: str
    note: str


def default_splits(name: str) -> Splits:
    """Train and evaluation splits for ``name`` from what is on disk (no download).

    Where the train split is absent (offline, only MNIST's test set), train on the first 80% of the
    test split and evaluate on the rest; where the test split is absent (the CelebA sample), split
    the train split the same way. ``note`` says which, so every output can report it.
    """
    name = check_name(name)
    has_train, has_test = available(name, "train"), available(name, "test")
    if has_train and has_test:
        return Splits("train", "test", f"{name}: trained on 'train', evaluated on 'test'.")
    if has_test:
        n = len(find_source(name, "test", download=False))
        cut = int(round(0.8 * n))
        return Splits(f"test[:{cut}]", f"test[{cut}:]",
                      f"{name}: the train split is absent, so training uses test[:{cut}] and "
                      f"evaluation test[{cut}:] (images never seen in training).")
    if has_train:
        return Splits("train[:80%]", "train[80%:]",
                      f"{name}: the test split is absent, so training uses train[:80%] and "
                      "evaluation train[80%:].")
    return Splits("train", "test", f"{name}: no data on disk; a download will be tried.")


def _scale(images, value_range):
    import tensorflow as tf

    lo, hi = value_range
    return tf.cast(images, tf.float32) * ((hi - lo) / 255.0) + lo


def _celeba_image_fn(size):
    """A function path -> (h, w, 3) uint8 face crop, asserting the file is a whole JPEG."""
    import tensorflow as tf

    def load(path):
        raw = tf.io.read_file(path)
        whole = tf.logical_and(tf.equal(tf.strings.substr(raw, 0, 2), b"\xff\xd8"),
                               tf.equal(tf.strings.substr(raw, -2, 2), b"\xff\xd9"))
        with tf.control_dependencies([tf.debugging.Assert(
                whole, ["Unreadable or truncated JPEG; replace this file:", path])]):
            img = tf.io.decode_jpeg(raw, channels=3)
        shape = tf.shape(img)
        h, w = shape[0], shape[1]
        side = tf.minimum(tf.cast(tf.round(tf.cast(w, tf.float32) * _CELEBA_CROP), tf.int32),
                          tf.minimum(h, w))
        img = tf.image.crop_to_bounding_box(img, (h - side) // 2, (w - side) // 2, side, side)
        img = tf.image.resize(img, size, antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(img), 0, 255), tf.uint8)

    return load


def _write_decoded(path: Path, images, shape: tuple):
    """Write the uint8 images of the dataset ``images`` to the ``.npy`` file ``path``, whole.

    The file appears only once complete (written beside it, then renamed), so an interrupted
    pass leaves no partial cache behind.
    """
    from tqdm.auto import tqdm

    tmp = path.with_name(path.name + f".part{os.getpid()}")
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
    try:
        i = 0
        with tqdm(total=shape[0], desc=f"decoding into {path.name}", unit="img",
                  leave=False, disable=shape[0] < 5_000) as bar:
            for batch in images.batch(256):
                out[i:i + len(batch)] = batch.numpy()
                i += len(batch)
                bar.update(len(batch))
        out.flush()
        del out
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _whole(path: Path, shape: tuple) -> bool:
    """Whether the ``.npy`` file ``path`` holds uint8 images of ``shape`` in full; a file that
    does not (cut short by a disconnect, say) is said and removed."""
    if not path.exists():
        return False
    try:
        head = np.load(path, mmap_mode="r")
        why = None if (head.shape, head.dtype) == (shape, np.uint8) else \
            f"it holds {head.dtype} of shape {head.shape}, not uint8 of {shape}"
        del head
    except Exception as e:  # cut short: ValueError; empty: EOFError
        why = f"{type(e).__name__}: {e}"
    if why:
        print(f"The decoded-image cache {path} cannot be used ({why}); decoding the images again.")
        path.unlink()
    return why is None


def _cached_reader(path: Path):
    """A function: int indices ``(B,)`` -> uint8 images ``(B, H, W, C)`` read from the ``.npy``
    file ``path`` (one read per image at its offset; the file is never mapped or held whole)."""
    import tensorflow as tf

    head = np.load(path, mmap_mode="r")
    shape, offset = head.shape, head.offset
    per = int(np.prod(shape[1:]))
    del head

    def read(indices):
        fd = os.open(path, os.O_RDONLY)
        try:
            return np.stack([np.frombuffer(os.pread(fd, per, offset + int(i) * per), np.uint8)
                             for i in indices]).reshape((len(indices),) + shape[1:])
        finally:
            os.close(fd)

    def fn(indices):
        images = tf.numpy_function(read, [indices], tf.uint8, stateful=False)
        return tf.ensure_shape(images, (None,) + shape[1:])

    return fn


def load_dataset(name: str, split: str = "train", image_size=None, batch_size: int = 64,
                 value_range=(0.0, 1.0), attribute: str | list[str] = "Male",
                 shuffle: bool | None = None, seed: int = 0, repeat: bool = False,
                 drop_remainder: bool = False, download: bool | None = None,
                 cache: bool = False, skip: int = 0, take: int | None = None):
    """A ``tf.data.Dataset`` of ``(images, labels)`` batches.

    Args:
        name: ``"mnist"``, ``"cifar10"`` or ``"celeba"``.
        split: ``"train"``, ``"test"`` (``"validation"`` for CelebA), optionally sliced in the
            TFDS style: ``"test[:8000]"``, ``"test[8000:]"``, ``"train[:10%]"``.
        image_size: int or ``(height, width)``, at most 72 per side; ``None``: 28 (MNIST),
            32 (CIFAR-10), 64 (CelebA, centre-cropped to the face, then resized).
        batch_size: images per batch.
        value_range: ``(low, high)`` that pixel values 0 and 255 map to: ``(0, 1)`` for a
            Bernoulli VAE decoder, ``(-1, 1)`` for a tanh GAN generator.
        attribute: CelebA only: the attribute that gives the label (``"Male"``: 1 male,
            0 female), or a list of attributes for a multi-hot label.
        shuffle: shuffle every epoch (default: for train splits only).
        seed: shuffling seed.
        repeat: repeat forever.
        drop_remainder: drop the last, smaller batch.
        download: allow downloading MNIST or CIFAR-10 when no local copy is found.
        cache: CelebA only: keep the decoded, resized images in one ``.npy`` file in the cache
            folder (``<cache>/tfdata/``), written whole on the first call; batches are then
            read from it image by image in a shuffled order of indices.
        skip, take: leave out the first ``skip`` images of the (shuffled) order, then keep at
            most ``take`` (``None``: all the rest). Neither reads the images it leaves out, so
            the rest of an epoch starts at once: ``skip=64 * k`` and ``seed`` as before give the
            batches from the ``k``-th on. Not with ``repeat``.

    Returns:
        Dataset of ``(float32 images (B, H, W, C), int32 labels (B,) or (B, K))``.

    Raises:
        ValueError: unknown data set or attribute, bad split or image size.
        DataNotFoundError: the data is not on disk and cannot be downloaded (says what to put where).
        DataError: a file is unreadable or truncated (names it).
    """
    name = check_name(name)
    size = check_image_size(image_size, name)
    if name == "celeba":
        check_attribute(attribute)
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size!r}.")
    if int(skip) < 0 or (take is not None and int(take) < 0):
        raise ValueError(f"skip and take count images and cannot be negative, got skip={skip!r}, "
                         f"take={take!r}.")
    if repeat and (skip or take is not None):
        raise ValueError("skip and take select part of one pass over the data; they cannot be "
                         "used with repeat=True.")
    lo, hi = (float(v) for v in value_range)
    src = find_source(name, split, download=download)
    if len(src) == 0:
        raise DataNotFoundError(f"The split {split!r} of {name} selects no images "
                                f"(found at {src.origin}); widen the slice.")
    import tensorflow as tf

    shuffle = parse_split(split)[0] == "train" if shuffle is None else shuffle
    parallel = PARALLEL_CALLS
    items, labels, path = src.images, src.labels, None
    if name == "celeba":
        cols = [CELEBA_ATTRIBUTES.index(a) for a in ([attribute] if isinstance(attribute, str)
                                                     else attribute)]
        labels = (src.labels[:, cols] > 0).astype(np.int32)
        labels = labels[:, 0] if isinstance(attribute, str) else labels
        items, load = src.files, _celeba_image_fn(size)
        if cache:  # decoded once into a file; then the pipeline carries indices into it
            key = re.sub(r"[^A-Za-z0-9]+", "_", f"{split}_{size[0]}x{size[1]}_{len(src)}")
            path = paths.cache_dir("tfdata") / f"celeba_{key}.npy"
            if not _whole(path, (len(src), *size, 3)):
                files = tf.data.Dataset.from_tensor_slices(src.files)
                _write_decoded(path, files.map(load, num_parallel_calls=parallel,
                                               deterministic=True), (len(src), *size, 3))
            items = np.arange(len(src))
    ds = tf.data.Dataset.from_tensor_slices((items, labels))
    if shuffle:  # arrays, paths or indices: the whole split fits in the buffer
        ds = ds.shuffle(len(src), seed=seed, reshuffle_each_iteration=True)
    ds = _part(ds, skip, take)  # before decoding: what is left out is never read
    if name == "celeba" and path is None:
        ds = ds.map(lambda p, y: (load(p), y), num_parallel_calls=parallel, deterministic=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(int(batch_size), drop_remainder=drop_remainder)
    if path is not None:  # a batch of indices -> a batch of images read from the file
        read = _cached_reader(path)
        ds = ds.map(lambda i, y: (read(i), y), num_parallel_calls=parallel)

    def convert(images, labels):
        images = _scale(images, (lo, hi))
        if tuple(images.shape[1:3]) != tuple(size):
            images = tf.image.resize(images, size, antialias=True)
        return images, labels

    return steady(ds.map(convert, num_parallel_calls=parallel).prefetch(PREFETCH))


def _part(ds, skip: int, take: int | None):
    """``ds`` without its first ``skip`` elements, then at most ``take`` of them."""
    if skip:
        ds = ds.skip(int(skip))
    return ds if take is None else ds.take(int(take))


def steady(ds):
    """``ds`` with tf.data's autotuning turned off: fixed parallelism and a fixed prefetch.

    Autotuning runs a model thread that wakes at periods that double, up to a minute. When an
    iterator is destroyed, as at the end of every ``fit`` call, its destruction waits for the
    thread's next wake-up, which can add seconds to an epoch (``benchmarks/README.md``). The
    engine makes one ``fit`` call per epoch, so every pipeline it reads is built through this
    function.

    The pipelines passed here set their own fixed values instead: maps on as many threads as the
    machine has cores (:data:`PARALLEL_CALLS`) and :data:`PREFETCH` batches read ahead, enough
    to keep a CPU or a GPU fed, since decoding a batch takes far less time than training on it.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)


def load_numpy(name: str, split: str = "train", limit: int | None = None, **kwargs):
    """The images and labels of a split as NumPy arrays (small splits only: never all of CelebA).

    Args:
        name, split: as in :func:`load_dataset` (which gets ``kwargs`` too).
        limit: at most this many images (taken from the start of the split).

    Returns:
        ``(images float32 (N, H, W, C), labels int32)``.
    """
    kwargs.setdefault("shuffle", False)
    if limit is not None:
        base, start, stop = parse_split(split)
        if start is None and stop is None:
            split = f"{base}[:{int(limit)}]"
    ds = load_dataset(name, split, **kwargs)
    xs, ys = [], []
    count = 0
    for xb, yb in ds:
        xs.append(xb.numpy())
        ys.append(yb.numpy())
        count += len(xb)
        if limit is not None and count >= limit:
            break
    x, y = np.concatenate(xs), np.concatenate(ys)
    return (x[:limit], y[:limit]) if limit is not None else (x, y)


def describe_data() -> list[dict]:
    """Where each data set's splits were found on disk (no download is tried).

    Returns:
        One dict per data set and split: ``dataset``, ``split``, ``images`` (count or 0),
        ``found_at`` (a path) or ``missing`` (what to put where).
    """
    rows = []
    for name in DATASETS:
        for split in SPLITS[name]:
            try:
                src = find_source(name, split, download=False)
                rows.append({"dataset": name, "split": split, "images": len(src),
                             "found_at": src.origin})
            except DataError as e:
                rows.append({"dataset": name, "split": split, "images": 0, "missing": str(e)})
    return rows
