"""Experiment measurements (``metrics.json``), their summary over seeds, and the claims table.

Each experiment notebook writes one ``metrics.json`` into its output folder; the comparison
notebook and the main job's report read those files and nothing else.

The ``metrics.json`` schema (version 1)::

    {
      "schema": 1,
      "dataset": "mnist" | "cifar10" | "celeba",
      "preset": "smoke" | "classroom" | "paper" (or e.g. "classroom-400steps": a changed budget),
      "seed": 0,
      "evidence": true,              # false for the smoke preset (any budget): too small to count
      "splits": {"train": "test[:8000]", "eval": "test[8000:]", "note": "..."},
      "num_eval_images": 2000,       # generated and real images compared
      "threshold": {"metric": "conditional_accuracy", "value": 0.8},   # fixed before the run
      "judge": {"file": "mnist-1a2b3c.keras", "sha1": "9f86d081884c", "accuracy": 0.99},
      "models": {
        "vae": {<model measurements>},
        "gan": {<model measurements>}
      },
      "arms": {                      # optional: VAEs trained beside the pair, for claims 2 and 4
        "vae_beta1": {"beta": 1.0, "likelihood": "gaussian", "gaussian_sigma": null,
                      "steps": 2000, <sample measurements: fd_domain ... collapsed>},
        "vae_beta1_fixed_sigma": {...}
      }
    }

Model measurements (``None`` where a measure does not apply or was skipped):

    fd_domain             FD (domain classifier): Fréchet distance of the project's classifier features
    fid, fid_note         FID with InceptionV3 ImageNet weights, or None and why it was skipped
    kid, kid_std          kernel distance on the domain classifier features: mean and spread
                          over 10 subsets of half the images
    precision, recall     k-NN manifold precision and recall (domain classifier features)
    density, coverage     Naeem et al. (2020), k = 5, on the same features (absent in files
                          written before they were measured)
    sharpness_ratio       Laplacian variance of samples over that of real images (1 = as sharp)
    conditional_accuracy  share of samples for class y that the domain classifier assigns to y
    log_likelihood_nats   VAE only: importance-weighted bound on log p(x|y), nats per image
                          (a Bernoulli VAE's: on the held-out digits binarised once)
    bits_per_dim          VAE only: the same in bits per dimension
    seconds_per_epoch     wall-clock per pass over the training split
    train_seconds, steps, images_seen
    steps_to_threshold, seconds_to_threshold, epochs_to_threshold   the first evaluation from
                          which the threshold held to the end (None: never held)
    oscillation           spread of fd_domain over the last evaluations
    log_oscillation       spread of log fd_domain around its trend (the closest curve that never
                          gets worse) over the second half of the evaluations: scale-free
                          (computed from ``curve`` where absent; None with too few evaluations)
    collapsed             a collapsed batch was seen during training
    collapse_events       evaluations of the second half of training with collapsed samples or a
                          class lost (drawn at an earlier evaluation, missing now; absent from
                          earlier files)
    curve                 {"step", "seconds", "fd_domain", "conditional_accuracy", "collapsed",
                          "vanished_classes" (a bit mask)}: lists, one entry per evaluation
                          (seconds: training time; the last two absent from earlier files)
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import paths
from .metrics import ALPHA, MIN_SEEDS, log_oscillation, seed_verdict

SCHEMA = 1
MODELS = ("vae", "gan")
MODEL_NAMES = {"vae": "conditional VAE", "gan": "AC-GAN"}
# VAEs trained beside the pair for the claims about blur (``arms`` in metrics.json)
ARM_NAMES = {"vae_beta1": "VAE (beta 1)", "vae_beta1_fixed_sigma": "VAE (beta 1, fixed sigma)"}
# (key, label, lower is better)
TABLE_ROWS = [
    ("fd_domain", "FD (domain classifier)", True),
    ("fid", "FID (InceptionV3)", True),
    ("kid", "KID (domain classifier)", True),
    ("precision", "precision", False),
    ("recall", "recall", False),
    ("density", "density", False),
    ("coverage", "coverage", False),
    ("sharpness_ratio", "sharpness (generated / real)", False),
    ("conditional_accuracy", "conditional accuracy", False),
    ("log_likelihood_nats", "log-likelihood bound (nats/image)", False),
    ("bits_per_dim", "bits per dimension", True),
    ("seconds_per_epoch", "seconds per epoch", True),
    ("seconds_to_threshold", "seconds to the quality threshold", True),
    ("epochs_to_threshold", "epochs to the quality threshold", True),
    ("oscillation", "oscillation of FD (last evaluations)", True),
    ("log_oscillation", "oscillation of log FD (second half)", True),
    ("collapse_events", "collapse events (second half)", True),
]
# absent from earlier files
LATER_KEYS = ("density", "coverage", "log_oscillation", "collapse_events")
REQUIRED_MODEL_KEYS = [k for k, _, _ in TABLE_ROWS if k not in LATER_KEYS] + [
    "train_seconds", "steps", "images_seen", "collapsed", "curve"]


def validate_metrics(m: dict) -> dict:
    """Check a metrics dict against the schema; raise a ValueError naming what is wrong."""
    for key in ("schema", "dataset", "preset", "seed", "evidence", "splits", "threshold", "models"):
        if key not in m:
            raise ValueError(f"metrics.json lacks {key!r}.")
    if m["schema"] != SCHEMA:
        raise ValueError(f"metrics.json schema {m['schema']!r}; this version reads {SCHEMA}.")
    for model in MODELS:
        if model not in m["models"]:
            raise ValueError(f"metrics.json lacks the {model!r} model.")
        missing = [k for k in REQUIRED_MODEL_KEYS if k not in m["models"][model]]
        if missing:
            raise ValueError(f"metrics.json: model {model!r} lacks {missing}.")
    return m


def write_metrics(path, metrics: dict) -> Path:
    """Validate and write ``metrics.json`` (non-finite numbers become null)."""
    return paths.write_json(path, validate_metrics(metrics), indent=2)


def metrics_root(metrics_dir=None) -> Path:
    """Where to read experiments from: ``metrics_dir`` if given, else the main job's current run
    folder (``GENCOMP_RUN_DIR``, all seeds), else the output folder (the notebooks run by hand)."""
    import os

    if metrics_dir:
        return Path(metrics_dir)
    if os.environ.get("GENCOMP_RUN_DIR"):
        return Path(os.environ["GENCOMP_RUN_DIR"])
    return paths.output_dir()


def read_metrics(root) -> list[dict]:
    """The ``metrics.json`` files of a run folder (``seed*/<notebook>/metrics.json``) or of the
    output folder (``<notebook>/metrics.json``), validated. One per data set and seed: where two
    files hold the same seed (a folder of an older notebook numbering, say), the newer counts,
    so that no seed counts twice."""
    root = Path(root)
    files = sorted(root.glob("*/metrics.json")) + sorted(root.glob("seed*/*/metrics.json"))
    newest = {}
    for p in sorted(files, key=lambda p: p.stat().st_mtime):
        m = validate_metrics(json.loads(p.read_text()))
        m["_path"] = str(p)
        newest[m["dataset"], m["seed"]] = m
    return sorted(newest.values(), key=lambda m: m["_path"])


# --------------------------------------------------------------------------- summaries


@dataclass
class Stat:
    """Mean and spread (standard deviation across seeds) of one measure."""

    mean: float | None
    spread: float
    n: int
    values: tuple = ()  # one per seed

    def __str__(self) -> str:
        if self.mean is None:
            return "n/a"
        if self.n > 1:
            return f"{_fmt(self.mean)} ± {_fmt(self.spread)}"
        return _fmt(self.mean)


def _fmt(v: float) -> str:
    if v == 0 or 0.01 <= abs(v) < 10_000:
        return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
    return f"{v:.2e}"


def stat(values, missing_as: float | None = None) -> Stat:
    """Mean and standard deviation over seeds; ``None`` values count as ``missing_as`` if given,
    else are dropped."""
    vals = [missing_as if v is None else v for v in values]
    vals = [float(v) for v in vals if v is not None]
    if not vals:
        return Stat(None, 0.0, 0)
    finite = all(math.isfinite(v) for v in vals)  # inf: a threshold some seed never reached
    spread = float(np.std(vals)) if len(vals) > 1 and finite else 0.0
    return Stat(float(np.mean(vals)), spread, len(vals), tuple(vals))


def group(runs: list[dict]) -> dict:
    """``{dataset: [metrics of each seed]}``."""
    out: dict = {}
    for m in runs:
        out.setdefault(m["dataset"], []).append(m)
    return out


def summary(runs: list[dict]) -> dict:
    """``{dataset: {model: {key: Stat}}}`` over seeds."""
    table = {}
    for dataset, ms in group(runs).items():
        table[dataset] = {model: {key: stat([m["models"][model].get(key) for m in ms])
                                  for key, _, _ in TABLE_ROWS} for model in MODELS}
    return table


def judges(ms: list[dict]) -> dict:
    """``{judge: held-out accuracy}`` of the domain classifiers behind some runs' measures, a judge
    known by its file and a digest of its weights. One, unless the runs came from different
    settings or weights: then their features differ. A run that names no judge (written before
    ``metrics.json`` named it, when each seed trained its own) counts as a judge of its own."""
    out = {}
    for m in ms:
        j = m.get("judge")
        out[f"{j['file']} ({j.get('sha1', 'no digest')})" if j else
            f"unnamed (seed {m['seed']})"] = j["accuracy"] if j else None
    return out


def metrics_table_markdown(runs: list[dict], dataset: str) -> str:
    """A Markdown table of every measure for the VAE and the GAN of one data set."""
    ms = group(runs)[dataset]
    s = summary(runs)[dataset]
    seeds = sorted({m["seed"] for m in ms})
    j, judged = judges(ms), ""
    if len(j) > 1:
        judged = f" Judged by {len(j)} different classifiers: the seeds' measures do not compare."
    elif None not in j.values():
        name, acc = next(iter(j.items()))
        judged = f" Judged by {name.split(' (')[0]} (held-out accuracy {acc:.3f})."
    head = (f"{dataset}: preset {ms[0]['preset']}, {len(seeds)} seed(s) {seeds}; "
            f"{ms[0]['splits'].get('note', '')}{judged}")
    lines = [head, "", "| measure | conditional VAE | AC-GAN | better |", "|---|---|---|---|"]
    for key, label, lower in TABLE_ROWS:
        lines.append(f"| {label} | {s['vae'][key]} | {s['gan'][key]} | "
                     f"{'lower' if lower else 'higher'} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- claims


@dataclass(frozen=True)
class Claim:
    """One conclusion of the paper and how the course tests it."""

    number: int
    text: str
    test: str


# The paper's conclusions (its sections 4 and 5), in the course's words.
CLAIMS = [
    Claim(1, "VAEs are easier and faster to train than GANs (fewer epochs, less run time).",
          "wall-clock seconds until a quality threshold fixed before the run (conditional "
          "accuracy judged by the domain classifier) is reached and held to the end of "
          "training: lower for the VAE"),
    Claim(2, "VAE samples are blurrier; GAN samples are sharper, with more detail (some of it "
             "noise).",
          "sharpness ratio (Laplacian variance of samples over real images): higher for the GAN "
          "than for a VAE trained on the plain ELBO (beta = 1, as the paper trains), on each "
          "data set where one was trained; the preset's beta beside it"),
    Claim(3, "GAN training is unstable: image quality oscillates and can collapse to grey images.",
          "spread of log FD around its trend over the second half of training (scale-free) "
          "larger for the GAN, or collapse events per seed (evaluations of the second half "
          "with grey or repeated samples, or a class drawn before and missing now) more for "
          "the GAN: either test "
          "can carry it, each at p <= 0.025 so that the pair keeps 0.05, unless the other "
          "says the opposite"),
    Claim(4, "VAE blur grows with the diversity of the data set (MNIST to CIFAR-10).",
          "the sharpness ratio of a beta = 1 VAE (each relative to its own data set's real "
          "images): higher on MNIST (Bernoulli decoder, as in the paper) than on CIFAR-10 "
          "(Gaussian decoder), whether CIFAR-10's decoder sigma is learned or fixed (a learned "
          "sigma is a second KL weight); the preset's beta beside it"),
    Claim(5, "On CelebA, GAN faces are sharper while VAE faces look more natural.",
          "sharpness ratio higher for the GAN, and FD lower and precision higher for the VAE, "
          "on the features of a judge of all 40 attributes (the preset's VAE: no beta = 1 VAE "
          "trains on CelebA)"),
    Claim(6, "On low-diversity data (MNIST) both models give realistic samples.",
          "conditional accuracy of each model's samples above 0.9 by the digit classifier"),
]
REALISTIC_ACCURACY = 0.9
JUDGE_FREE = {"sharpness_ratio"}  # measured on the pixels: the same whoever the judge


def _evidence(ms: list[dict], judged: bool = True):
    """``(evidence, verdict to give instead)`` for the runs behind one comparison; ``judged``:
    the measure comes from the judge (its features or its predictions)."""
    if not all(m["evidence"] for m in ms):
        return False, "not evidence"
    for dataset in {m["dataset"] for m in ms} if judged else ():
        if len(judges([m for m in ms if m["dataset"] == dataset])) > 1:
            return False, f"inconclusive ({dataset}: the seeds were judged by different classifiers)"
    return True, ""


def _seeds(values) -> str:
    return ", ".join(_fmt(v) if math.isfinite(v) else "never" for v in values)


def _judge(a: Stat, b: Stat | None, higher_supports, ms, judged=True, names=("", ""), bar=None,
           alpha=ALPHA):
    """The verdict of :func:`gencomp_utils.metrics.seed_verdict` on two measures over seeds (or
    one against a fixed ``bar``), and the numbers behind it: every seed's value, the medians, the
    exact p-value, and the verdict of the older rule (a gap larger than twice the spread)."""
    ok, instead = _evidence(ms, judged)
    r = seed_verdict(a.values, b.values if b else (), higher_supports, bar=bar, alpha=alpha)
    numbers = f"{names[0]} {_seeds(a.values)} (median {_fmt(r['claim_median'])})"
    if bar is not None:
        numbers += f" vs {names[1]} {_fmt(bar)}"
    else:
        numbers += f" vs {names[1]} {_seeds(b.values)} (median {_fmt(r['other_median'])})"
    if r["p"] is not None:
        numbers += f", p = {r['p']:.3g}"
    numbers += f"; twice-the-spread rule: {r['two_spreads']}"
    return (r["verdict"] if ok else instead), numbers


def _plain_vae(m: dict) -> dict | None:
    """A seed's VAE trained on the plain ELBO: its arm, or the compared VAE if its beta is 1."""
    vae = m["models"]["vae"]
    return m.get("arms", {}).get("vae_beta1") or (vae if vae.get("beta") == 1.0 else None)


