"""Every course notebook: its shape, a papermill run under the smoke preset with no TensorFlow
log line in its outputs, and an nbval re-run whose `# NBVAL_CHECK_OUTPUT` cells must reproduce the
papermill run's output exactly."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gencomp_utils import devices, paths, runner

NOTEBOOKS = runner.list_notebooks()
IDS = [p.stem for p in NOTEBOOKS]
EXECUTED = paths.output_dir("executed-notebooks")


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


LOG_MARKS = ("I0000", "W0000", "E0000", "absl::InitializeLog")


def is_log_line(line: str) -> bool:
    """Whether a line is, or looks like, a TensorFlow C++ log line."""
    return bool(devices.TF_LOG_LINE.match(line)) or any(m in line for m in LOG_MARKS)


def log_lines(nb: dict) -> list[str]:
    """Every output line of a notebook that :func:`is_log_line`."""
    found = []
    for i, cell in enumerate(nb["cells"]):
        for out in cell.get("outputs", []):
            texts = [out.get("text", "")] + list(out.get("data", {}).values()) \
                + out.get("traceback", [])
            for text in texts:
                text = "".join(text) if isinstance(text, list) else str(text)
                found += [f"cell {i}: {line}" for line in text.splitlines() if is_log_line(line)]
    return found


def test_the_log_scan_finds_tensorflows_lines():
    from test_training import SAMPLE_LOG_LINES

    lines = list(SAMPLE_LOG_LINES)
    nb = {"cells": [{"outputs": [{"output_type": "stream", "name": "stderr",
                                  "text": ["loss 0.5\n"] + [ln + "\n" for ln in lines]}]}]}
    assert [f.split(": ", 1)[1] for f in log_lines(nb)] == lines
    assert not log_lines({"cells": [{"outputs": [{"text": "E = 0.5, I0 = 3\n"}]}]})


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_shape(path):
    nb = _load(path)
    cells = nb["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert all(not c["outputs"] and c["execution_count"] is None for c in code), \
        "commit notebooks without outputs"
    assert all(c.get("id") for c in cells), "every cell needs an id (nbformat 4.5)"
    intro = "".join(cells[0]["source"])
    assert intro.startswith(f"# {path.name[:2]} · "), "title: '# NN · Title'"
    assert f"colab.research.google.com/github/gencomp/gencomp/blob/main/notebooks/{path.name}" in intro
    assert "Run time" in intro and "Prerequisites" in intro and ("Next" in intro or path == NOTEBOOKS[-1])
    setup = "".join(code[0]["source"])
    assert "except ImportError" in setup and "--no-deps" in setup, "install gencomp_utils only if missing"
    params = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1, "exactly one cell tagged 'parameters'"
    assert 'preset = os.environ.get("GENCOMP_PRESET", "classroom")' in "".join(params[0]["source"])
    assert isinstance(nb["metadata"].get("gencomp", {}).get("requires"), list)
    too_long = [i for i, c in enumerate(code) if len("".join(c["source"]).splitlines()) > 20]
    assert not too_long, f"code cells {too_long} are long: move the plumbing into gencomp_utils"


@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_runs_under_papermill(path, monkeypatch):
    why = runner.missing_data(runner.notebook_meta(path).get("requires", []))
    assert why is None, f"{path.name} needs data that is absent: {why}"
    # as in JupyterLab or on Colab: no log variable set for the kernel
    for name in ("TF_CPP_MIN_LOG_LEVEL", "TF_CPP_MAX_VLOG_LEVEL", "TF_CPP_VMODULE"):
        monkeypatch.delenv(name, raising=False)
    runner.execute(path, EXECUTED / path.name, preset=os.environ["GENCOMP_PRESET"], seed=0)
    assert not log_lines(_load(EXECUTED / path.name)), "TensorFlow's log reached the notebook"


@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_reproduces_under_nbval(path):
    executed = EXECUTED / path.name
    if not executed.exists():
        pytest.fail(f"{path.name} did not run under papermill, so nbval has nothing to check")
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-q",
         "-p", "no:cacheprovider", str(executed)],
        capture_output=True, text=True, cwd=executed.parent, timeout=900)
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-2000:]
