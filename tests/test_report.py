"""metrics.json, the summary over seeds and the claims verdicts, on made-up numbers."""
from __future__ import annotations

import json

import pytest

from gencomp_utils import report


def _model(**over):
    m = {k: 1.0 for k in report.REQUIRED_MODEL_KEYS}
    m.update(fid=None, fid_note="FID skipped: no weights", log_likelihood_nats=None,
             bits_per_dim=None, collapsed=False,
             curve={"step": [10, 20], "seconds": [1.0, 2.0], "fd_domain": [5.0, 3.0]})
    m.update(over)
    return m


def _run(dataset="mnist", seed=0, preset="classroom", vae=None, gan=None, beta1=None,
         fixed_sigma=None):
    """One seed's metrics; ``beta1``, ``fixed_sigma``: the measures of VAEs trained beside the
    pair with beta 1 (and a fixed decoder sigma), if any."""
    arms = {k: {"beta": 1.0, "likelihood": "gaussian", "gaussian_sigma": sigma, "steps": 10,
                **{key: 1.0 for key in ("fd_domain", "kid", "sharpness_ratio")}, **over}
            for k, sigma, over in (("vae_beta1", None, beta1), ("vae_beta1_fixed_sigma", 0.1,
                                                                 fixed_sigma)) if over is not None}
    return {"schema": 1, "dataset": dataset, "preset": preset, "seed": seed,
            "evidence": preset != "smoke", "splits": {"train": "a", "eval": "b", "note": "n"},
            "num_eval_images": 100, "threshold": {"metric": "fd_domain", "value": 4.0},
            "judge": {"file": f"{dataset}-aaa.keras", "sha1": "0123456789ab", "accuracy": 0.99},
            "models": {"vae": _model(**(vae or {})), "gan": _model(**(gan or {}))},
            **({"arms": arms} if arms else {})}


def _verdict(runs, number):
    return next(r for r in report.claim_verdicts(runs) if r["claim"] == number)


def test_clear_win_clear_loss_and_overlap():
    sharp = [_run(seed=s, beta1={"sharpness_ratio": 0.5 + 0.01 * s},
                  gan={"sharpness_ratio": 0.9 + 0.01 * s}) for s in range(5)]
    assert _verdict(sharp, 2)["verdict"] == "holds"  # the GAN is clearly sharper
    blurry = [_run(seed=s, beta1={"sharpness_ratio": 0.9 + 0.01 * s},
                   gan={"sharpness_ratio": 0.5}) for s in range(5)]
    assert _verdict(blurry, 2)["verdict"] == "does not hold"
    overlap = [_run(seed=s, beta1={"sharpness_ratio": 0.6 + 0.2 * s},
                    gan={"sharpness_ratio": 0.8}) for s in range(5)]
    assert _verdict(overlap, 2)["verdict"] == "inconclusive"


def test_blur_is_judged_on_the_plain_elbo_with_the_presets_beta_beside_it():
    """The preset's beta = 4 blurs by design: claim 2 is judged against a beta 1 VAE, and only
    where one was trained; the preset's VAE is shown, not counted."""
    runs = [_run(seed=s, vae={"sharpness_ratio": 0.1}, gan={"sharpness_ratio": 0.5},
                 beta1={"sharpness_ratio": 0.9}) for s in range(5)]
    row = _verdict(runs, 2)
    assert row["verdict"] == "does not hold"
    assert "mnist sharpness_ratio: GAN 0.5, 0.5, 0.5, 0.5, 0.5 (median 0.5) vs VAE (beta 1)" \
        in row["numbers"]
    assert "beside it, the preset's beta (holds): mnist sharpness_ratio: GAN" in row["numbers"]
    runs += [_run("celeba", s, vae={"sharpness_ratio": 0.1}, gan={"sharpness_ratio": 0.5})
             for s in range(5)]  # no beta 1 VAE on CelebA: shown beside, not judged
    assert _verdict(runs, 2)["verdict"] == "does not hold"
    assert _verdict(runs[5:], 2)["verdict"] == "not measured (no beta 1 VAE)"


