"""Where a main-job run spent its time: per notebook, per section, from papermill's own records.

``python -m benchmarks.profile runs/<run folder> [--json PATH]`` reads every executed notebook of
a run of ``python -m gencomp_utils run`` and prints, for each, the kernel's start-up (from the
notebook's start to its first cell), then the seconds of each section (its ``## `` heading; cells
before the first heading count as "start"), largest first, and under each section its cells of
a second or more (by their first line: training, the judge, the likelihood bound, figures).
Papermill stamps each cell with its duration, so a run profiles itself: nothing is re-run.
"""
from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path

from gencomp_utils import paths
from gencomp_utils.runner import sections


def _time(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


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
        lines = [ln for ln in "".join(cell["source"]).splitlines() if ln and not ln.startswith("#")]
        cells.append([heading, (lines or [""])[0][:70], float(pm["duration"])])
    meta = nb["metadata"]["papermill"]
    start_up = (_time(first) - _time(meta["start_time"])).total_seconds() if first else None
    return {"notebook": Path(executed).stem, "seconds": meta.get("duration"),
            "start_up": start_up, "sections": dict(sorted(spent.items(), key=lambda kv: -kv[1])),
            "cells": cells}


def profile_run(run_dir: Path) -> list[dict]:
    """:func:`profile` of every executed notebook of a run, in the order they ran."""
    summary = json.loads((Path(run_dir) / "summary.json").read_text())
    return [dict(profile(Path(r["executed"])), seed=r["seed"], status=r["status"])
            for r in summary["results"] if r.get("executed") and Path(r["executed"]).is_file()]


def table(rows: list[dict]) -> str:
    lines = ["| notebook | seed | part | seconds |", "|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['notebook']} | {r['seed']} | **whole notebook** | "
                     f"{r['seconds'] or 0:.0f} |")
        lines.append(f"| | | kernel start-up | {r['start_up'] or 0:.1f} |")
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
