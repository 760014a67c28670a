"""Presets and the folders the course uses."""
from __future__ import annotations

import os

import pytest

import gencomp_utils as gu
from gencomp_utils import paths


def test_preset_from_environment(monkeypatch):
    monkeypatch.setenv("GENCOMP_PRESET", "paper")
    assert gu.get_preset().name == "paper"
    monkeypatch.delenv("GENCOMP_PRESET")
    assert gu.get_preset().name == "classroom"


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(ValueError, match="smoke, classroom, paper"):
        gu.get_preset("fast")


def test_presets_grow_from_smoke_to_paper():
    s, c, p = (gu.PRESETS[n] for n in ("smoke", "classroom", "paper"))
    for field in ("train_steps", "num_eval_images", "theory_samples", "toy_steps", "classifier_steps"):
        assert getattr(s, field) < getattr(c, field) < getattr(p, field), field


def test_replace_keeps_the_rest():
    p = gu.get_preset("smoke").replace(train_steps=7)
    assert p.train_steps == 7 and p.batch_size == gu.PRESETS["smoke"].batch_size


def test_folders_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("GENCOMP_CACHE_DIR", str(tmp_path / "c"))
    monkeypatch.setenv("GENCOMP_OUTPUT_DIR", str(tmp_path / "o"))
    assert paths.cache_dir("checkpoints") == tmp_path / "c" / "checkpoints"
    assert (tmp_path / "c" / "checkpoints").is_dir()
    assert paths.output_dir("nb", create=False) == tmp_path / "o" / "nb"
    assert not (tmp_path / "o").exists()


def test_default_folders(monkeypatch, tmp_path):
    monkeypatch.delenv("GENCOMP_CACHE_DIR")
    monkeypatch.delenv("GENCOMP_OUTPUT_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert paths.cache_dir(create=False) == tmp_path / "gencomp"
    assert paths.output_dir(create=False) == paths.REPO_ROOT / "runs"
    assert "runs/" in (paths.REPO_ROOT / ".gitignore").read_text().split()


def test_search_order(monkeypatch, tmp_path):
    monkeypatch.setenv("GENCOMP_DATA_DIR", str(tmp_path))
    dirs = paths.data_search_dirs()
    assert dirs[0] == tmp_path
    assert dirs[1] == paths.REPO_ROOT / "data"
    assert dirs[2] == paths.keras_cache_dir()


def test_start_seeds_and_makes_the_output_folder():
    import numpy as np

    s = gu.start("99_test", "smoke", seed=3, tensorflow=False)
    a = np.random.rand()
    gu.start("99_test", "smoke", seed=3, tensorflow=False)
    assert np.random.rand() == a
    assert s.out_dir.is_dir() and s.out_dir.name == "99_test" and s.preset.name == "smoke"


def test_a_changed_budget_renames_the_preset():
    s = gu.start("99_test", "classroom", seed=0, tensorflow=False, train_steps=400)
    assert (s.preset.name, s.preset.train_steps) == ("classroom-400steps", 400)
    assert s.preset.eval_every == 100 and s.preset.latent_dim == gu.get_preset("classroom").latent_dim
    same = gu.start("99_test", "classroom", seed=0, tensorflow=False, train_steps=2000)
    assert same.preset == gu.get_preset("classroom")
    with pytest.raises(ValueError, match="at least 1"):
        gu.start("99_test", "smoke", tensorflow=False, train_steps=0)


def test_environment_sets_and_removes_variables_then_restores_them(monkeypatch):
    from gencomp_utils import paths

    monkeypatch.setenv("GENCOMP_TEST_KEEP", "before")
    monkeypatch.delenv("GENCOMP_TEST_NEW", raising=False)
    with pytest.raises(RuntimeError):
        with paths.environment({"GENCOMP_TEST_KEEP": None, "GENCOMP_TEST_NEW": "1"}):
            assert "GENCOMP_TEST_KEEP" not in os.environ
            assert os.environ["GENCOMP_TEST_NEW"] == "1"
            raise RuntimeError("restored even on error")
    assert os.environ["GENCOMP_TEST_KEEP"] == "before" and "GENCOMP_TEST_NEW" not in os.environ


def test_write_json_writes_strict_json_in_one_step(tmp_path):
    """NumPy numbers become numbers, NaN and infinity null (strict readers refuse them), paths
    strings; the folder is made and no temporary file is left."""
    import json

    import numpy as np

    obj = {"a": np.float32(0.5), "b": [np.int64(3), float("nan"), np.float64(np.inf)],
           "c": (np.bool_(True), tmp_path), "d": {"e": None, "f": "x"}}
    path = paths.write_json(tmp_path / "new" / "out.json", obj)
    text = path.read_text()
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} written")) == {
        "a": 0.5, "b": [3, None, None], "c": [True, str(tmp_path)], "d": {"e": None, "f": "x"}}
    assert [p.name for p in path.parent.iterdir()] == ["out.json"]
    paths.write_json(path, [1])
    assert json.loads(path.read_text()) == [1]


def test_colab_without_a_gpu_says_so_with_the_expected_cpu_time_and_carries_on(monkeypatch,
                                                                                capsys):
    import json
    import sys
    import types

    from gencomp_utils import course

    import tensorflow as tf

    real = tf.config.list_physical_devices
    monkeypatch.setattr(tf.config, "list_physical_devices",  # no GPU, on any machine
                        lambda kind=None: [] if kind == "GPU" else real(kind))
    times = json.loads((paths.REPO_ROOT / "gencomp_utils" / "run_times.json").read_text())
    gu.start("04_mnist_experiment", "classroom", tensorflow=True)
    assert "no GPU" not in capsys.readouterr().out  # not on Colab: nothing to say
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    session = gu.start("04_mnist_experiment", "classroom", tensorflow=True)
    out = capsys.readouterr().out
    expected = times["notebooks"]["04"]["classroom"]
    assert f"This Colab runtime has no GPU: expect about {expected} on a 2-core CPU" in out
    assert "Runtime > Change runtime type" in out and session.preset.name == "classroom"
    assert "expect about" not in course.colab_without_gpu("04_mnist_experiment", "classroom-40steps")
    estimate = times["notebooks"]["03"]["classroom"]  # "about ...": not "expect about about"
    assert (f"expect about {estimate.removeprefix('about ')} on a 2-core CPU"
            in course.colab_without_gpu("03_build_the_models", "classroom"))
    assert course.colab_without_gpu("01_vae_lower_bound", "classroom") is None  # NumPy: CPU is enough
