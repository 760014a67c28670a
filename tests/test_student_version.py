"""Student versions: each solution replaced by its stub; executed, every check cell ends in the
stub's own NotImplementedError (not another error, and not a pass)."""
from __future__ import annotations

import json
import os

import pytest

from gencomp_utils import paths, runner
from gencomp_utils.__main__ import main

CODE = '''def f(x):
    y = x + 1
    ### BEGIN SOLUTION
    return y * 2
    ### END SOLUTION

### BEGIN SOLUTION
print("answer")
### END SOLUTION
'''


def test_a_solution_becomes_its_stub_at_the_markers_indentation():
    assert runner.clear_solutions(CODE) == ('def f(x):\n    y = x + 1\n    raise '
                                            'NotImplementedError()\n\nraise NotImplementedError()\n')
    text = "**2.** Why?\n\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION"
    assert runner.clear_solutions(text, markdown=True) == "**2.** Why?\n\nYOUR ANSWER HERE"
    assert runner.clear_solutions("x = 1\n") == "x = 1\n"


def test_a_marker_without_its_partner_is_an_error():
    with pytest.raises(ValueError, match="without its"):
        runner.clear_solutions("### BEGIN SOLUTION\nx = 1\n")
    with pytest.raises(ValueError, match="without its"):
        runner.clear_solutions("x = 1\n    ### END SOLUTION\n")


def check_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if "check" in c.get("metadata", {}).get("tags", [])]


def test_the_command_writes_every_notebook_without_solutions_or_outputs(tmp_path, capsys):
    assert main(["student-version", str(tmp_path)]) == 0
    assert "student versions in" in capsys.readouterr().out
    teacher = runner.list_notebooks()
    assert sorted(p.name for p in tmp_path.iterdir()) == [p.name for p in teacher]
    for path in teacher:
        text = (tmp_path / path.name).read_text()
        assert "### BEGIN SOLUTION" not in text and "### END SOLUTION" not in text
        student = json.loads(text)
        assert all(not c.get("outputs") for c in student["cells"])
        solutions = path.read_text().count("### BEGIN SOLUTION")
        assert text.count("NotImplementedError()") + text.count("YOUR ANSWER HERE") >= solutions
        assert len(check_cells(student)) == len(check_cells(json.loads(path.read_text())))
    assert check_cells(json.loads((tmp_path / "03_build_the_models.ipynb").read_text()))
    assert "colab.research.google.com" not in text and runner.STUDENT_NOTE in text
    assert "Solutions (teacher version)" not in text


def test_the_teacher_versions_are_never_overwritten(capsys):
    before = {p: p.read_bytes() for p in runner.list_notebooks()}
    assert main(["student-version", str(runner.NOTEBOOK_DIR)]) == 2
    assert "holds the teacher versions" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in runner.list_notebooks()} == before


@pytest.mark.notebooks
def test_every_check_cell_of_every_student_version_ends_in_its_stub(tmp_path):
    """Executed under the test preset with errors allowed (after the main job, whose trained
    models the experiment notebooks load from the cache), every cell tagged ``check`` raises
    the stub's own ``NotImplementedError()``: its name, with an empty message."""
    import nbformat
    from nbclient import NotebookClient

    runner.student_versions(tmp_path / "student")
    os.environ.setdefault("GENCOMP_PRESET", "smoke")
    failures = []
    for path in sorted((tmp_path / "student").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        if not check_cells(nb):
            continue
        NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": str(paths.REPO_ROOT / "notebooks")}}
                       ).execute()
        for cell in check_cells(nb):
            errors = [o for o in cell.get("outputs", []) if o["output_type"] == "error"]
            got = [(o["ename"], o["evalue"]) for o in errors]
            if got != [("NotImplementedError", "")]:
                failures.append(f"{path.name}: {cell['source'][:60]!r} ended in {got or 'a pass'}")
    assert not failures, "\n".join(failures)
