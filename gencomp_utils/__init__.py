"""gencomp_utils: the tested helpers behind the gencomp course (VAEs and GANs compared).

Importing the package seeds nothing, sets no plot style, reads no network and writes no file, and
TensorFlow is imported only by the functions that need it. It does one thing: if TensorFlow is not
imported yet and ``TF_ENABLE_ONEDNN_OPTS`` is unset, it sets it to ``1``, so that TensorFlow runs
its CPU kernels through oneDNN, which it leaves off on CPUs without AVX-512 (1.4-1.7x faster
training measured at 32x32 and 64x64; see :func:`gencomp_utils.devices.prefer_onednn`). Set the
variable to ``0`` to keep TensorFlow's own choice.
"""
from .devices import prefer_onednn

prefer_onednn()  # before anything below could import TensorFlow

from .data import (  # noqa: E402
    CELEBA_ATTRIBUTES, DATASETS, DataError, DataNotFoundError, available, class_names,
    default_splits, load_dataset, load_numpy)
from .paths import cache_dir, output_dir  # noqa: E402
from .presets import PRESETS, Preset, get_preset  # noqa: E402
from .course import Session, start  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "CELEBA_ATTRIBUTES", "DATASETS", "DataError", "DataNotFoundError", "PRESETS", "Preset",
    "Session", "available", "cache_dir", "class_names", "default_splits", "get_preset",
    "load_dataset", "load_numpy", "output_dir", "start",
]
