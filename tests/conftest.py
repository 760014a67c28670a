"""Test settings: the smoke preset, a fresh cache and output folder, and a data folder.

- ``GENCOMP_PRESET`` is ``smoke`` unless set.
- ``GENCOMP_CACHE_DIR`` and ``GENCOMP_OUTPUT_DIR`` are fresh temporary folders unless set, so a
  test run starts from an empty cache and writes nothing into the repository.
- ``GENCOMP_DATA_DIR`` must name an existing folder when set. With ``CI=true`` it must be set.
  Otherwise, unset, the tests write tiny files in the real on-disk formats and point it there,
  so the suite also passes on a fresh machine offline.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

import fakedata  # noqa: E402

_TMP = Path(tempfile.mkdtemp(prefix="gencomp-tests-"))
os.environ.setdefault("GENCOMP_PRESET", "smoke")
os.environ.setdefault("GENCOMP_CACHE_DIR", str(_TMP / "cache"))
os.environ.setdefault("GENCOMP_OUTPUT_DIR", str(_TMP / "runs"))
os.environ.setdefault("GENCOMP_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# Before any test module imports Keras: TensorFlow then starts as it does in the notebooks, with
# the oneDNN kernels and the log level the package asks for.
import gencomp_utils  # noqa: E402,F401

_data = os.environ.get("GENCOMP_DATA_DIR")
_ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
if _data and not Path(_data).is_dir():
    pytest.exit(f"GENCOMP_DATA_DIR={_data} is not a folder. Point it at the data (e.g. "
                "../shared/data) or unset it to test on generated data.", returncode=4)
if not _data:
    if _ci:
        pytest.exit("CI=true but GENCOMP_DATA_DIR is unset: CI tests on the real sample data "
                    "(set GENCOMP_DATA_DIR, as .ci/run does).", returncode=4)
    os.environ["GENCOMP_DATA_DIR"] = str(fakedata.write_all(_TMP / "data"))

DATA_DIR = Path(os.environ["GENCOMP_DATA_DIR"])
# The shared sample of real data carries an MD5SUMS file; generated data does not.
SHARED_DATA = (DATA_DIR / "MD5SUMS").is_file()


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason="needs the shared real-image sample in GENCOMP_DATA_DIR")
    for item in items:
        if "shared_data" in item.keywords and not SHARED_DATA:
            item.add_marker(skip)


def pytest_report_header(config):
    kind = "shared real-image sample" if SHARED_DATA else "generated tiny files"
    return (f"gencomp: preset={os.environ['GENCOMP_PRESET']} data={DATA_DIR} ({kind}) "
            f"cache={os.environ['GENCOMP_CACHE_DIR']}")


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """An empty data folder that the loaders search alone (repo data/ and Keras cache excluded)."""
    from gencomp_utils import paths

    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("GENCOMP_DATA_DIR", str(root))
    monkeypatch.setenv("GENCOMP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(paths, "data_search_dirs", lambda: [root, tmp_path / "cache" / "downloads"])
    return root
