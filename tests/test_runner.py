"""The main job: papermill over the notebooks, progress lines, skips and a summary."""
from __future__ import annotations

import json
from importlib import metadata

import nbformat
import pytest

from gencomp_utils import runner
from gencomp_utils.__main__ import main
from test_notebooks import is_log_line, log_lines


def _notebook(path, source, requires=(), per_seed=False):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('preset = "classroom"\nseed = 0')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(source)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["gencomp"] = {"requires": list(requires), "per_seed": per_seed}
    nbformat.write(nb, str(path))


@pytest.fixture
def course(tmp_path, data_dir):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _notebook(folder / "00_ok.ipynb",
              "import os, pathlib\n"
              "pathlib.Path(os.environ['GENCOMP_OUTPUT_DIR'], f'ran-{preset}-{seed}').touch()")
    _notebook(folder / "01_fails.ipynb", "raise RuntimeError('this cell is broken')")
    _notebook(folder / "02_faces.ipynb", "print('never runs')", requires=["celeba"])
    # the summary is written after each notebook, so that a long run can ship as it goes
    _notebook(folder / "03_experiment.ipynb",
              "import json, os, pathlib\n"
              "done = json.loads(pathlib.Path(os.environ['GENCOMP_RUN_DIR'], 'summary.json')"
              ".read_text())['results']\n"
              "assert seed in (0, 1) and [r['notebook'] for r in done][:2] == ['00_ok', "
              "'01_fails']", per_seed=True)
    return folder


def test_run_reports_ok_failed_and_skipped(course, tmp_path):
    lines = []
    run_dir, results = runner.run("smoke", seeds=2, out_root=tmp_path / "runs", folder=course,
                                  echo=lines.append)
    status = {(r.notebook, r.seed): r.status for r in results}
    assert status == {("00_ok", 0): "ok", ("01_fails", 0): "failed", ("02_faces", 0): "skipped",
                      ("03_experiment", 0): "ok", ("03_experiment", 1): "ok"}
    assert (run_dir / "seed0" / "ran-smoke-0").exists()  # parameters injected, outputs in the run
    failed = next(r for r in results if r.status == "failed")
    assert "this cell is broken" in failed.message
    assert (run_dir / "seed0" / "01_fails.ipynb").exists()
    skipped = next(r for r in results if r.status == "skipped")
    assert "Kaggle" in skipped.message  # says how to get CelebA
    text = "\n".join(lines)
    assert "[1/5] 00_ok: ok" in text and "FAILED  01_fails" in text and "SKIPPED 02_faces" in text
    summary = json.loads((run_dir / "summary.json").read_text())
    assert len(summary["results"]) == 5 and (run_dir / "summary.md").exists()
    assert "cores" in summary["machine"]
    index = (run_dir / "index.html").read_text()
    assert "3 ok, 1 failed, 1 skipped" in index and "Kaggle" in index
    for name in ("00_ok", "01_fails", "03_experiment"):  # every executed copy, rendered, linked
        assert f'href="seed0/{name}.html"' in index and (run_dir / "seed0" / f"{name}.html").is_file()
    assert "seed1/03_experiment.html" in index and "02_faces.html" not in index


def test_the_console_shows_the_notebook_and_the_section_it_is_in(tmp_path, data_dir, capfd):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _notebook(folder / "00_sections.ipynb", "import time")
    nb = nbformat.read(str(folder / "00_sections.ipynb"), as_version=4)
    for heading, wait in (("## 1 · Warm up", 1.5), ("## 2 · Cool down", 1.5)):
        nb.cells += [nbformat.v4.new_markdown_cell(heading + "\n\nText."),
                     nbformat.v4.new_code_cell(f"time.sleep({wait})")]
    nbformat.write(nb, str(folder / "00_sections.ipynb"))
    run_dir, _ = runner.run("smoke", out_root=tmp_path / "runs", folder=folder)
    err = capfd.readouterr().err
    for section in ("1 · Warm up", "2 · Cool down"):
        assert f"[1/1] 00_sections:" in err and section in err, err[-2000:]
    assert runner.sections(folder / "00_sections.ipynb") == dict(zip(
        [c.id for c in nb.cells if c.cell_type == "code"],
        ["start", "start", "1 · Warm up", "2 · Cool down"]))

    # The run profiles itself from papermill's stamps (benchmarks/profile.py).
    from benchmarks.profile import profile_run, table

    (row,) = profile_run(run_dir)
    assert 1.5 <= row["sections"]["1 · Warm up"] < 3 and 1.5 <= row["sections"]["2 · Cool down"] < 3
    assert set(list(row["sections"])[:2]) == {"1 · Warm up", "2 · Cool down"}  # largest first
    assert row["start_up"] > 0 and row["seconds"] >= 3
    assert "`time.sleep(1.5)`" in table([row])
    assert "**whole notebook** (failed)" in table([dict(row, status="failed")])
    (run_dir / "summary.json").unlink()  # a run still going, or stopped: its notebooks so far
    (unfinished,) = profile_run(run_dir)
    assert unfinished["sections"] == row["sections"] and unfinished["status"] == "unfinished run"