def _measure(m: dict, model: str, key: str):
    """One seed's measure of a compared model or of an arm (None where it was not trained)."""
    if model == "vae_beta1":
        return (_plain_vae(m) or {}).get(key)
    if model in ARM_NAMES:
        return m.get("arms", {}).get(model, {}).get(key)
    measures = m["models"][model]
    if key == "log_oscillation":  # from the curve where it can be: this version's definition
        from_curve = log_oscillation(measures["curve"].get("fd_domain") or [])
        return measures.get(key) if from_curve is None else from_curve
    return measures.get(key)


def _name(model: str) -> str:
    return ARM_NAMES.get(model, model.upper())


def _verdict_pair(runs, dataset, key, claim_model, higher_supports, missing_as=None, alpha=ALPHA,
                  other=None):
    ms = group(runs).get(dataset)
    if not ms:
        return f"not run ({dataset})", ""
    other = other or ("gan" if claim_model == "vae" else "vae")
    a = stat([_measure(m, claim_model, key) for m in ms], missing_as)
    b = stat([_measure(m, other, key) for m in ms], missing_as)
    if a.mean is None or b.mean is None:
        return "not measured", ""
    v, numbers = _judge(a, b, higher_supports, ms, judged=key not in JUDGE_FREE,
                        names=(_name(claim_model), _name(other)), alpha=alpha)
    return v, f"{dataset} {key}: {numbers}"