def test_fewer_than_five_seeds_give_no_verdict():
    runs = [_run(seed=s, beta1={"sharpness_ratio": 0.1}, gan={"sharpness_ratio": 0.9})
            for s in range(4)]
    assert _verdict(runs, 2)["verdict"] == "inconclusive (4 seeds; 5 needed)"


def test_seeds_judged_by_different_classifiers_give_no_verdict():
    """FD, KID, precision, recall and conditional accuracy live in the judge's features or its
    predictions: seeds measured by different judges do not compare, however clear the numbers
    look. Sharpness is measured on the pixels, whoever the judge."""
    runs = [_run(seed=s, vae={"log_oscillation": 0.1}, gan={"log_oscillation": 0.9,
                 "sharpness_ratio": 0.9}, beta1={"sharpness_ratio": 0.1}) for s in range(5)]
    assert _verdict(runs, 3)["verdict"] == _verdict(runs, 2)["verdict"] == "holds"
    assert "Judged by mnist-aaa.keras (held-out accuracy 0.990)" in \
        report.metrics_table_markdown(runs, "mnist")
    runs[1]["judge"] = dict(runs[1]["judge"], sha1="ba9876543210")  # same file, other weights
    different = "inconclusive (mnist: the seeds were judged by different classifiers)"
    assert _verdict(runs, 3)["verdict"] == different
    assert _verdict(runs, 2)["verdict"] == "holds"
    assert "2 different classifiers" in report.metrics_table_markdown(runs, "mnist")
    for m in runs:  # files written before metrics.json named the judge: one judge per seed
        del m["judge"]
    assert _verdict(runs, 3)["verdict"] == different
    assert "Judged by" not in report.metrics_table_markdown(runs[:1], "mnist")


def test_a_preset_of_beta_1_needs_no_arm_and_smoke_runs_are_not_evidence_for_blur():
    runs = [_run(seed=s, vae={"sharpness_ratio": 0.1, "beta": 1.0}, gan={"sharpness_ratio": 0.9})
            for s in range(5)]  # the paper preset: the compared VAE is the plain ELBO
    assert _verdict(runs, 2)["verdict"] == "holds"
    smoke = [_run("mnist", preset="smoke"), _run("cifar10", preset="smoke")]
    assert _verdict(smoke, 2)["verdict"] == _verdict(smoke, 4)["verdict"] == "not evidence"


def test_oscillation_is_taken_from_the_curve_where_it_is_long_enough():
    """A stored value of an earlier definition does not mix with this one's."""
    swinging = [9.0, 7.0, 5.0, 4.0, 3.0, 4.5, 2.0, 4.5, 2.0, 4.5]
    curve = {"step": list(range(10)), "seconds": list(range(10)), "fd_domain": swinging}
    runs = [_run(seed=s, gan={"log_oscillation": 0.0, "curve": curve},
                 vae={"log_oscillation": 0.0, "curve": {**curve, "fd_domain": sorted(swinging)[::-1]}})
            for s in range(5)]
    assert "GAN 0.363, " in _verdict(runs, 3)["numbers"] and _verdict(runs, 3)["verdict"] == "holds"


