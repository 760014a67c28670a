"""gencomp_utils: the tested helpers behind the gencomp course (VAEs and GANs compared).

Importing the package seeds nothing, sets no plot style, reads no network, writes no file and
does not import TensorFlow (the functions that need it do). If TensorFlow is not imported yet, it
prepares TensorFlow's start, through two environment variables, each only when it is unset, and
one hook:

- ``TF_ENABLE_ONEDNN_OPTS=1``: TensorFlow runs its CPU kernels through oneDNN, which it leaves off
  on CPUs without AVX-512 (see :func:`gencomp_utils.devices.prefer_onednn`; ``0`` keeps
  TensorFlow's own choice).
- ``TF_CPP_MIN_LOG_LEVEL=3``: no TensorFlow C++ log line in notebooks or consoles, with a hook on
  the first ``import tensorflow`` for the lines printed before TensorFlow reads the level (see
  :func:`gencomp_utils.devices.quiet_tensorflow_logs`; ``0`` shows every line).
"""
from .devices import prefer_onednn, quiet_tensorflow_logs

prefer_onednn()  # before anything below could import TensorFlow
quiet_tensorflow_logs()

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
