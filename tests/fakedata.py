"""Tiny data sets written in the real on-disk formats, for machines without the real data."""
from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np

ATTRS_FILE = "list_attr_celeba.txt"


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file (unsigned bytes) holding ``array``."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` 28x28 images whose class (0-9) sets where a bright bar is, plus noise."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 10
    x = rng.integers(0, 40, size=(n, 28, 28)).astype(np.uint8)
    for i, label in enumerate(y):
        x[i, 4:24, 2 + 2 * label:4 + 2 * label] = 255
    return x, y.astype(np.uint8)


def write_mnist_idx(folder: Path, n: int = 200, prefix: str = "t10k", gz: bool = True) -> Path:
    """MNIST ``{prefix}-images-idx3-ubyte[.gz]`` and labels in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    x, y = digits(n)
    ext = ".gz" if gz else ""
    for stem, arr in ((f"{prefix}-images-idx3-ubyte", x), (f"{prefix}-labels-idx1-ubyte", y)):
        raw = idx_bytes(arr)
        (folder / (stem + ext)).write_bytes(gzip.compress(raw) if gz else raw)
    return folder


def write_mnist_npz(path: Path, n_train: int = 60, n_test: int = 40) -> Path:
    """Keras' ``mnist.npz`` layout: x_train, y_train, x_test, y_test."""
    path.parent.mkdir(parents=True, exist_ok=True)
    xtr, ytr = digits(n_train, seed=1)
    xte, yte = digits(n_test, seed=2)
    np.savez(path, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    return path


def colour_images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` 32x32 RGB images whose class sets the dominant colour, round-robin classes."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 10
    x = rng.integers(0, 60, size=(n, 32, 32, 3)).astype(np.uint8)
    for i, label in enumerate(y):
        x[i, 8:24, 8:24, label % 3] = 100 + 15 * label
    return x, y.astype(np.int64)


def write_cifar_npz(path: Path, n: int = 100) -> Path:
    """An ``.npz`` with ``x`` (N, 32, 32, 3) uint8 and ``y`` like the shared CIFAR-10 subset."""
    path.parent.mkdir(parents=True, exist_ok=True)
    x, y = colour_images(n)
    np.savez(path, x=x, y=y)
    return path


def cifar_batch_bytes(x: np.ndarray, y: np.ndarray) -> bytes:
    """A pickled CIFAR-10 python batch."""
    flat = x.transpose(0, 3, 1, 2).reshape(len(x), -1)
    return pickle.dumps({b"data": flat, b"labels": [int(v) for v in y]})


def write_cifar_batches(folder: Path, per_batch: int = 20) -> Path:
    """``cifar-10-batches-py/`` with data_batch_1..5 and test_batch."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        x, y = colour_images(per_batch, seed=i)
        (folder / name).write_bytes(cifar_batch_bytes(x, y))
    return folder


def write_cifar_targz(path: Path, per_batch: int = 20) -> Path:
    """A ``cifar-10-python.tar.gz`` holding ``cifar-10-batches-py/`` (not the official bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
            x, y = colour_images(per_batch, seed=i)
            raw = cifar_batch_bytes(x, y)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return path


def write_celeba(folder: Path, n: int = 40, size=(109, 89), kaggle: bool = False,
                 first: int = 1) -> Path:
    """CelebA files: ``n`` JPEG faces (a bright disc; males get a dark beard band) and attributes.

    Args:
        folder: the ``celeba`` folder to fill.
        n: number of images, named ``{first:06d}.jpg`` onwards.
        size: (height, width) of the images; the shared sample is 109x89 (half resolution).
        kaggle: Kaggle's layout (nested image folder, ``list_attr_celeba.csv``).
        first: number of the first file.
    """
    from PIL import Image

    from gencomp_utils.data import CELEBA_ATTRIBUTES

    image_dir = folder / "img_align_celeba"
    if kaggle:
        image_dir = image_dir / "img_align_celeba"
    image_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    h, w = size
    yy, xx = np.mgrid[:h, :w]
    names, rows = [], []
    for k in range(n):
        male = k % 5 in (0, 2)  # 40% male
        img = np.full((h, w, 3), 40, np.uint8)
        disc = (yy - h * 0.55) ** 2 + (xx - w * 0.5) ** 2 < (w * 0.3) ** 2
        img[disc] = (220, 180, 150)
        if male:
            img[int(h * 0.7):int(h * 0.8), int(w * 0.35):int(w * 0.65)] = 30
        img = np.clip(img.astype(int) + rng.integers(-10, 10, img.shape), 0, 255).astype(np.uint8)
        name = f"{first + k:06d}.jpg"
        Image.fromarray(img).save(image_dir / name, format="JPEG", quality=90)
        values = rng.choice([-1, 1], size=len(CELEBA_ATTRIBUTES))
        values[CELEBA_ATTRIBUTES.index("Male")] = 1 if male else -1
        names.append(name)
        rows.append(values)
    if kaggle:
        lines = ["image_id," + ",".join(CELEBA_ATTRIBUTES)]
        lines += [f"{nm}," + ",".join(str(v) for v in r) for nm, r in zip(names, rows)]
        (folder / "list_attr_celeba.csv").write_text("\n".join(lines) + "\n")
    else:
        lines = [str(n), " ".join(CELEBA_ATTRIBUTES)]
        lines += [f"{nm} " + " ".join(f"{v:2d}" for v in r) for nm, r in zip(names, rows)]
        with open(folder / ATTRS_FILE, "w", newline="") as f:
            f.write("\r\n".join(lines) + "\r\n")
    return folder


def write_all(root: Path) -> Path:
    """A data folder with MNIST (test IDX files), CIFAR-10 (test npz) and CelebA (train images)."""
    write_mnist_idx(root / "mnist", n=1000)
    write_cifar_npz(root / "cifar10" / "cifar10_subset.npz", n=500)
    write_celeba(root / "celeba", n=120)
    return root
