"""Every course notebook: its shape, a papermill run under the smoke preset with no TensorFlow
log line in its outputs, and an nbval re-run whose `# NBVAL_CHECK_OUTPUT` cells must reproduce the
papermill run's output exactly."""
from __future__ import annotations

import json
import os
import re
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
    setup = "".join(code[0]["source"])
    assert "except ImportError" in setup and "--no-deps" in setup, "install gencomp_utils only if missing"
    params = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1, "exactly one cell tagged 'parameters'"
    assert 'preset = os.environ.get("GENCOMP_PRESET", "classroom")' in "".join(params[0]["source"])
    assert isinstance(nb["metadata"].get("gencomp", {}).get("requires"), list)
    too_long = [i for i, c in enumerate(code) if len("".join(c["source"]).splitlines()) > 20]
    assert not too_long, f"code cells {too_long} are long: move the plumbing into gencomp_utils"


RUN_TIMES = json.loads((runner.NOTEBOOK_DIR / "run_times.json").read_text())["notebooks"]
OPENING = ["title", "Goal", "Open in Colab", "Run time", "Prerequisites", "Next"]


def outline(markdown: str) -> list[str]:
    """The marks of a markdown cell's paragraphs, in order: ``"title"`` for ``# NN · ...``, a
    heading as written (``"## Summary"``), the label of ``**Label:** ...`` (``"Goal"``),
    ``"Open in Colab"`` for the Colab link, ``"text"`` for anything else."""
    marks = []
    for par in (p.strip() for p in markdown.split("\n\n") if p.strip()):
        if re.match(r"# \d\d · ", par):
            marks.append("title")
        elif par.startswith("#"):
            marks.append(par.splitlines()[0])
        elif m := re.match(r"\*\*([^*]+):\*\*", par):
            marks.append(m.group(1))
        else:
            marks.append("Open in Colab" if par.startswith("[Open in Colab](") else "text")
    return marks


def run_time_line(number: str) -> str:
    """The header's run time paragraph, from ``notebooks/run_times.json``."""
    t = RUN_TIMES[number]
    line = (f"**Run time:** CPU, 2 cores: {t['smoke']} (smoke preset), {t['classroom']} "
            f"(classroom preset). Colab GPU, classroom preset: {t['gpu']}.")
    return line + (f" {t['note']}" if t.get("note") else "")


def test_outline_tells_the_template_from_a_shuffled_header():
    header = ("# 07 · Title\n\n**Goal:** g\n\n[Open in Colab](x)\n\n**Run time:** r\n\n"
              "**Prerequisites:** p\n\n**Next:** n")
    assert outline(header) == OPENING
    shuffled = header.replace("**Prerequisites:** p\n\n**Next:** n",
                              "**Next:** n\n\n**Prerequisites:** p")
    assert outline(shuffled) == OPENING[:4] + ["Next", "Prerequisites"]
    assert outline(header.replace("**Goal:** g", "Goal: g"))[1] == "text"
    assert outline("## Summary\n\n* a\n* b\n\n**Next:** x") == ["## Summary", "text", "Next"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_follows_the_template(path):
    """Every notebook opens with title, goal, Colab link, run times, prerequisites and next, and
    ends with a summary and next; the run times are those of ``notebooks/run_times.json``."""
    cells = _load(path)["cells"]
    intro, ending = ("".join(cells[i]["source"]) for i in (0, -1))
    assert outline(intro) == OPENING
    assert run_time_line(path.name[:2]) in intro.split("\n\n")
    marks = outline(ending)
    assert marks[0] == "## Summary" and marks[-1] == "Next" and set(marks[1:-1]) == {"text"}
    headings = [m for c in cells if c["cell_type"] == "markdown"
                for m in outline("".join(c["source"])) if m.startswith("## ")]
    assert headings[-1] == "## Summary" and headings.count("## Summary") == 1
    following = NOTEBOOKS.index(path) + 1
    for text in (intro, ending):
        nxt = text.split("**Next:** ")[-1]
        if following < len(NOTEBOOKS):
            assert f"]({NOTEBOOKS[following].name})" in nxt.split("\n\n")[0]
        else:
            assert nxt.startswith("this is the last notebook")


def test_the_readme_gives_the_notebooks_run_times():
    """The README's table of notebooks shows the same run times as the notebooks' headers."""
    readme = (paths.REPO_ROOT / "README.md").read_text()
    rows = {cells[0]: cells for line in readme.splitlines()
            if (cells := [c.strip() for c in line.strip("|").split("|")])[0] in RUN_TIMES}
    assert sorted(rows) == sorted(RUN_TIMES) == sorted(p.name[:2] for p in NOTEBOOKS)
    for number, t in RUN_TIMES.items():
        assert rows[number][-2:] == [f"{t['smoke']} / {t['classroom']}", t["gpu"]], number


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
