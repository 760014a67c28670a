"""Command line: ``python -m gencomp_utils run --preset smoke`` and friends."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .presets import PRESETS, default_preset_name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gencomp_utils",
                                     description="The gencomp course's command line.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute every notebook headless with papermill")
    run.add_argument("--preset", choices=list(PRESETS), default=default_preset_name(),
                     help="sizes: smoke (seconds), classroom (default), paper")
    run.add_argument("--notebooks", nargs="*", metavar="PREFIX",
                     help="only these notebooks, by number prefix (e.g. 00 03)")
    run.add_argument("--seeds", type=int, default=1,
                     help="run the experiment notebooks with seeds 0..N-1 (default 1)")
    run.add_argument("--output", help="folder for the timestamped run folder (default: "
                                      "GENCOMP_OUTPUT_DIR or runs/)")
    run.add_argument("--notebook-dir", help="where the notebooks are (default: notebooks/)")
    run.add_argument("--timeout", type=float, default=None, help="seconds one cell may take")
    sub.add_parser("data", help="show where each data set was found, or what to put where")
    relink = sub.add_parser("relink", help="point every Colab link and install line at another "
                                           "GitHub repository (a fork, the course's new home)")
    relink.add_argument("url", help="https://github.com/<owner>/<name>")
    student = sub.add_parser("student-version", help="write the notebooks with each solution "
                                                     "replaced by a stub, for students")
    student.add_argument("out_dir", help="folder for the student versions")
    ship = sub.add_parser("ship", help="copy a run's small outputs (measurements, sample "
                                       "grids, wall times) into the course's shipped results")
    ship.add_argument("run_dir", help="a run folder of `run`")
    ship.add_argument("--to", help="where (default: results/classroom-5seeds)")
    args = parser.parse_args(argv)

    if args.command == "ship":
        from .report import SHIPPED, ship as ship_run

        if not (Path(args.run_dir) / "summary.json").is_file():
            print(f"error: {args.run_dir} is not a run folder of `run` (no summary.json)",
                  file=sys.stderr)
            return 2
        try:
            dest = ship_run(args.run_dir, Path(args.to) if args.to else SHIPPED)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"shipped into {dest}: {len(list(dest.glob('seed*/*/*.json')))} measurement "
              f"files; report: {dest / 'report.md'}")
        return 0

    if args.command == "student-version":
        from .runner import student_versions

        try:
            written = student_versions(Path(args.out_dir))
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"{len(written)} student versions in {args.out_dir}: each solution replaced by "
              f"'raise NotImplementedError()' (code) or 'YOUR ANSWER HERE' (text)")
        return 0


    if args.command == "relink":
        from .runner import relink as relink_all

        try:
            changed = relink_all(args.url)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"{len(changed)} files now point at {args.url}: "
              + ", ".join(f.name for f in changed))
        return 0

    if args.command == "data":
        from .data import describe_data

        for row in describe_data():
            where = row.get("found_at") or row["missing"]
            print(f"{row['dataset']:8} {row['split']:10} {row['images']:6}  {where}")
        return 0

    from .runner import NOTEBOOK_DIR, run as run_all

    try:
        _, results = run_all(preset=args.preset, select=args.notebooks, seeds=args.seeds,
                             out_root=args.output, timeout=args.timeout,
                             folder=Path(args.notebook_dir) if args.notebook_dir else NOTEBOOK_DIR)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 1 if any(r.status == "failed" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
