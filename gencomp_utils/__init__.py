"""gencomp_utils: the tested helpers behind the gencomp course (VAEs and GANs compared).

Importing the package has no side effects: no seeding, no plot styles, no network access, no files
written, and TensorFlow is imported only by the functions that need it.
"""
from .data import (CELEBA_ATTRIBUTES, DATASETS, DataError, DataNotFoundError, available,
                   class_names, default_splits, load_dataset, load_numpy)
from .paths import cache_dir, output_dir
from .presets import PRESETS, Preset, get_preset
from .course import Session, start

__version__ = "0.1.0"

__all__ = [
    "CELEBA_ATTRIBUTES", "DATASETS", "DataError", "DataNotFoundError", "PRESETS", "Preset",
    "Session", "available", "cache_dir", "class_names", "default_splits", "get_preset",
    "load_dataset", "load_numpy", "output_dir", "start",
]