def test_instability_holds_on_either_test_at_half_the_bar():
    """Claim 3: the GAN's log-FD oscillation larger, or its collapses more, each test at
    p <= 0.025. Collapses in every GAN seed and none in the VAE's (p = 2/252) carry it alone,
    also when the oscillation cannot be judged; oscillation that the other test contradicts
    does not."""
    runs = [_run(seed=s, gan={"collapsed": True}) for s in range(5)]  # curves too short
    assert _verdict(runs, 3)["verdict"] == "holds"
    for m in runs:
        m["models"]["vae"]["log_oscillation"] = m["models"]["gan"]["log_oscillation"] = 0.5
    assert _verdict(runs, 3)["verdict"] == "holds"
    # no oscillation measured, no collapse anywhere: judged, and nothing found
    assert _verdict([_run(seed=s) for s in range(5)], 3)["verdict"] == "inconclusive"
    runs[1]["judge"] = dict(runs[1]["judge"], sha1="ba9876543210")
    assert _verdict(runs, 3)["verdict"] == "holds"
    opposite = [_run(seed=s, vae={"collapsed": True, "log_oscillation": 0.1},
                     gan={"log_oscillation": 0.9}) for s in range(5)]
    assert _verdict(opposite, 3)["verdict"] == "inconclusive"
    # p = 8/252 = 0.032: enough alone (0.05), not as one of two tests (0.025)
    close = [_run(seed=s, vae={"log_oscillation": [0.1, 0.2, 0.3, 0.6, 0.65][s]},
                  gan={"log_oscillation": [0.5, 0.7, 0.8, 0.9, 1.0][s]}) for s in range(5)]
    assert "p = 0.0317" in _verdict(close, 3)["numbers"]
    assert _verdict(close, 3)["verdict"] == "inconclusive"


def test_collapse_events_are_counted_per_seed():
    """Counted collapse events (evaluations of the second half with grey or repeated samples or
    a vanished class) replace the older yes/no where every file has them."""
    runs = [_run(seed=s, vae={"collapse_events": 0}, gan={"collapse_events": [2, 3, 1, 4, 2][s]})
            for s in range(5)]
    row = _verdict(runs, 3)
    assert row["verdict"] == "holds" and "mnist collapse events per seed: GAN 2, 3, 1, 4, 2" in \
        row["numbers"]
    del runs[0]["models"]["vae"]["collapse_events"]  # an earlier file: the yes/no for all
    assert "collapsed (1; earlier files) per seed" in _verdict(runs, 3)["numbers"]
    assert _verdict(runs, 3)["verdict"] == "inconclusive"


def test_a_seed_counts_once(tmp_path):
    """A folder of an older notebook numbering holds the same seed again: the newer file
    counts, and the seed only once."""
    import os

    report.write_metrics(tmp_path / "03_mnist_experiment" / "metrics.json", _run(preset="old"))
    new = report.write_metrics(tmp_path / "04_mnist_experiment" / "metrics.json", _run())
    os.utime(new, (new.stat().st_atime, new.stat().st_mtime + 10))
    assert [m["preset"] for m in report.read_metrics(tmp_path)] == ["classroom"]


def test_smoke_runs_are_not_evidence():
    runs = [_run(preset="smoke", beta1={"sharpness_ratio": 0.1}, gan={"sharpness_ratio": 0.9})]
    assert _verdict(runs, 2)["verdict"] == "not evidence"


def test_time_to_threshold_never_reached_counts_as_slowest():
    runs = [_run(seed=s, vae={"seconds_to_threshold": 100.0 + s}, gan={"seconds_to_threshold": None})
            for s in range(5)]
    assert _verdict(runs, 1)["verdict"] == "holds"


def test_claims_needing_other_data_sets_say_so():
    runs = [_run()]
    assert _verdict(runs, 4)["verdict"].startswith("not run")
    assert _verdict(runs, 5)["verdict"].startswith("not run")


def test_blur_grows_with_diversity_whether_sigma_is_learned_or_fixed():
    runs = [_run("mnist", s, beta1={"sharpness_ratio": 0.8}) for s in range(5)]
    runs += [_run("cifar10", s, beta1={"sharpness_ratio": 0.3 + 0.01 * s},
                  fixed_sigma={"sharpness_ratio": 0.5}) for s in range(5)]
    assert _verdict(runs, 4)["verdict"] == "holds"
    for m in runs[5:]:  # with sigma fixed, CIFAR-10's samples as sharp as MNIST's: not shown
        m["arms"]["vae_beta1_fixed_sigma"]["sharpness_ratio"] = 0.8
    assert _verdict(runs, 4)["verdict"] == "inconclusive"
    for m in runs[5:]:
        del m["arms"]["vae_beta1_fixed_sigma"]
    assert _verdict(runs, 4)["verdict"] == "not measured (VAE (beta 1, fixed sigma) on cifar10)"


