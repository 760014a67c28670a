"""Where the course reads data and writes caches and outputs.

Three folders, each set by an environment variable:

- ``GENCOMP_DATA_DIR``: where data sets are looked for first (may be read-only).
- ``GENCOMP_CACHE_DIR``: decompressed data, downloads, trained classifiers and checkpoints
  (default: the user cache folder, e.g. ``~/.cache/gencomp``).
- ``GENCOMP_OUTPUT_DIR``: run outputs such as figures and metrics (default: ``runs/`` in the
  repository, which git ignores).

Nothing here creates a folder on import; :func:`cache_dir` and :func:`output_dir` create theirs
only when called.
"""
from __future__ import annotations

import json
import math
import os
import sys
from contextlib import contextmanager
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _user_cache_root() -> Path:
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches"
    if os.name == "nt":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))


def keras_cache_dir() -> Path:
    """Folder where ``keras.datasets`` keeps its downloads (``~/.keras/datasets``)."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets"


def data_search_dirs() -> list[Path]:
    """Folders searched for data, in order: ``GENCOMP_DATA_DIR``, the repository's ``data/``,
    the Keras cache, then the project cache (where downloads land)."""
    dirs = []
    env = os.environ.get("GENCOMP_DATA_DIR")
    if env:
        dirs.append(Path(env).expanduser())
    dirs += [REPO_ROOT / "data", keras_cache_dir(), cache_dir(create=False) / "downloads"]
    seen, unique = set(), []
    for d in dirs:
        key = str(d.resolve()) if d.exists() else str(d)
        if key not in seen:
            seen.add(key)
            unique.append(d)
    return unique


def cache_dir(sub: str | None = None, create: bool = True) -> Path:
    """The cache folder (``GENCOMP_CACHE_DIR``), or a sub-folder of it.

    Args:
        sub: optional sub-folder, e.g. ``"checkpoints"``.
        create: make the folder if it does not exist.

    Returns:
        The folder's path.
    """
    env = os.environ.get("GENCOMP_CACHE_DIR")
    root = Path(env).expanduser() if env else _user_cache_root() / "gencomp"
    path = root / sub if sub else root
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def output_dir(sub: str | None = None, create: bool = True) -> Path:
    """The output folder (``GENCOMP_OUTPUT_DIR``, default ``runs/`` in the repository).

    Args:
        sub: optional sub-folder, e.g. a run name.
        create: make the folder if it does not exist.

    Returns:
        The folder's path.
    """
    env = os.environ.get("GENCOMP_OUTPUT_DIR")
    root = Path(env).expanduser() if env else REPO_ROOT / "runs"
    path = root / sub if sub else root
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def _set_environment(values: dict) -> None:
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@contextmanager
def environment(values: dict):
    """Set environment variables for the duration of a ``with`` block, then restore them.

    Args:
        values: name -> value; ``None`` removes the variable inside the block.
    """
    saved = {k: os.environ.get(k) for k in values}
    try:
        _set_environment(values)
        yield
    finally:
        _set_environment(saved)


def _plain(o):
    """``o`` with NumPy numbers as Python's, paths as strings and NaN or infinity as ``None``."""
    if isinstance(o, dict):
        return {k: _plain(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_plain(v) for v in o]
    if hasattr(o, "item") and getattr(o, "shape", None) == ():  # a NumPy scalar
        o = o.item()
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    return str(o) if isinstance(o, Path) else o


def write_json(path, obj, indent: int = 1) -> Path:
    """Write ``obj`` as JSON that any reader accepts (NumPy numbers as numbers, NaN and infinity
    as ``null``), creating the folder; the file is replaced in one step, so an interrupted write
    leaves the old one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(_plain(obj), indent=indent))
    os.replace(tmp, path)
    return path
