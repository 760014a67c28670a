"""The main job: execute every course notebook headless with papermill.

``python -m gencomp_utils run --preset classroom`` executes the notebooks in order into a
timestamped folder under the output folder (``GENCOMP_OUTPUT_DIR``, default ``runs/``). While a
notebook runs, a progress bar shows its cells, the section it is in and the time so far; a line
per notebook stays. It ends with a summary of what ran, what was skipped (its data is absent: the
line says how to get it) and what failed (with the path of its executed copy), and writes
``index.html``: the report, with every executed notebook rendered to HTML and linked.
"""
from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from . import data, paths
from .presets import get_preset

NOTEBOOK_DIR = paths.REPO_ROOT / "notebooks"


@dataclass
class Result:
    """What happened to one notebook."""

    notebook: str
    status: str          # "ok", "failed" or "skipped"
    seconds: float
    executed: str | None  # path of the executed copy
    message: str = ""
    seed: int = 0


def list_notebooks(folder: Path = NOTEBOOK_DIR, select: list[str] | None = None) -> list[Path]:
    """The course notebooks in order, optionally only those whose names start with ``select``."""
    found = sorted(p for p in Path(folder).glob("[0-9][0-9]_*.ipynb"))
    if select:
        found = [p for p in found if any(p.name.startswith(s) for s in select)]
        if not found:
            raise ValueError(f"No notebook in {folder} starts with {', '.join(select)}.")
    return found


SOLUTION = re.compile(r"^([ \t]*)### BEGIN SOLUTION[ \t]*\n.*?^[ \t]*### END SOLUTION[ \t]*(\n|$)",
                      re.M | re.S)


def clear_solutions(source: str, markdown: bool = False) -> str:
    """A cell's source with each solution, from ``### BEGIN SOLUTION`` to ``### END SOLUTION``
    (nbgrader's markers), replaced by its stub: ``raise NotImplementedError()`` at the marker's
    indentation in code, ``YOUR ANSWER HERE`` in markdown.

    Raises:
        ValueError: a marker without its partner.
    """
    stub = "YOUR ANSWER HERE" if markdown else "raise NotImplementedError()"
    cleared = SOLUTION.sub(lambda m: f"{m.group(1)}{stub}{m.group(2)}", source)
    if re.search(r"^[ \t]*### (BEGIN|END) SOLUTION", cleared, re.M):
        raise ValueError("A '### BEGIN SOLUTION' without its '### END SOLUTION' (or the other "
                         "way round), each on a line of its own:\n" + source[:300])
    return cleared


STUDENT_NOTE = ("Student version: open this file in JupyterLab, or upload it to Colab (File > "
                "Upload notebook).")


def student_versions(out_dir: Path, folder: Path = NOTEBOOK_DIR) -> list[Path]:
    """Write the student version of every notebook into ``out_dir``: each solution replaced by
    its stub (:func:`clear_solutions`), every output cleared, and the Colab link, which opens the
    teacher version, replaced by a note. Returns the files written.

    Raises:
        ValueError: ``out_dir`` is the folder of the teacher versions.
    """
    out_dir = Path(out_dir)
    if out_dir.resolve() == Path(folder).resolve():
        raise ValueError(f"{out_dir} holds the teacher versions: write the student versions "
                         "into another folder.")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in list_notebooks(folder):
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            source = clear_solutions("".join(cell["source"]), cell["cell_type"] == "markdown")
            if cell["cell_type"] == "markdown":  # the Colab link opens the teacher version
                source = re.sub(r"\[Open in Colab\]\([^)]*\)", STUDENT_NOTE, source)
                source = source.replace("**Solutions (teacher version).**", "**Your answers.**")
            cell["source"] = source.splitlines(keepends=True)
            if cell["cell_type"] == "code":
                cell["outputs"], cell["execution_count"] = [], None
        (out_dir / path.name).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        written.append(out_dir / path.name)
    return written


def notebook_meta(path: Path) -> dict:
    """The notebook's ``gencomp`` metadata: ``requires`` (data sets), ``per_seed`` (bool)."""
    with open(path) as f:
        nb = json.load(f)
    return nb.get("metadata", {}).get("gencomp", {})


def missing_data(requires: list[str]) -> str | None:
    """Why a notebook that needs ``requires`` cannot run here, or None if its data is present.

    MNIST and CIFAR-10 count as present when a split is on disk or can be downloaded now.
    """
    for name in requires:
        if data.available(name, "train") or data.available(name, "test"):
            continue
        if name == "celeba":
            return f"CelebA is not on disk. {data.CELEBA_HOWTO}"
        try:
            data.find_source(name, "test")
        except data.DataError as e:
            return str(e)
    return None


