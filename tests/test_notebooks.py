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
    setup = "".join(code[0]["source"])
    assert "except ImportError" in setup and "--no-deps" in setup, "install gencomp_utils only if missing"
    params = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1, "exactly one cell tagged 'parameters'"
    assert 'preset = os.environ.get("GENCOMP_PRESET", "classroom")' in "".join(params[0]["source"])
    assert isinstance(nb["metadata"].get("gencomp", {}).get("requires"), list)
    too_long = [i for i, c in enumerate(code) if len("".join(c["source"]).splitlines()) > 20]
    assert not too_long, f"code cells {too_long} are long: move the plumbing into gencomp_utils"


def links(root: Path) -> set[str]:
    """Every repository address the notebooks and the README link to, install or clone from."""
    found = set()
    for f in [root / "README.md", *sorted(root.glob("notebooks/*.ipynb"))]:
        text = f.read_text()
        found |= set(re.findall(r"colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/", text))
        found |= set(re.findall(r"https://github\.com/([\w-]+/[\w.-]*[\w-])", text))
    return found


def check_links(root: Path) -> None:
    """Each notebook links to itself on Colab and installs from the one address; the README
    clones it; no other address appears."""
    address = runner.repository(root)
    path = runner.GITHUB.match(address).group(1)
    assert links(root) == {path}
    assert f"git clone {address} " in (root / "README.md").read_text()
    for nb in sorted(root.glob("notebooks/[0-9][0-9]_*.ipynb")):
        cells = _load(nb)["cells"]
        assert (f"(https://colab.research.google.com/github/{path}/blob/main/notebooks/{nb.name})"
                in "".join(cells[0]["source"])), nb.name
        setup = next(c for c in cells if c["cell_type"] == "code")
        assert f'"gencomp_utils @ git+{address}"' in "".join(setup["source"]), nb.name


def test_every_link_is_made_from_the_one_repository_address():
    check_links(paths.REPO_ROOT)


def test_relink_points_every_link_at_a_new_home(tmp_path, capsys):
    import shutil

    from gencomp_utils.__main__ import main

    root = tmp_path / "course"
    shutil.copytree(paths.REPO_ROOT / "notebooks", root / "notebooks")
    for name in ("README.md", "pyproject.toml"):
        shutil.copy(paths.REPO_ROOT / name, root / name)
    changed = runner.relink("https://github.com/a-teacher/vae-gan-course", root)
    assert len(changed) == 2 + len(NOTEBOOKS)
    assert runner.repository(root) == "https://github.com/a-teacher/vae-gan-course"
    check_links(root)
    shutil.copy(paths.REPO_ROOT / "README.md", root / "README.md")  # one file left behind
    with pytest.raises(AssertionError):
        check_links(root)
    other = tmp_path / "other"  # an address that only starts like the course's stays
    other.mkdir()
    shutil.copy(paths.REPO_ROOT / "pyproject.toml", other / "pyproject.toml")
    (other / "README.md").write_text("https://github.com/gencomp/gencomp-data, "
                                     "https://github.com/gencomp/gencomp.")
    runner.relink("https://github.com/a/b", other)
    assert (other / "README.md").read_text() == ("https://github.com/gencomp/gencomp-data, "
                                                 "https://github.com/a/b.")
    assert main(["relink", "https://gitlab.com/a/b"]) == 2
    assert "not a GitHub repository" in capsys.readouterr().err


RUN_TIMES = json.loads((paths.REPO_ROOT / "gencomp_utils" / "run_times.json").read_text())["notebooks"]
OPENING = ["title", "Goal", "After this notebook you can", "Open in Colab", "Run time",
           "Prerequisites", "Next"]


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
    """The header's run time paragraph, from ``gencomp_utils/run_times.json``."""
    t = RUN_TIMES[number]
    line = (f"**Run time:** CPU, 2 cores: {t['smoke']} (smoke preset), {t['classroom']} "
            f"(classroom preset). Colab GPU, classroom preset: {t['gpu']}.")
    return line + (f" {t['note']}" if t.get("note") else "")