def _beside(part) -> tuple:
    """A comparison shown beside a claim's test, outside its verdict."""
    v, numbers = part
    return None, numbers and f"beside it, the preset's beta ({v}): {numbers}"


def _sharper_than_plain_vae(runs):
    """Claim 2's parts: on each data set with a beta 1 VAE, the GAN against it; the preset's VAE
    beside it everywhere."""
    parts = []
    if runs and not all(m["evidence"] for m in runs):
        return [("not evidence", "")]
    for d, ms in group(runs).items():
        if any(_plain_vae(m) for m in ms):
            parts.append(_verdict_pair(runs, d, "sharpness_ratio", "gan", True, other="vae_beta1"))
        parts.append(_beside(_verdict_pair(runs, d, "sharpness_ratio", "gan", True)))
    if not any(v for v, _ in parts):
        parts.append(("not measured (no beta 1 VAE)" if parts else "not run (any data set)", ""))
    return parts


def _collapses(runs, dataset, alpha=ALPHA):
    ms = group(runs).get(dataset)
    if not ms:
        return f"not run ({dataset})", ""
    counted = all("collapse_events" in m["models"][k] for m in ms for k in MODELS)
    a, b = (stat([float(m["models"][k]["collapse_events"] if counted else
                        bool(m["models"][k]["collapsed"])) for m in ms]) for k in ("gan", "vae"))
    v, numbers = _judge(a, b, True, ms, judged=counted, names=("GAN", "VAE"), alpha=alpha)
    what = "collapse events" if counted else "collapsed (1; earlier files)"
    return v, f"{dataset} {what} per seed: {numbers}"


