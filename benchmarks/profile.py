"""Where a main-job run spent its time: per notebook, per section, from papermill's own records.

``python -m benchmarks.profile runs/<run folder> [--json PATH]`` reads every executed notebook of
a run of ``python -m gencomp_utils run`` and prints, for each, the kernel's start-up (from the
notebook's start to its first cell), then the seconds of each section (its ``## `` heading; cells
before the first heading count as "start"), largest first, and under each section its cells of
a second or more (by their first line and the names they set: a model's training, the judge, the
likelihood bound, figures); and, from each training's ``history.json``, its seconds of training
and of evaluations during training.
Papermill stamps each cell with its duration, so a run profiles itself: nothing is re-run.
"""
from __future__ import annotations

import argparse
import ast
import json
from datetime import datetime
from pathlib import Path

from gencomp_utils import paths
from gencomp_utils.runner import sections


def _time(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _label(source: str) -> str:
    """A cell by its first line of code and the names it sets (``vae_run``: the VAE's training)."""
    code = "\n".join(ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!")))
    lines = [ln for ln in code.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    try:
        names = [n.id for node in ast.parse(code).body if isinstance(node, ast.Assign)
                 for t in node.targets for n in ast.walk(t) if isinstance(n, ast.Name)]
    except SyntaxError:
        names = []
    first = (lines or [""])[0]
    first = first if len(first) <= 60 else first[:57] + "..."
    return first + (f" (sets {', '.join(dict.fromkeys(names))})" if names else "")


def profile(executed: Path) -> dict:
    """``{"notebook", "seconds", "start_up", "sections": {heading: seconds}, "cells": [[heading,
    first line, seconds], ...]}`` of one executed notebook (``seconds``: papermill's duration of
    the whole notebook)."""
    nb = json.loads(Path(executed).read_text())
    where = sections(executed)
    spent: dict = {}
    cells, first = [], None
    for cell in nb["cells"]:
        pm = cell.get("metadata", {}).get("papermill", {})
        if cell["cell_type"] != "code" or pm.get("duration") is None:
            continue
        first = first or pm["start_time"]
        heading = where.get(cell.get("id"), "parameters (injected)")
        spent[heading] = spent.get(heading, 0.0) + float(pm["duration"])
        cells.append([heading, _label("".join(cell["source"])), float(pm["duration"])])
    meta = nb["metadata"].get("papermill", {})
    start_up = ((_time(first) - _time(meta["start_time"])).total_seconds()
                if first and meta.get("start_time") else None)
    runs = {}  # the engine's own records of each training in the notebook's output folder
    for h in sorted((Path(executed).parent / Path(executed).stem).glob("*/history.json")):
        rec = json.loads(h.read_text())
        evals = sum(e.get("eval_seconds", 0.0) for e in rec["epochs"])
        runs[h.parent.name] = {"steps": rec["step"], "train": rec["train_seconds"],
                               "evaluations": evals, "wall": rec["wall_seconds"],
                               # loaded from the cache: its seconds are those of an earlier run
                               "loaded": meta.get("duration") is not None
                               and rec["wall_seconds"] > meta["duration"]}
    return {"notebook": Path(executed).stem, "seconds": meta.get("duration"),
            "start_up": start_up, "sections": dict(sorted(spent.items(), key=lambda kv: -kv[1])),
            "cells": cells, "trainings": runs}


def profile_run(run_dir: Path) -> list[dict]:
    """:func:`profile` of every executed notebook of a run, in the order they ran (a run still
    going, or stopped, has no summary yet: then its notebooks so far, by name)."""
    summary = Path(run_dir) / "summary.json"
    if not summary.is_file():
        return [dict(profile(nb), seed=int(nb.parent.name[4:]), status="unfinished run")
                for nb in sorted(Path(run_dir).glob("seed*/*.ipynb"))]
    return [dict(profile(Path(r["executed"])), seed=r["seed"], status=r["status"])
            for r in json.loads(summary.read_text())["results"]
            if r.get("executed") and Path(r["executed"]).is_file()]


def table(rows: list[dict]) -> str:
    lines = ["| notebook | seed | part | seconds |", "|---|---|---|---|"]
    for r in rows:
        status = "" if r.get("status") == "ok" else f" ({r.get('status')})"
        lines.append(f"| {r['notebook']} | {r['seed']} | **whole notebook**{status} | "
                     f"{r['seconds'] or 0:.0f} |")
        lines.append(f"| | | kernel start-up | {r['start_up'] or 0:.1f} |")
        lines += [f"| | | training `{k}` ({t['steps']} steps): {t['train']:.1f} s training, "
                  f"{t['evaluations']:.1f} s evaluations, {t['wall'] - t['train'] - t['evaluations']:.1f} "
                  f"s checkpoints and set-up{' (loaded: its first run)' if t['loaded'] else ''} | "
                  f"{t['wall']:.1f} |" for k, t in r.get("trainings", {}).items()]
        for name, s in r["sections"].items():
            lines.append(f"| | | {name} | {s:.1f} |")
            lines += [f"| | | &nbsp;&nbsp;`{code}` | {t:.1f} |" for heading, code, t in r["cells"]
                      if heading == name and t >= 1.0]
    total = sum(r["seconds"] or 0 for r in rows)
    return "\n".join(lines + [f"| **all** | | | **{total:.0f}** |"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__)
    parser.add_argument("run_dir", help="a run folder of `python -m gencomp_utils run`")
    parser.add_argument("--json", help="also write the profile to this file")
    args = parser.parse_args(argv)
    rows = profile_run(Path(args.run_dir))
    print(table(rows))
    if args.json:
        paths.write_json(Path(args.json), {"run": Path(args.run_dir).name, "notebooks": rows},
                         indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