def test_outline_tells_the_template_from_a_shuffled_header():
    header = ("# 07 · Title\n\n**Goal:** g\n\n**After this notebook you can:**\n- a;\n- b.\n\n"
              "[Open in Colab](x)\n\n**Run time:** r\n\n**Prerequisites:** p\n\n**Next:** n")
    assert outline(header) == OPENING
    shuffled = header.replace("**Prerequisites:** p\n\n**Next:** n",
                              "**Next:** n\n\n**Prerequisites:** p")
    assert outline(shuffled) == OPENING[:5] + ["Next", "Prerequisites"]
    assert outline(header.replace("**Goal:** g", "Goal: g"))[1] == "text"
    assert outline("## Summary\n\n* a\n* b\n\n**Next:** x") == ["## Summary", "text", "Next"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_follows_the_template(path):
    """Every notebook opens with title, goal, Colab link, run times, prerequisites and next, and
    ends with a summary and next; the run times are those of ``gencomp_utils/run_times.json``."""
    cells = _load(path)["cells"]
    intro, ending = ("".join(cells[i]["source"]) for i in (0, -1))
    assert outline(intro) == OPENING
    outcomes = next(p for p in intro.split("\n\n") if p.startswith("**After this notebook"))
    assert 3 <= len([ln for ln in outcomes.splitlines() if ln.startswith("- ")]) <= 5
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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_exercises_come_before_the_summary_with_a_checked_one(path):
    """3 to 5 exercises (``**1.**``, ``**2 (checked).**``, ...) in a section ``## Exercises``
    just before ``## Summary``, their solutions between nbgrader's markers, and at least one
    checked by a code cell tagged ``check``."""
    cells = _load(path)["cells"]
    heads = [(i, m) for i, c in enumerate(cells) if c["cell_type"] == "markdown"
             for m in outline("".join(c["source"])) if m.startswith("## ")]
    assert [m for _, m in heads[-2:]] == ["## Exercises", "## Summary"]
    section = cells[heads[-2][0]:heads[-1][0]]
    text = "\n".join("".join(c["source"]) for c in section if c["cell_type"] == "markdown")
    assert 3 <= len(set(re.findall(r"^\*\*(\d)[ .]", text, re.M))) <= 5, "3-5 exercises"
    assert any("### BEGIN SOLUTION" in "".join(c["source"]) for c in section), "solutions"
    assert any("check" in c.get("metadata", {}).get("tags", []) for c in section
               if c["cell_type"] == "code"), "an exercise checked by code"


def test_every_seed_of_an_experiment_meets_the_same_judge():
    """The judge's calls in the experiment notebooks leave its seed at classifiers.JUDGE_SEED."""
    calls = [c for p in NOTEBOOKS if runner.notebook_meta(p).get("per_seed")
             for c in (''.join(cell["source"]) for cell in _load(p)["cells"])
             if re.search(r"classifiers\.(digit_classifier|get_classifier)\(", c)]
    assert len(calls) == 4 and not [c for c in calls if re.search(r"\bseed\s*=", c)]


def test_the_readme_gives_the_notebooks_run_times():
    """The README's table of notebooks shows the same run times as the notebooks' headers."""
    readme = (paths.REPO_ROOT / "README.md").read_text()
    rows = {cells[0]: cells for line in readme.splitlines()
            if (cells := [c.strip() for c in line.strip("|").split("|")])[0] in RUN_TIMES}
    assert sorted(rows) == sorted(RUN_TIMES) == sorted(p.name[:2] for p in NOTEBOOKS)
    for number, t in RUN_TIMES.items():
        assert rows[number][-2:] == [f"{t['smoke']} / {t['classroom']}", t["gpu"]], number


WIDGET = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTEBOOKS = {"01", "02", "04", "07"}


@pytest.fixture(scope="module")
def main_job():
    """The README's main job under the test preset, run once: every notebook executed with
    papermill into one run folder, ending with ``index.html``. As in JupyterLab or on Colab, the
    kernels start with no TensorFlow log variable set."""
    with pytest.MonkeyPatch.context() as mp:
        for name in ("TF_CPP_MIN_LOG_LEVEL", "TF_CPP_MAX_VLOG_LEVEL", "TF_CPP_VMODULE"):
            mp.delenv(name, raising=False)
        run_dir, results = runner.run(os.environ["GENCOMP_PRESET"],
                                      out_root=paths.output_dir("main-job"))
    return run_dir, {r.notebook: r for r in results}


@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_runs_under_papermill(path, main_job):
    """It runs in the main job, shows no TensorFlow log line, and every widget output carries a
    picture of its starting state for front ends without a widget manager."""
    result = main_job[1][path.stem]
    if result.status != "ok":
        pytest.fail(f"{path.name}: {result.status}: {result.message}")
    nb = _load(Path(result.executed))
    assert not log_lines(nb), "TensorFlow's log reached the notebook"
    if runner.notebook_meta(path).get("per_seed"):  # measured by the cached, shared judge
        folder = Path(result.executed).parent / path.stem  # 05 records failures.json
        judge = json.loads(next(p for p in (folder / "metrics.json", folder / "failures.json")
                                if p.is_file()).read_text())["judge"]
        record = paths.cache_dir("classifiers") / judge["file"].replace(".keras", ".json")
        from gencomp_utils.classifiers import JUDGE_SEED

        assert json.loads(record.read_text())["settings"]["seed"] == JUDGE_SEED, judge
    if path.name.startswith("00"):  # the kernel ran this environment's versions
        import keras
        import tensorflow as tf

        text = json.dumps(nb)
        assert f"tensorflow  {tf.__version__}" in text and f"keras       {keras.__version__}" in text
    shown = [o["data"] for c in nb["cells"] if "display(" in "".join(c["source"])
             and "explore" in "".join(c["source"])  # explore.*, widgets.*_explorer
             for o in c.get("outputs", []) if WIDGET in o.get("data", {})]
    assert all("image/png" in d for d in shown), "a slider widget output without its picture"
    assert bool(shown) == (path.name[:2] in WIDGET_NOTEBOOKS), "slider widgets missing"


@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_reproduces_under_nbval(path, main_job):
    run_dir, results = main_job
    if results[path.stem].status != "ok":
        pytest.fail(f"{path.name} did not run in the main job, so nbval has nothing to check")
    executed = Path(results[path.stem].executed)
    env = dict(os.environ, GENCOMP_OUTPUT_DIR=str(executed.parent), GENCOMP_RUN_DIR=str(run_dir))
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-q",
         "-p", "no:cacheprovider", str(executed)],
        capture_output=True, text=True, cwd=executed.parent, timeout=900, env=env)
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-2000:]