GITHUB = re.compile(r"https://github\.com/([\w.-]+/[\w.-]+?)(?:\.git)?/?$")


def repository(root: Path = paths.REPO_ROOT) -> str:
    """The course's address, ``https://github.com/<owner>/<name>`` (``pyproject.toml``)."""
    return re.search(r'^Repository = "([^"]+)"', (root / "pyproject.toml").read_text(),
                     re.M).group(1)


def relink(url: str, root: Path = paths.REPO_ROOT) -> list[Path]:
    """Point every Colab link, install line and clone line at ``url`` (a GitHub repository, such
    as a fork); return the files changed."""
    new = GITHUB.match(url.strip())
    if not new:
        raise ValueError(f"{url!r} is not a GitHub repository address such as "
                         "https://github.com/<owner>/<name>: Colab opens notebooks from GitHub.")
    old = GITHUB.match(repository(root)).group(1)
    changed = []
    for f in [root / "pyproject.toml", root / "README.md", *sorted(root.glob("notebooks/*.ipynb"))]:
        text = before = f.read_text(encoding="utf-8")
        for host in ("https://github.com/", "colab.research.google.com/github/"):
            # the whole address only: not gencomp/gencomp-data, but gencomp/gencomp.git
            text = re.sub(re.escape(host + old) + r"(?![\w-])(?!\.(?!git\b)\w)",
                          host + new.group(1), text)
        if text != before:
            f.write_text(text, encoding="utf-8")
            changed.append(f)
    return changed


def sections(path: Path) -> dict:
    """``{cell id: the heading (``##`` or ``###``) of the section it is in}`` for a notebook's
    code cells that run (not empty ones)."""
    with open(path) as f:
        cells = json.load(f)["cells"]
    heading, out = "start", {}
    for cell in cells:
        text = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            text = re.sub(r"```.*?(```|$)", "", text, flags=re.S)  # not a "##" line of code
            heading = ([ln.lstrip("#").strip() for ln in text.splitlines()
                        if re.match(r"#{2,3} ", ln)] or [heading])[-1]
        elif cell["cell_type"] == "code" and text.strip() and "id" in cell:  # cells that run
            out[cell["id"]] = heading
    return out


def execute(path: Path, out_path: Path, preset: str, seed: int = 0,
            env: dict | None = None, timeout: float | None = None,
            progress: str | None = None) -> None:
    """Execute one notebook with papermill (``-p preset ... -p seed ...``) into ``out_path``.

    ``progress``: the label of a progress bar over the notebook's code cells that names the
    section being run (``None``: no bar).

    Raises:
        papermill.PapermillExecutionError: a cell failed; ``out_path`` shows where.
    """
    import papermill as pm
    from tqdm.auto import tqdm

    where = sections(path)
    bar = tqdm(total=len(where), desc=progress, unit="cell", leave=False,
               disable=progress is None, miniters=1)
    ticking = threading.Event()

    def tick():  # the elapsed time moves on during a long cell too
        while not ticking.wait(5):
            bar.refresh()

    if progress is not None:
        threading.Thread(target=tick, daemon=True).start()

    def started(cell, cell_index):
        if cell.get("id") in where:
            bar.set_postfix_str(where[cell["id"]])

    def finished(cell, cell_index, execute_reply=None):
        if cell.get("id") in where:
            bar.update()

    try:
        with paths.environment(dict(env or {})):
            pm.execute_notebook(str(path), str(out_path),
                                parameters={"preset": preset, "seed": seed},
                                kernel_name="python3", progress_bar=False, cwd=str(path.parent),
                                execution_timeout=timeout, on_cell_start=started,
                                on_cell_executed=finished,
                                # the kernel's own start-up notices (ipykernel 7: "running over
                                # TCP without encryption") are not the notebook's output
                                extra_arguments=["--IPKernelApp.log_level=ERROR"],
                                # without a saved widget state, HTML exports show each widget's
                                # picture and text, not an empty box waiting for a widget CDN
                                store_widget_state=False)
    finally:
        ticking.set()
        bar.close()


