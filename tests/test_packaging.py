"""The project's packaging: pinned ranges that agree, and an import without side effects."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import gencomp_utils

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


IMPORT_FACTS = r"""
import json, os, random, socket, sys
import numpy as np
import matplotlib
def no_network(*a, **k):
    raise AssertionError("network access on import")
socket.socket.connect = no_network
socket.create_connection = no_network
np.random.seed(123); random.seed(123)
tree = lambda: sorted(os.path.join(r, f) for r, ds, fs in os.walk(sys.argv[1]) for f in ds + fs)
files_before, env_before, finders = tree(), dict(os.environ), list(sys.meta_path)
before = (np.random.get_state()[1][:5].tolist(), random.getstate()[1][:5], dict(matplotlib.rcParams))
import gencomp_utils
after = (np.random.get_state()[1][:5].tolist(), random.getstate()[1][:5], dict(matplotlib.rcParams))
env = {k: os.environ.get(k) for k in set(os.environ) | set(env_before)
       if os.environ.get(k) != env_before.get(k)}
hooks = [type(f).__name__ for f in sys.meta_path if f not in finders]
facts = {"tf": "tensorflow" in sys.modules, "same_rng": before[:2] == after[:2],
         "same_rc": before[2] == after[2], "new_files": sorted(set(tree()) - set(files_before)),
         "env": env, "hooks": hooks}
if len(sys.argv) > 2:  # then import TensorFlow: the hook goes
    import tensorflow
    facts["hooks_after_tf"] = [type(f).__name__ for f in sys.meta_path
                               if type(f).__module__.startswith("gencomp_utils")]
print(json.dumps(facts))
"""


def _import_facts(tmp_path, env=None, *args):
    env = {k: v for k, v in dict(os.environ, **(env or {})).items()
           if k not in ("TF_ENABLE_ONEDNN_OPTS", "TF_CPP_MIN_LOG_LEVEL") or k in (env or {})}
    env.update(GENCOMP_CACHE_DIR=str(tmp_path / "cache"), GENCOMP_OUTPUT_DIR=str(tmp_path / "out"),
               HOME=str(tmp_path / "home"))
    res = subprocess.run([sys.executable, "-c", IMPORT_FACTS, str(tmp_path), *args], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1]), res.stderr


def test_import_does_exactly_what_the_package_docstring_says(tmp_path):
    """No TensorFlow import, no seeding, no plot style, no network, no files; two environment
    variables set when unset, and a hook on TensorFlow's first import that then goes."""
    facts, stderr = _import_facts(tmp_path, None, "then-tensorflow")
    assert facts == {"tf": False, "same_rng": True, "same_rc": True, "new_files": [],
                     "env": {"TF_ENABLE_ONEDNN_OPTS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"},
                     "hooks": ["_QuietTensorFlowImport"], "hooks_after_tf": []}
    # Variables the user set stand; level 0 (every line) needs no hook.
    user, _ = _import_facts(tmp_path, {"TF_ENABLE_ONEDNN_OPTS": "0", "TF_CPP_MIN_LOG_LEVEL": "0"})
    assert user["env"] == {} and user["hooks"] == [] and not user["tf"]
    assert gencomp_utils.__doc__.count("TF_ENABLE_ONEDNN_OPTS=1") == 1
    assert gencomp_utils.__doc__.count("TF_CPP_MIN_LOG_LEVEL=3") == 1
    assert "I0000" not in stderr and "E0000" not in stderr and "absl" not in stderr, stderr
    # Without the package, the same import prints TensorFlow's start-up lines (else the check
    # above proves nothing on this machine).
    plain = subprocess.run([sys.executable, "-c", "import tensorflow as tf; "
                            "tf.config.list_physical_devices()"], capture_output=True, text=True,
                           timeout=120, env={k: v for k, v in os.environ.items()
                                             if k != "TF_CPP_MIN_LOG_LEVEL"})
    if "0000 " not in plain.stderr and "absl" not in plain.stderr:
        pytest.skip("TensorFlow prints no start-up line on this machine: nothing to hold back")


def test_the_readme_gives_the_colab_versions_ci_tests():
    """The README's table of tested versions shows the pins of .ci/colab-constraints.txt, and
    requirements.txt admits every one of them (Colab's own packages must never be replaced)."""
    from packaging.requirements import Requirement

    root = Path(__file__).resolve().parent.parent
    pins = dict(line.split("==") for line in (root / ".ci" / "colab-constraints.txt").read_text()
                .splitlines() if "==" in line and not line.startswith("#"))
    readme = (root / "README.md").read_text()
    rows = {cells[0]: cells[-1] for line in readme.splitlines() if line.startswith("| ")
            and (cells := [c.strip() for c in line.strip("|").split("|")])}
    for label, names in {"TensorFlow, Keras": ["tensorflow", "keras"],
                         "NumPy, matplotlib": ["numpy", "matplotlib"],
                         "ipywidgets, ipykernel, IPython": ["ipywidgets", "ipykernel", "ipython"]}.items():
        assert rows[label] == ", ".join(pins[n] for n in names), label
    for line in (root / "requirements.txt").read_text().splitlines():
        if line and not line.startswith(("#", "-")):
            req = Requirement(line)
            if req.name in pins:
                assert req.specifier.contains(pins[req.name]), (line, pins[req.name])