def test_both_realistic_on_mnist():
    ok = [_run(seed=s, vae={"conditional_accuracy": 0.97}, gan={"conditional_accuracy": 0.95})
          for s in range(5)]
    assert _verdict(ok, 6)["verdict"] == "holds"
    bad = [_run(seed=s, vae={"conditional_accuracy": 0.97}, gan={"conditional_accuracy": 0.5})
           for s in range(5)]
    assert _verdict(bad, 6)["verdict"] == "does not hold"


def test_write_read_and_schema(tmp_path):
    path = report.write_metrics(tmp_path / "seed0" / "04" / "metrics.json",
                                _run(vae={"kid": float("nan")}))
    assert json.loads(path.read_text())["models"]["vae"]["kid"] is None
    assert len(report.read_metrics(tmp_path)) == 1
    broken = _run()
    del broken["models"]["gan"]["precision"]
    with pytest.raises(ValueError, match="'gan' lacks \\['precision'\\]"):
        report.write_metrics(tmp_path / "x.json", broken)


def test_report_has_tables_claims_and_figures(tmp_path):
    for s in range(2):
        report.write_metrics(tmp_path / f"seed{s}" / "04_mnist" / "metrics.json",
                             _run(seed=s, vae={"fd_domain": 2.0 + s}))
    path = report.write_report(tmp_path)
    text = path.read_text()
    assert "| FD (domain classifier) | 2.5 ± 0.5 |" in text
    assert "## The paper's claims" in text and text.count("\n| ") >= 6
    assert (tmp_path / "quality_vs_time_mnist.png").is_file()
    assert report.write_report(tmp_path / "empty") is None


def test_where_metrics_are_read(tmp_path, monkeypatch):
    monkeypatch.delenv("GENCOMP_RUN_DIR", raising=False)
    monkeypatch.setenv("GENCOMP_OUTPUT_DIR", str(tmp_path / "out"))
    assert report.metrics_root() == tmp_path / "out"
    monkeypatch.setenv("GENCOMP_RUN_DIR", str(tmp_path / "run"))
    assert report.metrics_root() == tmp_path / "run"
    assert report.metrics_root(tmp_path / "x") == tmp_path / "x"
    # notebooks run by hand write <out>/<notebook>/metrics.json; older main-job runs below the
    # output folder (<out>/<run>/seed0/...) are not mixed in
    report.write_metrics(tmp_path / "out" / "04_mnist" / "metrics.json", _run())
    report.write_metrics(tmp_path / "out" / "2026-run" / "seed0" / "04_mnist" / "metrics.json",
                         _run(preset="smoke"))
    assert [m["preset"] for m in report.read_metrics(tmp_path / "out")] == ["classroom"]