def _either(verdicts: list[str]) -> str:
    """Two tests of one claim, either of which can support it (each at half the p-value bar):
    it holds when one holds and none says the opposite. Runs that are not evidence, or too few
    seeds, give no verdict; a test that cannot judge (not measured, different judges) leaves it
    to the other."""
    blocked = [v for v in verdicts if v.startswith(("not run", "not evidence"))
               or re.match(r"inconclusive \(\d+ seed", v)]
    if blocked:
        return blocked[0]
    if "holds" in verdicts and "does not hold" not in verdicts:
        return "holds"
    if "does not hold" in verdicts and "holds" not in verdicts:
        return "does not hold"
    if "holds" in verdicts:  # and "does not hold": the tests disagree
        return "inconclusive"
    # else say why: a test that could not judge, one that found nothing, one not measured
    return next((v for v in verdicts if v.startswith("inconclusive (")),
                "inconclusive" if "inconclusive" in verdicts else verdicts[0])


def _combine(verdicts: list[str]) -> str:
    if any(v.startswith(("not run", "not measured")) for v in verdicts):
        return next(v for v in verdicts if v.startswith(("not run", "not measured")))
    if "not evidence" in verdicts:
        return "not evidence"
    few = [v for v in verdicts if v.startswith("inconclusive (")]
    if few:
        return few[0]
    if all(v == "holds" for v in verdicts):
        return "holds"
    if any(v == "does not hold" for v in verdicts):
        return "does not hold"
    return "inconclusive"


