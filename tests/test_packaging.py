"""The project's packaging: pinned ranges that agree, and an import without side effects."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _requirements() -> dict:
    out = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            out[line] = line
    return out


def _environment_pip() -> dict:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, ln in enumerate(lines) if re.match(r"\s+- pip:\s*$", ln))
    out = {}
    for ln in lines[start + 1:]:
        m = re.match(r"\s{6,}- (.+)$", ln)
        if not m:
            break
        out[m.group(1).strip()] = m.group(1).strip()
    return out


def test_requirements_and_environment_agree():
    assert _requirements() == _environment_pip()


def test_every_requirement_has_a_tested_range():
    for req in _requirements():
        if req == "-e .":
            continue
        assert re.search(r">=[\d.]+,<[\d.]+$", req), f"{req} needs a lower and an upper bound"


def test_tensorflow_range_admits_colab_and_the_installed_release():
    spec = next(r for r in _requirements() if r.startswith("tensorflow"))
    lo, hi = re.findall(r"[\d.]+", spec)
    version = lambda v: tuple(int(p) for p in v.split(".")[:2])
    import tensorflow as tf

    # Colab shipped 2.19 in 2025 and follows TensorFlow's releases since.
    for release in ("2.19", tf.__version__):
        assert version(lo) <= version(release) < version(hi), (release, spec)


def test_requirements_install_the_package_editable():
    assert "-e ." in _requirements()


def test_import_has_no_side_effects(tmp_path):
    """No TensorFlow import, no seeding, no plot style, no network, no files."""
    code = r"""
import json, os, random, socket, sys
import numpy as np
import matplotlib
def no_network(*a, **k):
    raise AssertionError("network access on import")
socket.socket.connect = no_network
socket.create_connection = no_network
np.random.seed(123); random.seed(123)
tree = lambda: sorted(os.path.join(r, f) for r, ds, fs in os.walk(sys.argv[1]) for f in ds + fs)
files_before = tree()
before = (np.random.get_state()[1][:5].tolist(), random.getstate()[1][:5], dict(matplotlib.rcParams))
import gencomp_utils
after = (np.random.get_state()[1][:5].tolist(), random.getstate()[1][:5], dict(matplotlib.rcParams))
print(json.dumps({"tf": "tensorflow" in sys.modules, "same_rng": before[:2] == after[:2],
                  "same_rc": before[2] == after[2], "new_files": sorted(set(tree()) - set(files_before))}))
"""
    env = dict(os.environ, GENCOMP_CACHE_DIR=str(tmp_path / "cache"),
               GENCOMP_OUTPUT_DIR=str(tmp_path / "out"), HOME=str(tmp_path / "home"))
    res = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    facts = json.loads(res.stdout.strip().splitlines()[-1])
    assert facts == {"tf": False, "same_rng": True, "same_rc": True, "new_files": []}