def test_a_report_of_five_seeds_from_synthetic_files_gives_each_verdict(tmp_path):
    """metrics.json of 5 seeds of every experiment, no training: the numbers call for "holds"
    (claim 2: the GAN sharper on every data set), "does not hold" (claim 1: the VAE slower) and
    "inconclusive" (claim 3: the same oscillation, no collapse), and the report shows every
    seed's value, the medians and the exact p-value."""
    folders = {"mnist": "04_mnist_experiment", "cifar10": "06_cifar10_experiment",
               "celeba": "07_celeba_experiment"}
    for dataset, folder in folders.items():
        for s in range(5):
            m = _run(dataset, s, beta1={"sharpness_ratio": 0.2 + 0.01 * s},
                     vae={"sharpness_ratio": 0.2 + 0.01 * s, "seconds_to_threshold": 90.0 + s,
                          "log_oscillation": 0.10 + 0.02 * s, "conditional_accuracy": 0.95},
                     gan={"sharpness_ratio": 0.9 + 0.01 * s, "seconds_to_threshold": 40.0 + s,
                          "log_oscillation": 0.11 + 0.02 * s, "conditional_accuracy": 0.97})
            report.write_metrics(tmp_path / f"seed{s}" / folder / "metrics.json", m)
    runs = report.read_metrics(tmp_path)
    assert len(runs) == 15
    assert _verdict(runs, 2)["verdict"] == "holds"
    assert _verdict(runs, 1)["verdict"] == "does not hold"
    assert _verdict(runs, 3)["verdict"] == "inconclusive"
    assert _verdict(runs, 6)["verdict"] == "holds"
    numbers = _verdict(runs, 2)["numbers"]
    assert "GAN 0.9, 0.91, 0.92, 0.93, 0.94 (median 0.92)" in numbers
    assert f"p = {2 / 252:.3g}" in numbers and "twice-the-spread rule: holds" in numbers
    text = report.write_report(tmp_path).read_text()
    assert "| 2 |" in text and "**holds**" in text and "**does not hold**" in text


def _main_job(run_dir, seeds=5, preset="classroom", seconds=60.0, machine="a CPU, 2 cores"):
    """A main-job run folder of made-up measures: metrics.json, a failures.json, a sample grid
    and a checkpoint per seed, and summary.json with the wall times."""
    results = []
    for s in range(seeds):
        folder = run_dir / f"seed{s}" / "04_mnist_experiment"
        report.write_metrics(folder / "metrics.json", _run(seed=s, preset=preset,
                                                           vae={"fd_domain": seconds / 30 + s}))
        (folder / "samples_gan.png").write_bytes(b"png")
        (folder / "gan" / "ckpt-1.index").parent.mkdir(parents=True)
        (folder / "gan" / "ckpt-1.index").write_bytes(b"a checkpoint")
        (run_dir / f"seed{s}" / "05_gan_failures").mkdir(parents=True)
        (run_dir / f"seed{s}" / "05_gan_failures" / "failures.json").write_text("{}")
        results += [{"notebook": nb, "seed": s, "status": "ok", "seconds": seconds + s,
                     "executed": None, "message": ""} for nb in ("04_mnist_experiment", "05_gan_failures")]
    (run_dir / "summary.json").write_text(json.dumps(
        {"preset": preset, "machine": machine, "results": results,
         "versions": {"python": "3.11.7", "tensorflow": "2.21.0", "keras": "3.15.1",
                      "numpy": "2.1.3"}}))