def test_sections_and_cell_labels_of_the_profile(tmp_path):
    from benchmarks.profile import _label

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1"),
                nbformat.v4.new_markdown_cell("# 00 · Title\n\n## 1 · Data\n\nText."),
                nbformat.v4.new_code_cell("y = 2"),
                nbformat.v4.new_markdown_cell("### 1.1 · Detail\n\n```\n## not a heading\n```"),
                nbformat.v4.new_code_cell("z = 3"), nbformat.v4.new_code_cell("  "),
                nbformat.v4.new_raw_cell("raw")]
    nbformat.write(nb, str(tmp_path / "n.ipynb"))
    assert list(runner.sections(tmp_path / "n.ipynb").values()) == [
        "start", "1 · Data", "1.1 · Detail"]  # the empty and the raw cell never run
    assert _label("%pip install x\n# a comment\nvae, (gan, d) = make()\nz = 1") == \
        "vae, (gan, d) = make() (sets vae, gan, d, z)"


def test_select_and_bad_arguments(course, tmp_path):
    _, results = runner.run("smoke", select=["00"], out_root=tmp_path / "r", folder=course,
                            echo=lambda s: None)
    assert [r.notebook for r in results] == ["00_ok"]
    with pytest.raises(ValueError, match="No notebook"):
        runner.list_notebooks(course, ["42"])
    with pytest.raises(ValueError, match="Unknown preset"):
        runner.run("huge", folder=course)


def test_command_line_exit_codes(course, tmp_path, capsys):
    args = ["run", "--preset", "smoke", "--notebook-dir", str(course), "--output", str(tmp_path / "o")]
    assert main(args + ["--notebooks", "00"]) == 0
    assert main(args + ["--notebooks", "01"]) == 1
    assert main(args + ["--notebooks", "42"]) == 2
    assert "No notebook" in capsys.readouterr().err
    runs = {json.loads((d / "summary.json").read_text())["results"][0]["status"]: d
            for d in (tmp_path / "o").iterdir()}
    assert main(["ship", str(runs["ok"]), "--to", str(tmp_path / "shipped")]) == 0
    about = json.loads((tmp_path / "shipped" / "about.json").read_text())
    assert about["seeds"] == 1 and about["versions"]["keras"] == metadata.version("keras")
    assert main(["ship", str(tmp_path / "o")]) == 2  # not a run folder
    assert "no summary.json" in capsys.readouterr().err
    assert main(["ship", str(runs["failed"]), "--to", str(tmp_path / "s2")]) == 2
    assert "nothing to ship" in capsys.readouterr().err


def test_data_command_lists_every_split(data_dir, capsys):
    assert main(["data"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 7 and "Kaggle" in out


def test_the_main_jobs_console_shows_no_tensorflow_log(tmp_path, data_dir, capfd, monkeypatch):
    """A notebook that imports TensorFlow and trains a convolution followed by a leaky ReLU (a
    graph whose optimisation logs an error with oneDNN on); the kernel starts with no log
    variable set. Neither the executed notebook nor the console may show a log line."""
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _notebook(folder / "00_tf.ipynb",
              "import gencomp_utils, keras, numpy as np\n"
              "m = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3),\n"
              "                      keras.layers.LeakyReLU(0.2), keras.layers.Flatten(),\n"
              "                      keras.layers.Dense(1)])\n"
              "m.compile('adam', 'mse')\n"
              "m.fit(np.ones((8, 8, 8, 1)), np.ones((8, 1)), verbose=0)\n"
              "print('trained')")
    run_dir, results = runner.run("smoke", out_root=tmp_path / "runs", folder=folder)
    assert [r.status for r in results] == ["ok"], results[0].message
    console = capfd.readouterr()
    executed = json.loads((run_dir / "seed0" / "00_tf.ipynb").read_text())
    assert "trained" in json.dumps(executed)
    assert not log_lines(executed)
    assert not [ln for ln in (console.out + console.err).splitlines() if is_log_line(ln)]