def run(preset: str = "classroom", select: list[str] | None = None, seeds: int = 1,
        out_root: Path | None = None, folder: Path = NOTEBOOK_DIR,
        timeout: float | None = None, echo=print) -> tuple[Path, list[Result]]:
    """Execute the course notebooks; see the module docstring.

    Args:
        preset: ``smoke``, ``classroom`` or ``paper``.
        select: only notebooks whose names start with these (e.g. ``["00", "03"]``).
        seeds: notebooks marked ``per_seed`` run with seeds 0 .. seeds-1, the others once.
        out_root: where the timestamped run folder goes (default: the output folder).
        folder: where the notebooks are.
        timeout: seconds a single cell may take (None: no limit).
        echo: where progress lines go.

    Returns:
        ``(run folder, results)``.
    """
    get_preset(preset)  # fail fast on a bad name
    if seeds < 1:
        raise ValueError(f"seeds must be at least 1, got {seeds}.")
    notebooks = list_notebooks(folder, select)
    stamp = datetime.now().strftime("%Y-%m-%dT%H-%M-%S")
    run_dir = Path(out_root or paths.output_dir()) / f"{stamp}-{preset}"
    run_dir.mkdir(parents=True, exist_ok=False)
    jobs = []
    for nb in notebooks:
        meta = notebook_meta(nb)
        for seed in range(seeds if meta.get("per_seed") else 1):
            jobs.append((nb, meta, seed))
    echo(f"Running {len(jobs)} notebook run(s) with preset {preset!r} into {run_dir}")
    results = []
    for i, (nb, meta, seed) in enumerate(jobs, 1):
        label = f"[{i}/{len(jobs)}] {nb.stem}" + (f" (seed {seed})" if seeds > 1 and meta.get("per_seed") else "")
        why = missing_data(meta.get("requires", []))
        if why:
            results.append(Result(nb.stem, "skipped", 0.0, None, why, seed))
            echo(f"{label}: skipped, data absent")
            continue
        seed_dir = run_dir / f"seed{seed}"
        seed_dir.mkdir(exist_ok=True)
        out = seed_dir / nb.name
        t0 = time.perf_counter()
        try:
            execute(nb, out, preset, seed, env={"GENCOMP_OUTPUT_DIR": str(seed_dir),
                                               "GENCOMP_RUN_DIR": str(run_dir),
                                               "GENCOMP_PRESET": preset}, timeout=timeout,
                    progress=label)
            status, message = "ok", ""
        except Exception as e:  # a failing notebook must not stop the others
            status = "failed"
            message = f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}"
        secs = time.perf_counter() - t0
        results.append(Result(nb.stem, status, secs, str(out), message, seed))
        echo(f"{label}: {status} in {secs:.1f} s" + (f" -> {out}" if status == "failed" else ""))
        write_summary(run_dir, preset, results)  # after each notebook: a long run ships as it goes
    write_summary(run_dir, preset, results)
    echo(summary_text(results))
    from .report import write_index, write_report

    write_report(run_dir)
    echo(f"Report: {write_index(run_dir, [asdict(r) for r in results])}")
    return run_dir, results


def summary_text(results: list[Result]) -> str:
    """A plain-text summary: counts, then one line per skipped or failed notebook."""
    counts = {s: sum(r.status == s for r in results) for s in ("ok", "failed", "skipped")}
    lines = [f"Summary: {counts['ok']} ok, {counts['failed']} failed, {counts['skipped']} skipped."]
    for r in results:
        if r.status == "failed":
            lines.append(f"  FAILED  {r.notebook} (seed {r.seed}): {r.message}\n"
                         f"          executed copy: {r.executed}")
        elif r.status == "skipped":
            lines.append(f"  SKIPPED {r.notebook}: {r.message}")
    return "\n".join(lines)


def write_summary(run_dir: Path, preset: str, results: list[Result]) -> None:
    """Write ``summary.json`` (with the machine) and ``summary.md`` into the run folder."""
    import platform
    from importlib import metadata

    from .devices import cpu_description

    versions = {"python": platform.python_version()}
    for package in ("tensorflow", "keras", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:  # e.g. installed as tensorflow-cpu
            versions[package] = None
    paths.write_json(run_dir / "summary.json",
                     {"preset": preset, "machine": cpu_description(), "versions": versions,
                      "results": [asdict(r) for r in results]}, indent=2)
    rows = ["| notebook | seed | status | seconds | executed copy / note |", "|---|---|---|---|---|"]
    for r in results:
        where = Path(r.executed).relative_to(run_dir) if r.executed else ""
        note = r.message.replace("|", "/").replace("\n", " ")
        rows.append(f"| {r.notebook} | {r.seed} | {r.status} | {r.seconds:.1f} | {where} {note} |")
    (run_dir / "summary.md").write_text(f"# Run with preset `{preset}`\n\n" + "\n".join(rows) + "\n")