def test_ship_copies_the_small_outputs_and_fills_in_later_seeds(tmp_path):
    _main_job(tmp_path / "run", seeds=3)
    dest = report.ship(tmp_path / "run", tmp_path / "shipped")
    about = json.loads((dest / "about.json").read_text())
    assert about["seeds"] == 3 and about["machine"] == "a CPU, 2 cores"
    assert about["command"] == "python -m gencomp_utils run --preset classroom --seeds 3"
    assert about["wall_seconds"]["04_mnist_experiment"] == {"0": 60.0, "1": 61.0, "2": 62.0}
    assert set(about["versions"]) == {"python", "tensorflow", "keras", "numpy"}
    assert (dest / "seed2" / "05_gan_failures" / "failures.json").is_file()
    assert not list(dest.rglob("ckpt-*")), "checkpoints are not shipped"
    assert sorted(about["files"]) == sorted(
        p.relative_to(dest).as_posix() for p in dest.rglob("*")
        if p.is_file() and p.name != "about.json")
    text = (dest / "report.md").read_text()
    assert "| FD (domain classifier) | 3 ± 0.816 |" in text
    assert ("Made with `python -m gencomp_utils run --preset classroom --seeds 3` on a CPU, "
            "2 cores (python 3.11.7, tensorflow 2.21.0") in text
    assert "| 04_mnist_experiment | 60 | 61 | 62 |" in text  # the wall time of each seed
    about["notes"] = ["Seed 2 trained in an earlier run."]  # written by hand: kept, and shown
    (dest / "about.json").write_text(json.dumps(about))
    _main_job(tmp_path / "again", seeds=3)
    report.ship(tmp_path / "again", dest)
    assert "- Seed 2 trained in an earlier run." in (dest / "report.md").read_text()
    # a later run of every seed, its first three loaded from the cache in 2 s: seeds added,
    # the wall times of the seeds trained before kept
    (dest / ".ipynb_checkpoints").mkdir()  # a stray file is not listed for download
    (dest / ".ipynb_checkpoints" / "x.json").write_text("{}")
    _main_job(tmp_path / "later", seeds=5, seconds=2.0)
    about = json.loads((report.ship(tmp_path / "later", dest) / "about.json").read_text())
    assert about["seeds"] == 5 and len(report.read_metrics(dest)) == 5
    assert "seed4/04_mnist_experiment/metrics.json" in about["files"]
    assert not [f for f in about["files"] if "checkpoints" in f]
    assert about["wall_seconds"]["04_mnist_experiment"] == {"0": 60.0, "1": 61.0, "2": 62.0, "3": 5.0,
                                                 "4": 6.0}
    fds = {m["seed"]: m["models"]["vae"]["fd_domain"] for m in report.read_metrics(dest)}
    assert fds == pytest.approx({0: 2.0, 1: 3.0, 2: 4.0, 3: 3 + 1 / 15, 4: 4 + 1 / 15})
    _main_job(tmp_path / "failed", seeds=5)  # seed 4 failed: nothing of it is shipped
    summary = json.loads((tmp_path / "failed" / "summary.json").read_text())
    summary["results"] = [r for r in summary["results"] if r["seed"] < 4]
    (tmp_path / "failed" / "summary.json").write_text(json.dumps(summary))
    assert not report.ship(tmp_path / "failed", tmp_path / "s2").joinpath("seed4").exists()
    _main_job(tmp_path / "other", seeds=1, machine="another CPU")
    with pytest.raises(ValueError, match="machine 'a CPU, 2 cores'.*another CPU"):
        report.ship(tmp_path / "other", dest)
    _main_job(tmp_path / "smoke", seeds=1, preset="smoke")
    with pytest.raises(ValueError, match="preset 'classroom'"):
        report.ship(tmp_path / "smoke", dest)
    summary = json.loads((tmp_path / "smoke" / "summary.json").read_text())
    for r in summary["results"]:
        r["status"] = "failed"
    (tmp_path / "smoke" / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(ValueError, match="nothing to ship"):
        report.ship(tmp_path / "smoke", tmp_path / "elsewhere")


def test_the_comparison_reads_own_runs_with_five_seeds_else_the_shipped_ones(tmp_path,
                                                                              monkeypatch):
    _main_job(tmp_path / "run")
    shipped = report.ship(tmp_path / "run", tmp_path / "shipped")
    monkeypatch.delenv("GENCOMP_RUN_DIR", raising=False)
    monkeypatch.setenv("GENCOMP_OUTPUT_DIR", str(tmp_path / "out"))
    report.write_metrics(tmp_path / "out" / "04_mnist_experiment" / "metrics.json", _run())
    root, which = report.results_root(shipped=shipped)  # one seed of mine: the shipped five
    assert root == shipped and "shipped with the course" in which and ": mnist 1," in which
    assert report.results_root(preset="smoke", shipped=shipped)[0] == tmp_path / "out"
    assert report.results_root(tmp_path / "x", shipped=shipped)[0] == tmp_path / "x"
    monkeypatch.setenv("GENCOMP_RUN_DIR", str(tmp_path / "run"))  # a main job of five seeds
    root, which = report.results_root(shipped=shipped)
    assert root == tmp_path / "run" and which.startswith("your own runs")


def test_shipped_results_download_where_only_the_package_is_installed(tmp_path, capsys):
    _main_job(tmp_path / "run", seeds=2)
    shipped = report.ship(tmp_path / "run", tmp_path / "shipped")
    got = report.fetch_shipped(shipped.as_uri() + "/", tmp_path / "cache")
    assert got == tmp_path / "cache"
    for name in json.loads((shipped / "about.json").read_text())["files"] + ["about.json"]:
        assert (got / name).read_bytes() == (shipped / name).read_bytes(), name
    assert report.fetch_shipped((tmp_path / "nowhere").as_uri() + "/", tmp_path / "c2") is None
    assert "could not be downloaded" in capsys.readouterr().out
    assert not (tmp_path / "c2" / "about.json").exists()
    # offline, the copy already fetched serves; a newer publication replaces it
    assert report.fetch_shipped((tmp_path / "nowhere").as_uri() + "/", got) == got
    assert "using the copy" in capsys.readouterr().out
    _main_job(tmp_path / "run3", seeds=3)
    report.ship(tmp_path / "run3", shipped)
    report.fetch_shipped(shipped.as_uri() + "/", got)
    assert json.loads((got / "about.json").read_text())["seeds"] == 3
    assert (got / "seed2" / "05_gan_failures" / "failures.json").is_file()
    (got / "seed2" / "05_gan_failures" / "failures.json").unlink()  # about.json unchanged:
    report.fetch_shipped(shipped.as_uri() + "/", got)                 # nothing downloaded
    assert not (got / "seed2" / "05_gan_failures" / "failures.json").exists()
    about = json.loads((shipped / "about.json").read_text())  # a file outside the folder
    (shipped / "about.json").write_text(json.dumps(dict(about, files=["a.json", "../secret"])))
    assert report.fetch_shipped(shipped.as_uri() + "/", tmp_path / "c3") is None
    assert "files outside the folder (['../secret'])" in capsys.readouterr().out


@pytest.mark.skipif(not report.SHIPPED.is_dir(), reason="no shipped results in this checkout")
def test_the_shipped_results_hold_to_the_schema_and_regenerate_their_report(tmp_path):
    """Every shipped metrics.json validates, each data set has five seeds of the classroom
    preset, every failures.json has the four GANs, and report.md comes out of them unchanged."""
    import shutil

    runs = report.read_metrics(report.SHIPPED)  # validates each file
    assert all(m["preset"] == "classroom" and m["evidence"] for m in runs)
    assert all(n == 5 for n in report._seed_counts(runs).values()), report._seed_counts(runs)
    for path in report.SHIPPED.glob("seed*/05_gan_failures/failures.json"):
        record = json.loads(path.read_text())
        assert record["preset"] == "classroom" and len(record["variants"]) == 4, path
    about = json.loads((report.SHIPPED / "about.json").read_text())
    assert about["files"] == sorted(p.relative_to(report.SHIPPED).as_posix()
                                    for p in report.SHIPPED.rglob("*")
                                    if p.is_file() and p.name != "about.json")
    readme = (report.SHIPPED.parents[1] / "README.md").read_text()
    for i, v in enumerate(report.claim_verdicts(runs), 1):  # the README quotes each verdict
        row = next(line for line in readme.splitlines() if line.startswith(f"| {i} | "))
        assert f"| **{v['verdict']}** |" in row, (row, v["verdict"])
    copy = shutil.copytree(report.SHIPPED, tmp_path / "copy")
    (copy / "report.md").unlink()
    assert report.write_report(copy).read_text() == (report.SHIPPED / "report.md").read_text()
