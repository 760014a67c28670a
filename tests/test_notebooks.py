"""Every course notebook: its shape, a papermill run under the smoke preset, and an nbval re-run
whose `# NBVAL_CHECK_OUTPUT` cells must reproduce the papermill run's output exactly."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gencomp_utils import paths, runner

NOTEBOOKS = runner.list_notebooks()
IDS = [p.stem for p in NOTEBOOKS]
EXECUTED = paths.output_dir("executed-notebooks")


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_shape(path):
    nb = _load(path)
    cells = nb["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert all(not c["outputs"] and c["execution_count"] is None for c in code), \
        "commit notebooks without outputs"
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
def test_notebook_runs_under_papermill(path):
    why = runner.missing_data(runner.notebook_meta(path).get("requires", []))
    assert why is None, f"{path.name} needs data that is absent: {why}"
    runner.execute(path, EXECUTED / path.name, preset=os.environ["GENCOMP_PRESET"], seed=0)


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