def claim_verdicts(runs: list[dict]) -> list[dict]:
    """Each claim with its verdict and the numbers behind it.

    The rule is :func:`gencomp_utils.metrics.seed_verdict`: at least five training seeds per
    model, an exact two-sided Mann-Whitney p-value of at most 0.05 and U's direction
    (every seed on one side, against a fixed bar); otherwise "inconclusive" (with too few seeds it
    says how many). Claim 3 rests on either of two tests, each at p <= 0.025. Runs of the smoke
    preset are "not evidence"; seeds judged by different classifiers give no verdict on the
    judge's measures. Claims 2 and 4 are judged on VAEs trained with beta = 1 (``arms``), the
    preset's VAE shown beside them.
    """
    out = []
    # 1: time to threshold (a run that never reaches it counts as infinitely slow).
    per = [_verdict_pair(runs, d, "seconds_to_threshold", "vae", False, missing_as=math.inf)
           for d in group(runs)] or [("not run (any data set)", "")]
    out.append((CLAIMS[0], per))
    out.append((CLAIMS[1], _sharper_than_plain_vae(runs)))
    per = [(_either([a[0], b[0]]), f"{a[1]}; {b[1]}") for d in group(runs)
           for a, b in [(_verdict_pair(runs, d, "log_oscillation", "gan", True, alpha=ALPHA / 2),
                         _collapses(runs, d, alpha=ALPHA / 2))]] or [("not run (any data set)", "")]
    out.append((CLAIMS[2], per))
    out.append((CLAIMS[3], [_blur_vs_diversity(runs, "vae_beta1", "vae_beta1"),
                            _blur_vs_diversity(runs, "vae_beta1", "vae_beta1_fixed_sigma"),
                            _beside(_blur_vs_diversity(runs, "vae", "vae"))]))
    out.append((CLAIMS[4], [_verdict_pair(runs, "celeba", "sharpness_ratio", "gan", True),
                            _verdict_pair(runs, "celeba", "fd_domain", "vae", False),
                            _verdict_pair(runs, "celeba", "precision", "vae", True)]))
    out.append((CLAIMS[5], [_realistic(runs, "vae"), _realistic(runs, "gan")]))
    rows = []
    for claim, parts in out:
        rows.append({"claim": claim.number, "text": claim.text, "test": claim.test,
                     "verdict": _combine([v for v, _ in parts if v is not None]),
                     "numbers": "; ".join(n for _, n in parts if n)})
    return rows


def _blur_vs_diversity(runs, mnist_model, cifar_model):
    g = group(runs)
    if "mnist" not in g or "cifar10" not in g:
        return "not run (needs mnist and cifar10)", ""
    if not all(m["evidence"] for m in g["mnist"] + g["cifar10"]):
        return "not evidence", ""
    a = stat([_measure(m, mnist_model, "sharpness_ratio") for m in g["mnist"]])
    b = stat([_measure(m, cifar_model, "sharpness_ratio") for m in g["cifar10"]])
    for stats, dataset, model in ((a, "mnist", mnist_model), (b, "cifar10", cifar_model)):
        if stats.mean is None:
            return f"not measured ({_name(model)} on {dataset})", ""
    v, numbers = _judge(a, b, True, g["mnist"] + g["cifar10"], judged=False,
                        names=(f"mnist {_name(mnist_model)}", f"cifar10 {_name(cifar_model)}"))
    return v, f"sharpness ratio: {numbers}"


def _realistic(runs, model):
    ms = group(runs).get("mnist")
    if not ms:
        return "not run (mnist)", ""
    a = stat([m["models"][model]["conditional_accuracy"] for m in ms])
    if a.mean is None:
        return "not measured", ""
    v, numbers = _judge(a, None, True, ms, names=(model.upper(), "the bar"),
                        bar=REALISTIC_ACCURACY)
    return v, f"mnist conditional accuracy: {numbers}"