def _browser():
    """Playwright's sync API and the system's Chromium (Playwright's own download cannot work
    offline); the test is skipped without them, except under CI, which installs both."""
    import shutil

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright import sync_api
    except ImportError:
        sync_api = None
    if sync_api is None or chromium is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("CI needs Playwright and Chromium (.ci/run installs them)")
        pytest.skip("needs Playwright (pip install playwright) and Chromium")
    return sync_api, chromium


@pytest.mark.notebooks
def test_the_main_jobs_index_opens_in_a_browser(main_job):
    """In Chromium: index.html shows sample grids of every experiment notebook's data set, every
    image on it loads, and every link to an executed notebook opens that notebook."""
    from urllib.parse import unquote, urlparse

    run_dir, results = main_job
    sync_api, chromium = _browser()
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium)
        page = browser.new_page()
        page.goto((run_dir / "index.html").as_uri(), wait_until="load")
        images = page.eval_on_selector_all(
            "img", "els => els.map(e => [e.alt, e.getAttribute('src'), e.naturalWidth])")
        links = page.eval_on_selector_all("a[href$='.html']", "els => els.map(e => e.href)")
        opened = []
        for href in links:  # a rendered notebook asks a CDN for MathJax: do not wait for it
            page.goto(href, wait_until="domcontentloaded")
            opened.append((Path(unquote(urlparse(href).path)).stem, page.title(),
                           page.locator(".jp-Cell").count()))
        browser.close()
    assert [src for _, src, width in images if not width > 0] == [], "images that do not load"
    for name in (p.stem for p in NOTEBOOKS if runner.notebook_meta(p).get("per_seed")):
        dataset = runner.notebook_meta(runner.NOTEBOOK_DIR / f"{name}.ipynb")["requires"][0]
        assert any(alt.startswith(f"{dataset}, seed ") for alt, _, _ in images), name
    assert sorted(stem for stem, _, _ in opened) == sorted(
        r.notebook for r in results.values() if r.executed)
    assert all(title == stem and cells > 3 for stem, title, cells in opened), opened