def claims_table_markdown(runs: list[dict]) -> str:
    """The claims table as Markdown."""
    lines = ["| # | claim | test | verdict | numbers |", "|---|---|---|---|---|"]
    for r in claim_verdicts(runs):
        lines.append(f"| {r['claim']} | {r['text']} | {r['test']} | **{r['verdict']}** | "
                     f"{r['numbers']} |")
    return "\n".join(lines)


def quality_vs_time(runs: list[dict], dataset: str, path=None):
    """FD (domain classifier) against wall-clock seconds for each model and seed."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for m in group(runs)[dataset]:
        for model, colour in (("vae", "tab:blue"), ("gan", "tab:red")):
            c = m["models"][model]["curve"]
            if c and c.get("seconds"):
                ax.plot(c["seconds"], c["fd_domain"], color=colour, alpha=0.8, marker="o", ms=3,
                        label=f"{MODEL_NAMES[model]} (seed {m['seed']})")
    thr = group(runs)[dataset][0]["threshold"]
    if thr.get("metric") == "fd_domain" and thr.get("value") is not None:
        ax.axhline(thr["value"], color="grey", ls="--", lw=1, label="threshold")
    ax.set_xlabel("training seconds (same hardware)")
    ax.set_ylabel("FD (domain classifier)")
    ax.set_title(f"{dataset}: quality against wall-clock time")
    ax.legend(fontsize=7)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig


def sample_grids(runs: list[dict]) -> list[tuple[str, Path]]:
    """``(title, path)`` of the sample grids (``samples_*.png``) saved beside each metrics file."""
    out = []
    for m in runs:
        for png in sorted(Path(m["_path"]).parent.glob("samples_*.png")):
            out.append((f"{m['dataset']}, seed {m['seed']}: {png.stem[len('samples_'):]}", png))
    return out


def write_report(run_dir) -> Path | None:
    """Write ``report.md`` (tables, claims, figures) into ``run_dir`` from its metrics files.

    Returns:
        The report's path, or None when no experiment wrote metrics.
    """
    run_dir = Path(run_dir)
    runs = read_metrics(run_dir)
    if not runs:
        return None
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    parts = ["# VAE against GAN: measured", ""]
    if (run_dir / "about.json").is_file():  # shipped results: how they were made
        parts += _about_markdown(json.loads((run_dir / "about.json").read_text()))
    for dataset in group(runs):
        fig = quality_vs_time(runs, dataset, path=run_dir / f"quality_vs_time_{dataset}.png")
        plt.close(fig)
        parts += [f"## {dataset}", "", metrics_table_markdown(runs, dataset), "",
                  f"![quality against time](quality_vs_time_{dataset}.png)", ""]
        for title, png in sample_grids(group(runs)[dataset]):
            parts.append(f"![{title}]({png.relative_to(run_dir)})")
        parts.append("")
    parts += ["## The paper's claims", "", claims_table_markdown(runs), ""]
    path = run_dir / "report.md"
    path.write_text("\n".join(parts))
    return path


def _about_markdown(about: dict) -> list[str]:
    """The lines of a shipped report that say how its results were made (from ``about.json``)."""
    seeds = [str(s) for s in range(about["seeds"])]
    rows = ["| notebook | " + " | ".join(f"seed {s}" for s in seeds) + " |",
            "|---|" + "---|" * len(seeds)]
    for notebook, times in about["wall_seconds"].items():
        rows.append(f"| {notebook} | " + " | ".join(
            f"{times[s]:.0f}" if s in times else "" for s in seeds) + " |")
    total = sum(t for times in about["wall_seconds"].values() for t in times.values())
    versions = ", ".join(f"{k} {v}" for k, v in about["versions"].items())
    return [f"Made with `{about['command']}` on {about['machine']} ({versions}); the "
            f"notebooks' wall times below add up to {total / 3600:.1f} hours.", "",
            *[f"- {d['note']}" for d in about["data"].values()], "",
            "Wall time of each notebook and seed, in seconds (where a notebook loaded models "
            "another had trained, as 05 loads 04's AC-GAN, it took less):", "", *rows, "",
            *[f"- {note}" for note in about.get("notes", [])], ""]


# ------------------------------------------------------------------------ the shipped results

# The classroom comparison over five seeds, run once and committed with the course (``ship``)
SHIPPED = paths.REPO_ROOT / "results" / "classroom-5seeds"
SMALL_OUTPUTS = ("metrics.json", "failures.json", "samples_*.png")  # per notebook and seed


def _seed_counts(runs: list[dict]) -> dict:
    return {dataset: len({m["seed"] for m in ms}) for dataset, ms in group(runs).items()}


def results_root(metrics_dir=None, preset: str = "classroom", shipped=None) -> tuple[Path, str]:
    """Where the comparison reads its experiments, and a sentence saying which results they are.

    ``metrics_dir`` when given; else the reader's own runs (:func:`metrics_root`) when they hold
    :data:`~gencomp_utils.metrics.MIN_SEEDS` seeds of every data set they cover; else, for the
    classroom preset, the results shipped with the course (``shipped``, default :data:`SHIPPED`,
    downloaded by :func:`fetch_shipped` where only the package is installed); else the reader's
    own runs, however few.
    """
    if metrics_dir:
        return Path(metrics_dir), f"the runs in {metrics_dir} (metrics_dir)"
    own = metrics_root()
    mine = [m for m in read_metrics(own) if m["preset"] == preset] if own.is_dir() else []
    counts = _seed_counts(mine)
    held = ", ".join(f"{d} {n}" for d, n in counts.items()) or "none"
    if mine and min(counts.values()) >= MIN_SEEDS:
        return own, f"your own runs in {own} (seeds per data set: {held})"
    shipped = Path(shipped) if shipped else (SHIPPED if SHIPPED.is_dir() else None)
    if preset == "classroom" and (shipped or (shipped := fetch_shipped())):
        about = json.loads((shipped / "about.json").read_text())
        return shipped, (f"the results shipped with the course in {shipped}: the classroom "
                         f"preset over {about['seeds']} seeds, run once on {about['machine']} "
                         f"({about['command']}). Your own runs in {own} hold seeds per data "
                         f"set: {held}, fewer than the {MIN_SEEDS} a verdict needs; set "
                         f"metrics_dir to read them instead.")
    return own, f"your own runs in {own}"


def fetch_shipped(base_url: str | None = None, dest=None) -> Path | None:
    """Download the shipped results (the files ``about.json`` lists) into the cache, for a
    package installed without the repository (Colab). A copy already in the cache is kept while
    the published ``about.json`` is the same, and used when the download fails; None, with a
    note, where there is neither.

    Args:
        base_url: the folder's address (default: ``results/classroom-5seeds/`` of the course's
            repository on GitHub, branch main, as the installed package records it).
        dest: where to put them (default: the cache's ``results/classroom-5seeds``).
    """
    import urllib.request
    from importlib import metadata

    dest = Path(dest) if dest else paths.cache_dir("results") / SHIPPED.name
    cached = dest / "about.json"
    if base_url is None:
        urls = metadata.metadata("gencomp_utils").get_all("Project-URL") or []
        repo = next((u.split(", ", 1)[1] for u in urls if u.startswith("Repository")), "")
        base_url = (repo.replace("https://github.com/", "https://raw.githubusercontent.com/")
                    + f"/main/results/{SHIPPED.name}/")
    try:
        about = urllib.request.urlopen(base_url + "about.json", timeout=20).read()
        if cached.is_file() and cached.read_bytes() == about:
            return dest
        names = json.loads(about)["files"]
        outside = [n for n in names if Path(n).is_absolute() or ".." in Path(n).parts]
        if outside:
            print(f"The shipped results at {base_url} were not downloaded: their about.json "
                  f"lists files outside the folder ({outside}).")
            return dest if cached.is_file() else None
        cached.unlink(missing_ok=True)  # the folder is incomplete until about.json is back
        for name in names:
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            (dest / name).write_bytes(urllib.request.urlopen(base_url + name, timeout=20).read())
    except Exception as e:  # offline, or an address without the folder
        print(f"The shipped results could not be downloaded from {base_url} ({e})"
              + (f"; using the copy in {dest}." if cached.is_file() else "."))
        return dest if cached.is_file() else None
    cached.write_bytes(about)  # last: a folder with it is complete
    return dest


def ship(run_dir, dest=SHIPPED) -> Path:
    """Copy a main-job run's small outputs into ``dest`` and write its ``report.md``: each
    experiment's ``metrics.json`` (``failures.json`` for notebook 05) and sample grids, per seed;
    ``about.json`` with the machine, the package versions, the data, the command and the wall
    time of each notebook and seed. A notebook and seed shipped already stays as it was, files and
    wall time (a later run may have loaded its models from the cache), so that the notebooks of
    an interrupted run, run again later, fill in the rest; a run of another preset, machine or
    package versions is refused. No checkpoints.

    Returns:
        ``dest``.
    """
    import shutil

    run_dir, dest = Path(run_dir), Path(dest)
    summary = json.loads((run_dir / "summary.json").read_text())
    ok = [r for r in summary["results"] if r["status"] == "ok"]
    if not ok:
        raise ValueError(f"{run_dir} holds no notebook that ran to the end: nothing to ship.")
    about = json.loads((dest / "about.json").read_text()) if (dest / "about.json").is_file() \
        else {"wall_seconds": {}}
    for key in ("preset", "machine", "versions"):
        if about.get(key, summary.get(key)) != summary.get(key):
            raise ValueError(f"{dest} holds results of {key} {about[key]!r}, this run has "
                             f"{summary.get(key)!r}: ship it into another folder (--to).")
    # what finished in this run and is not shipped yet: a shipped one stays, with its time
    new = {(f"seed{r['seed']}", r["notebook"]) for r in ok
           if str(r["seed"]) not in about["wall_seconds"].get(r["notebook"], {})}
    for pattern in SMALL_OUTPUTS:
        for f in sorted(run_dir.glob(f"seed*/*/{pattern}")):
            if f.relative_to(run_dir).parts[:2] not in new:
                continue
            (dest / f.relative_to(run_dir)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, dest / f.relative_to(run_dir))
    for r in ok:  # the first run's time stays: a later one may have loaded its models
        about["wall_seconds"].setdefault(r["notebook"], {}).setdefault(
            str(r["seed"]), round(r["seconds"], 1))
    seeds = 1 + max(int(s) for times in about["wall_seconds"].values() for s in times)
    about.update(
        preset=summary["preset"], seeds=seeds, machine=summary.get("machine", "unknown"),
        command=f"python -m gencomp_utils run --preset {summary['preset']} --seeds {seeds}",
        versions=summary.get("versions", {}),
        data={m["dataset"]: m["splits"] for m in read_metrics(dest)})
    paths.write_json(dest / "about.json", about, indent=1)  # the report reads it
    write_report(dest)
    about["files"] = sorted(p.relative_to(dest).as_posix() for p in (
        [dest / "report.md", *dest.glob("quality_vs_time_*.png")]
        + [f for pattern in SMALL_OUTPUTS for f in dest.glob(f"seed*/*/{pattern}")]))
    paths.write_json(dest / "about.json", about, indent=1)
    return dest


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem;
       line-height: 1.45; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
th, td {{ border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: left; }}
img {{ max-width: 100%; margin: 0.3rem; vertical-align: top; }}
.ok {{ color: #176b1f; }} .failed {{ color: #b00020; font-weight: bold; }} .skipped {{ color: #777; }}
</style></head>
<body>
<h1>{title}</h1>
<p>{counts}</p>
<table><tr><th>notebook</th><th>seed</th><th>status</th><th>seconds</th><th>note</th></tr>
{rows}
</table>
{report}
</body></html>
"""


def write_index(run_dir, results: list[dict]) -> Path:
    """Write ``index.html`` into a main-job run folder: what ran, each executed notebook rendered
    to HTML beside its ``.ipynb`` and linked, then ``report.md`` (tables, figures, claims).

    Args:
        run_dir: the run folder.
        results: one dict per notebook run (``notebook``, ``seed``, ``status``, ``seconds``,
            ``executed``, ``message``), as :func:`gencomp_utils.runner.run` records them.
    """
    from html import escape

    from nbconvert import HTMLExporter
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    run_dir, exporter = Path(run_dir), HTMLExporter()
    rows = []
    for r in results:
        name = escape(r["notebook"])
        executed = Path(r["executed"]) if r.get("executed") else None
        if executed is not None and executed.is_file():
            page = executed.with_suffix(".html")
            try:
                page.write_text(exporter.from_filename(str(executed))[0], encoding="utf-8")
            except Exception as e:  # the notebook itself still links
                print(f"{executed.name} could not be rendered to HTML ({type(e).__name__}: {e})")
                page = executed
            name = f'<a href="{escape(page.relative_to(run_dir).as_posix())}">{name}</a>'
        rows.append(f'<tr><td>{name}</td><td>{r["seed"]}</td><td class="{r["status"]}">'
                    f'{r["status"]}</td><td>{r["seconds"]:.0f}</td>'
                    f'<td>{escape(r.get("message") or "")}</td></tr>')
    counts = ", ".join(f"{sum(r['status'] == s for r in results)} {s}"
                       for s in ("ok", "failed", "skipped"))
    report = run_dir / "report.md"
    body = (markdown2html_mistune(report.read_text()) if report.is_file()
            else "<p>No experiment notebook wrote measurements in this run.</p>")
    path = run_dir / "index.html"
    path.write_text(_PAGE.format(title=f"gencomp: run {escape(run_dir.name)}",
                                 counts=f"Notebooks: {counts}.", rows="\n".join(rows),
                                 report=body), encoding="utf-8")
    return path
