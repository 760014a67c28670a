"""The training engine and the device choice: records, load-or-train, resume after SIGKILL,
NaN detection, same seed same result, two-replica MirroredStrategy."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from gencomp_utils import devices

# --------------------------------------------------------------------------------------------
# Device choice, against mocked device lists (no TensorFlow needed)


def load_history(folder) -> dict:
    """A run's ``history.json``."""
    return json.loads((Path(folder) / "history.json").read_text())


def test_cpu_only_machine_gets_no_xla_and_float32_without_bf16_instructions():
    c = devices.choose(devices=["CPU"], flags={"avx2", "fma"})
    assert (c.kind, c.count, c.jit_compile, c.precision, c.strategy) == \
        ("CPU", 1, False, "float32", "default")
    assert "XLA off" in str(c)


def test_cpu_with_bf16_instructions_gets_float32_unless_mixed_is_asked_for():
    for flags in ({"avx512_bf16"}, {"amx_bf16"}):
        c = devices.choose(devices=["CPU"], flags=flags)
        assert c.precision == "float32" and "precision='mixed'" in c.reason
    assert "precision='mixed'" not in devices.choose(devices=["CPU"], flags=set()).reason
    assert devices.choose("mixed", devices=["CPU"], flags=set()).precision == "mixed_bfloat16"
    assert devices.choose("float32", devices=["CPU"], flags={"avx512_bf16"}).precision == "float32"


def test_one_gpu_gets_xla_and_float16_with_loss_scaling():
    c = devices.choose(devices=["CPU", "GPU"], gpu_compute_capability=(7, 5))
    assert (c.kind, c.count, c.jit_compile, c.precision, c.strategy) == \
        ("GPU", 1, True, "mixed_float16", "default")
    old = devices.choose(devices=["CPU", "GPU"], gpu_compute_capability=(6, 0))
    assert old.precision == "float32" and old.jit_compile
    assert devices.choose("mixed", devices=["GPU"]).precision == "mixed_float16"


def test_several_gpus_are_mirrored_and_a_tpu_gets_the_tpu_strategy():
    c = devices.choose(devices=["CPU", "GPU", "GPU", "GPU"])
    assert (c.kind, c.count, c.strategy) == ("GPU", 3, "mirrored")
    t = devices.choose(devices=["CPU"] + ["TPU"] * 8)
    assert (t.kind, t.count, t.strategy, t.precision, t.jit_compile) == \
        ("TPU", 8, "tpu", "mixed_bfloat16", True)


def test_mocked_physical_devices_and_overrides():
    class Dev:
        def __init__(self, kind):
            self.device_type = kind

    c = devices.choose(devices=[Dev("CPU"), Dev("GPU")], jit_compile=False)
    assert c.kind == "GPU" and not c.jit_compile
    assert devices.choose(devices=["CPU", "GPU", "GPU"], strategy="default").strategy == "default"
    assert devices.choose(devices=["CPU", "CPU"], strategy="mirrored").count == 2
    assert devices.choose(devices=["GPU"]).steps_per_execution == devices.STEPS_PER_EXECUTION
    assert "16 steps per call" in str(devices.choose(devices=["GPU"]))
    assert devices.choose(devices=["CPU"]).steps_per_execution == 1  # no gain on a CPU
    assert devices.choose(devices=["CPU"], steps_per_execution=4).steps_per_execution == 4
    assert devices.choose(devices=["CPU"], steps_per_execution=1).steps_per_execution == 1
    assert devices.choose(devices=["GPU", "GPU"]).steps_per_execution == 1  # mirrored
    assert devices.choose(devices=["TPU"]).steps_per_execution == 1


def test_bad_device_requests_are_refused():
    with pytest.raises(ValueError, match="precision"):
        devices.choose("float8", devices=["CPU"])
    with pytest.raises(ValueError, match="strategy"):
        devices.choose(strategy="horovod", devices=["CPU"])
    with pytest.raises(ValueError, match="needs a TPU"):
        devices.choose(strategy="tpu", devices=["CPU", "GPU"])
    with pytest.raises(ValueError, match="steps_per_execution must be at least 1"):
        devices.choose(devices=["CPU"], steps_per_execution=0)


def test_cpu_flag_detection():
    assert devices.cpu_has_bf16({"avx512_bf16"}) and not devices.cpu_has_bf16({"avx2"})
    assert isinstance(devices.cpu_flags(), set)


def test_onednn_is_asked_for_only_before_tensorflow_and_only_when_unset(monkeypatch):
    import sys

    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    monkeypatch.delenv("GENCOMP_TF_DEFAULTS", raising=False)
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
    assert devices.prefer_onednn() and os.environ["TF_ENABLE_ONEDNN_OPTS"] == "1"
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")  # the user's choice stands
    assert not devices.prefer_onednn() and os.environ["TF_ENABLE_ONEDNN_OPTS"] == "0"
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS")
    monkeypatch.setenv("GENCOMP_TF_DEFAULTS", "1")  # TensorFlow's own defaults, untouched
    assert not devices.prefer_onednn() and "TF_ENABLE_ONEDNN_OPTS" not in os.environ
    monkeypatch.delenv("GENCOMP_TF_DEFAULTS")
    monkeypatch.setitem(sys.modules, "tensorflow", object())  # imported already: too late
    assert not devices.prefer_onednn() and "TF_ENABLE_ONEDNN_OPTS" not in os.environ


# TensorFlow's log lines as they come: INFO, ERROR, the older format's WARNING, absl's notice
SAMPLE_LOG_LINES = (
    "I0000 00:00:1795791546.147714    2388 cudart_stub.cc:31] Could not find cuda drivers",
    "E0000 00:00:1795791553.622411    2388 cuda_platform.cc:52] failed call to cuInit",
    "2024-03-05 10:00:00.000001: W tensorflow/core/x.cc:12] the older format",
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR")


def test_the_log_level_hides_tensorflows_lines_by_severity():
    hidden = {level: [devices.below_log_level(ln, level) for ln in SAMPLE_LOG_LINES]
              for level in range(4)}
    assert hidden == {0: [False, False, False, False], 1: [True, False, False, False],
                      2: [True, False, True, True], 3: [True, True, True, True]}
    for other in ("UserWarning: a warning", "Traceback (most recent call last):",
                  "E = 0.5", "I0000 is not a log line without the rest"):
        assert not devices.below_log_level(other, 3)


def test_the_start_up_filter_holds_back_hidden_log_lines_only(capfd):
    error = b"E0000 00:00:1795791553.622411    2388 cuda_platform.cc:52] failed call to cuInit\n"
    warning = b"W0000 00:00:1795791553.622411    2388 x.cc:1] a warning\n"
    with devices._held_back_logs(2):
        os.write(2, b"UserWarning: a Python warning\n" + error + warning + b"no newline")
    assert capfd.readouterr().err == "UserWarning: a Python warning\n" + error.decode() \
        + "no newline"
    # The block fails: what was held back is written after all, since it may say why.
    with pytest.raises(ImportError), devices._held_back_logs(3):
        os.write(2, b"before\n" + error)
        raise ImportError("the library did not load")
    assert capfd.readouterr().err == "before\n" + error.decode()


def test_a_cpu_without_onednn_is_told_how_to_turn_it_on():
    off = devices.choose(devices=["CPU"], flags=set(), onednn=False)
    assert off.onednn is False and "oneDNN off" in str(off)
    assert "TF_ENABLE_ONEDNN_OPTS=1" in off.reason and "import gencomp_utils first" in off.reason
    on = devices.choose(devices=["CPU"], flags=set(), onednn=True)
    assert "oneDNN on" in str(on) and "TF_ENABLE_ONEDNN_OPTS" not in on.reason
    assert devices.choose(devices=["CPU"], flags=set()).onednn is None  # mocked: unknown


def test_importing_gencomp_utils_first_gives_tensorflow_onednn():
    """In a fresh Python with the variable unset: gencomp_utils, then TensorFlow, runs oneDNN."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_ENABLE_ONEDNN_OPTS",
                                                            "GENCOMP_TF_DEFAULTS")}
    code = ("import gencomp_utils, tensorflow, os\n"
            "from gencomp_utils import devices\n"
            "print(os.environ['TF_ENABLE_ONEDNN_OPTS'], devices.onednn_enabled(), "
            "devices.choose().onednn)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["1", "True", "True"]


# --------------------------------------------------------------------------------------------
# The engine, in process

keras = pytest.importorskip("keras")
from gencomp_utils import models, plots, training  # noqa: E402


def tiny_data(n=64, seed=0):
    """Two-class-ish 16x16 images: a bright bar whose position is the label."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 10
    x = rng.random((n, 16, 16, 1)).astype("float32") * 0.2
    for i, label in enumerate(y):
        x[i, 2:14, label + 3] = 1.0
    return x, y


def tiny_vae(**kw):
    return lambda: models.ConditionalVAE((16, 16, 1), num_classes=10, latent_dim=4,
                                         base_filters=4, **kw)


def tiny_gan(**kw):
    return lambda: models.ACGAN((16, 16, 1), num_classes=10, latent_dim=4, base_filters=4, **kw)


CPU = devices.choose("float32", devices=["CPU"], flags=set())


def test_train_records_epochs_grids_and_json_then_loads(tmp_path):
    data = training.ArrayData(*tiny_data())
    kw = dict(name="vae", batch_size=16, seed=0, preset="test", out_dir=tmp_path / "vae",
              eval_every=4, device=CPU, progress=False)
    run = training.train(tiny_vae(), data, 10, **kw)
    h = run.history
    assert run.how == "trained" and h["status"] == "completed"
    assert h["step"] == 10 and h["images_seen"] == 160 and h["steps_per_epoch"] == 4
    assert [e["steps"] for e in h["epochs"]] == [4, 4, 2]
    for e in h["epochs"]:
        assert e["seconds"] > 0 and e["images_per_second"] > 0
        assert all(np.isfinite(v) for v in e["metrics"].values())
        assert set(e["metrics"]) == {"loss", "reconstruction", "kl", "elbo"}
    assert [ev["step"] for ev in h["evals"]] == [0, 4, 8, 10]
    saved = load_history(tmp_path / "vae")
    assert saved["step"] == 10 and saved["key"] == run.key
    frames, steps = run.grids()
    assert steps == [0, 4, 8, 10] and frames[0].shape == plots.grid_array(
        np.zeros((100, 16, 16, 1)), rows=10).shape
    assert run.key.startswith("test-vae-") and run.key.endswith("-seed0")
    assert len(list(run.run_dir.glob("ckpt-*.index"))) == 3  # keep=3 of 3 epochs

    again = training.train(tiny_vae(), data, 10, **kw)
    assert again.how == "loaded" and again.key == run.key
    z = run.model.latent(4, seed=0)
    np.testing.assert_array_equal(again.model.sample(z=z, labels=[0, 1, 2, 3]),
                                  run.model.sample(z=z, labels=[0, 1, 2, 3]))
    # A changed configuration gets a new key: never a stale model.
    other = training.train(tiny_vae(beta=0.5), data, 2, **{**kw, "out_dir": tmp_path / "b"})
    assert other.key != run.key and other.how == "trained"


def test_a_checkpoint_that_cannot_be_read_is_passed_over(tmp_path, capsys):
    """The newest checkpoint cut short (a disconnect while writing to Drive): the run resumes
    from the one before, untouched by the damaged file, and says so."""
    data = training.ArrayData(*tiny_data())
    kw = dict(name="vae", batch_size=16, seed=0, preset="test", device=CPU, progress=False)
    whole = training.train(tiny_vae(), data, 12, out_dir=tmp_path / "a", **kw)
    first = training.train(tiny_vae(), data, 8, out_dir=tmp_path / "b",
                           **{**kw, "preset": "cut"})
    (newest,) = first.run_dir.glob("ckpt-8.data-*")
    newest.write_bytes(newest.read_bytes()[:100])
    capsys.readouterr()
    resumed = training.train(tiny_vae(), data, 12, out_dir=tmp_path / "b", **{**kw, "preset": "cut"})
    assert "cannot be read" in capsys.readouterr().out
    assert resumed.how == "resumed" and resumed.history["resumes"][-1]["step"] == 4
    z = whole.model.latent(4, seed=0)
    np.testing.assert_allclose(resumed.model.sample(z=z, labels=[0, 1, 2, 3]),
                               whole.model.sample(z=z, labels=[0, 1, 2, 3]), atol=1e-5)


def test_same_seed_gives_the_same_result(tmp_path):
    data = training.ArrayData(*tiny_data())
    runs = [training.train(tiny_gan(), data, 6, name="gan", batch_size=16, seed=3,
                           out_dir=tmp_path / str(i), device=CPU, progress=False, retrain=True)
            for i in range(2)]
    a, b = ([e["metrics"] for e in r.epochs] for r in runs)
    assert a == b
    other = training.train(tiny_gan(), data, 6, name="gan", batch_size=16, seed=4,
                           out_dir=tmp_path / "s4", device=CPU, progress=False)
    assert [e["metrics"] for e in other.epochs] != a


@keras.saving.register_keras_serializable(package="gencomp_tests")
class PoisonedVAE(models.ConditionalVAE):
    """Feeds NaN images from optimiser step ``poison_at`` on: the loss turns NaN there."""

    poison_at = 8

    def train_step(self, data):
        import tensorflow as tf

        x, y = data
        x = tf.where(self.optimizer.iterations >= self.poison_at, float("nan"), x)
        return super().train_step((x, y))


@pytest.mark.parametrize("per_call,where,first,last", [
    (1, r"at step 9", 9, 9),
    (16, r"by step 12 \(in steps 9-12, which ran in one call\)", 9, 12)])
def test_a_diverged_run_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(
        tmp_path, per_call, where, first, last):
    data = training.ArrayData(*tiny_data())
    build = lambda: PoisonedVAE((16, 16, 1), num_classes=10, latent_dim=4,  # noqa: E731
                                base_filters=4)
    with pytest.raises(training.TrainingDiverged, match=where + r": .*nan.*"
                       r"last good checkpoint \(step 8\)"):
        training.train(build, data, 16, name="nan", batch_size=16, out_dir=tmp_path,
                       device=CPU.replace(steps_per_execution=per_call), progress=False)
    h = load_history(tmp_path)
    assert h["status"] == "diverged"
    assert (h["diverged"]["first_step"], h["diverged"]["step"]) == (first, last)
    assert [e["step"] for e in h["epochs"]] == [4, 8]


def test_several_steps_per_call_train_the_same_model_and_evaluate_at_the_same_steps(tmp_path):
    """Epochs of 4 steps, evaluations every 3: the engine splits its fit calls at 3, 6 and 9 so
    that evaluations see the model of exactly those steps, and the batches are the same."""
    data = training.ArrayData(*tiny_data())
    runs = {}
    for per_call in (1, 16):
        device = CPU.replace(steps_per_execution=per_call)
        runs[per_call] = training.train(
            tiny_vae(), data, 10, name=f"vae{per_call}", batch_size=16, seed=0, eval_every=3,
            out_dir=tmp_path / str(per_call), device=device, progress=False, retrain=True)
    one, many = runs[1], runs[16]
    assert many.model.steps_per_execution == 16 and one.model.steps_per_execution == 1
    for r in (one, many):
        assert [e["step"] for e in r.history["evals"]] == [0, 3, 6, 9, 10]
        assert [(e["epoch"], e["steps"]) for e in r.history["epochs"]] == [(0, 4), (1, 4),
                                                                          (2, 2)]
    for a, b in zip(one.model.weights, many.model.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6)
    for ea, eb in zip(one.history["epochs"], many.history["epochs"]):
        for k in ea["metrics"]:
            assert ea["metrics"][k] == pytest.approx(eb["metrics"][k], rel=1e-4)
    for ea, eb in zip(one.history["evals"], many.history["evals"]):
        assert ea["sharpness"] == pytest.approx(eb["sharpness"], rel=1e-3)


def test_part_of_an_epoch_is_the_same_batches_as_the_whole():
    x, y = tiny_data(80)
    whole = [b.numpy() for _, b in training.epoch_dataset(x, y, 16, 3, 2)]
    parts = [b.numpy() for first, n in ((0, 1), (1, 3), (4, 9))
             for _, b in training.epoch_dataset(x, y, 16, 3, 2, first=first, batches=n)]
    assert len(whole) == 5
    np.testing.assert_array_equal(np.concatenate(parts), np.concatenate(whole))


def test_bad_arguments_are_refused(tmp_path):
    x, y = tiny_data()
    with pytest.raises(ValueError, match="steps"):
        training.train(tiny_vae(), (x, y), 0, name="v", device=CPU)
    with pytest.raises(ValueError, match="out of range"):
        training.train(tiny_vae(), (x, y + 5), 2, name="v", device=CPU, progress=False)
    with pytest.raises(ValueError, match="fewer than one batch"):
        training.train(tiny_vae(), (x[:8], y[:8]), 2, name="v", batch_size=16, device=CPU,
                       progress=False)
    with pytest.raises(TypeError, match="data must be"):
        training.train(tiny_vae(), x, 2, name="v", device=CPU)


def test_collapse_is_measured_not_hidden():
    same = np.zeros((20, 4, 4, 1))
    labels = np.repeat(np.arange(2), 10)
    assert training.diversity(same, labels) == 0.0
    varied = np.random.default_rng(0).random((20, 4, 4, 1))
    assert training.diversity(varied, labels) > training.COLLAPSE_DIVERSITY


# --------------------------------------------------------------------------------------------
# In new processes: resume after SIGKILL, and two replicas

SCRIPT = textwrap.dedent("""
    import json, os, sys, time
    import numpy as np
    sys.path.insert(0, {tests!r})
    from test_training import tiny_data, tiny_vae
    from gencomp_utils import devices, training

    slow = float(os.environ.get("SLOW", "0"))
    def eval_fn(model, step):
        time.sleep(slow)
        return {{"step_seen": step}}

    run = training.train(tiny_vae(), training.ArrayData(*tiny_data()), 24, name="kill",
                         batch_size=16, preset="test", out_dir=sys.argv[1], eval_every=1,
                         eval_fn=eval_fn, device=devices.choose("float32"), progress=False)
    print("RESULT", json.dumps({{"how": run.how, "step": run.history["step"],
                                "metrics": [e["metrics"] for e in run.epochs]}}))
""")


def _python(script: Path, *args, env=None, **kw):
    return subprocess.Popen([sys.executable, str(script), *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def _result(proc, timeout=120):
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-3000:]
    line = [ln for ln in out.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):]), out


def test_resume_in_a_new_process_after_sigkill(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT.format(tests=str(Path(__file__).parent)))
    env = {**os.environ, "GENCOMP_CACHE_DIR": str(tmp_path / "cache"), "SLOW": "0.25"}
    proc = _python(script, tmp_path / "out", env=env)
    ckpts = tmp_path / "cache" / "checkpoints"
    deadline = time.time() + 90
    while time.time() < deadline:  # wait for the second checkpoint (step 8), then kill
        if len(list(ckpts.glob("*/ckpt-*.index"))) >= 2:
            break
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("no checkpoint within 90 s")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    # The last complete checkpoint, as CheckpointManager records it (a state file written just
    # before the kill may have no checkpoint: it is ignored and rewritten).
    record = next(ckpts.glob("*/checkpoint")).read_text()
    killed_at = int(record.split('model_checkpoint_path: "ckpt-')[1].split('"')[0])
    assert 8 <= killed_at < 24

    resumed, out = _result(_python(script, tmp_path / "out", env={**env, "SLOW": "0"}))
    assert f"resuming from the checkpoint at step {killed_at} of 24" in out
    assert resumed["step"] == 24 and len(resumed["metrics"]) == 6
    final = load_history(tmp_path / "out")
    assert final["status"] == "completed" and len(final["resumes"]) == 1
    assert [ev["step"] for ev in final["evals"]] == list(range(25))  # every step's grid, once
    assert all((tmp_path / "out" / ev["grid"]).is_file() for ev in final["evals"])

    # The resumed run equals an uninterrupted one (same seed, same batches, same noise).
    fresh, _ = _result(_python(script, tmp_path / "fresh",
                               env={**env, "GENCOMP_CACHE_DIR": str(tmp_path / "cache2")}))
    np.testing.assert_allclose([m["loss"] for m in resumed["metrics"]],
                               [m["loss"] for m in fresh["metrics"]], rtol=1e-5)


MIRRORED = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, {tests!r})
    from gencomp_utils import devices
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]  # two logical CPUs, before TF runs anything
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(2)])
    from test_training import tiny_data, tiny_vae
    from gencomp_utils import training

    choice = devices.choose("float32", strategy="mirrored")
    strategy = devices.make_strategy(choice)
    # asked for 16 steps per call, which Keras cannot run mirrored: the engine runs 1
    run = training.train(tiny_vae(), training.ArrayData(*tiny_data(128)), 40, name="mirrored",
                         batch_size=32, out_dir=sys.argv[1], strategy=strategy, progress=False,
                         device=choice.replace(steps_per_execution=16))
    one = training.train(tiny_vae(), training.ArrayData(*tiny_data(128)), 40, name="single",
                         batch_size=32, out_dir=sys.argv[1] + "-single",
                         device=devices.choose("float32", strategy="default"), progress=False)
    print("RESULT", json.dumps({{"replicas": strategy.num_replicas_in_sync,
                                "count": choice.count, "recorded": run.history["replicas"],
                                "per_call": [choice.steps_per_execution,
                                             run.model.steps_per_execution],
                                "loss": [e["metrics"]["loss"] for e in run.epochs],
                                "single": [e["metrics"]["loss"] for e in one.epochs]}}))
""")


def test_two_replica_mirrored_strategy_trains_and_converges(tmp_path):
    script = tmp_path / "mirrored.py"
    script.write_text(MIRRORED.format(tests=str(Path(__file__).parent)))
    env = {**os.environ, "GENCOMP_CACHE_DIR": str(tmp_path / "cache")}
    res, _ = _result(_python(script, tmp_path / "out", env=env), timeout=180)
    assert res["replicas"] == 2 and res["count"] == 2 and res["recorded"] == 2
    assert res["per_call"] == [1, 1]
    loss, single = np.array(res["loss"]), np.array(res["single"])
    assert np.all(np.isfinite(loss)) and np.all(np.diff(loss) < 0)
    # Each replica's loss is divided by 2 and the gradients summed: the same descent as one
    # device on the whole batch (up to per-replica batch-norm statistics).
    np.testing.assert_allclose(loss, single, rtol=0.05)


# --------------------------------------------------------------------------------------------
# Streaming from image files (CelebA)


def test_stream_reads_files_batch_by_batch_and_trains():
    from gencomp_utils import models, training

    stream = training.Stream("celeba", "train[:48]", 16)
    src = stream.source()
    assert src.images is None and len(src.files) == len(stream) == 48  # paths, not pixels
    assert all(f.endswith(".jpg") for f in src.files)
    with pytest.raises(TypeError, match="read batch by batch"):
        stream.arrays()
    first = [y.numpy().tolist() for _, y in stream.dataset(16, seed=3, epoch=0)]
    again = [y.numpy().tolist() for _, y in stream.dataset(16, seed=3, epoch=0)]
    later = [y.numpy().tolist() for _, y in stream.dataset(16, seed=3, epoch=1)]
    assert first == again and len(first) == 3 and first != later  # order: (seed, epoch) only
    whole = np.concatenate([x.numpy() for x, _ in stream.dataset(16, seed=3, epoch=0)])
    rest = np.concatenate([x.numpy() for x, _ in stream.dataset(16, seed=3, epoch=0, first=1)])
    one = np.concatenate([x.numpy() for x, _ in stream.dataset(16, seed=3, epoch=0, first=1,
                                                                 batches=1)])
    np.testing.assert_array_equal(rest, whole[16:])
    np.testing.assert_array_equal(one, whole[16:32])
    x, y = stream.head(5)
    assert x.shape == (5, 16, 16, 3) and 0 <= x.min() and x.max() <= 1 and set(y) <= {0, 1}

    run = training.train(lambda: models.ACGAN((16, 16, 3), 2, 4, 4, seed=0), stream, 6,
                         name="gan_stream", batch_size=16, preset="test", progress=False,
                         verbose=False)
    assert run.history["status"] == "completed" and run.history["train_images"] == 48
    assert run.history["config"]["data"]["name"] == "celeba"
    assert np.all(np.isfinite(run.metric("d_loss")))


def test_stream_with_cache_file_fills_it_before_training(tmp_path, monkeypatch):
    from gencomp_utils import models, training

    monkeypatch.setenv("GENCOMP_CACHE_DIR", str(tmp_path / "cache"))
    stream = training.Stream("celeba", "train[:40]", 16, cache=True)
    run = training.train(lambda: models.ConditionalVAE((16, 16, 3), 2, 4, 4,
                                                       likelihood="gaussian", seed=0),
                         stream, 4, name="vae_cached", batch_size=16, preset="test",
                         progress=False, verbose=False)
    assert run.history["status"] == "completed"
    cached = list((tmp_path / "cache" / "tfdata").glob("celeba_*.npy"))
    assert len(cached) == 1 and not list((tmp_path / "cache" / "tfdata").glob("*.part*"))


def test_every_pipeline_the_engine_trains_on_has_autotuning_off(monkeypatch):
    """tf.data's autotuning made each fit call wait, at its end, for the autotuning thread's
    next wake-up (an epoch of 3 s of work took 5.11 s). Every dataset fit sees must have it off;
    tf.data's own default has it on, so this check can fail."""
    import tensorflow as tf

    from gencomp_utils import classifiers

    assert tf.data.Dataset.range(3).options().autotune.enabled in (None, True)
    seen = []
    fit = keras.Model.fit

    def recording_fit(self, x=None, *args, **kwargs):
        seen.append((type(self).__name__, x.options().autotune.enabled))
        return fit(self, x, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", recording_fit)
    training.train(tiny_vae(), training.ArrayData(*tiny_data()), 6, name="vae_steady",
                   batch_size=16, preset="test", retrain=True, progress=False, verbose=False)
    training.train(lambda: models.ACGAN((16, 16, 3), 2, 4, 4, seed=0),
                   training.Stream("celeba", "train[:32]", 16), 3,
                   name="gan_steady", batch_size=16, preset="test", retrain=True,
                   progress=False, verbose=False)
    classifiers.get_classifier("mnist", "test[:64]", "test[64:96]", steps=2, batch_size=16,
                               image_size=16, base_filters=4, retrain=True, verbose=False)
    classifiers.get_classifier("celeba", "train[:32]", "train[32:48]", steps=2, batch_size=16,
                               image_size=16, base_filters=4, retrain=True, verbose=False)
    # 64 images in batches of 16 for 6 steps: two epochs, two fit calls; 32 streamed images for
    # 3 steps: two more; one per classifier.
    assert [name for name, _ in seen][:4] == ["ConditionalVAE"] * 2 + ["ACGAN"] * 2, seen
    assert len(seen) == 6 and all(enabled is False for _, enabled in seen), seen


# --------------------------------------------------------------------------------------------
# The accelerator configurations, run on this CPU: exactly what choose() returns for a single
# GPU (mixed_float16 with loss scaling, XLA, 16 steps per call) and for a TPU (mixed_bfloat16,
# XLA, 1 step per call; the default strategy stands in for the TPU strategy)

ACCELERATORS = {
    "gpu": devices.choose(devices=["CPU", "GPU"], gpu_compute_capability=(7, 5)),
    "tpu": devices.choose(devices=["CPU", "TPU"]).replace(strategy="default"),
}


def test_the_accelerator_configurations_are_what_choose_picks():
    gpu, tpu = ACCELERATORS["gpu"], ACCELERATORS["tpu"]
    assert (gpu.precision, gpu.jit_compile, gpu.steps_per_execution) == ("mixed_float16", True,
                                                                         16)
    assert (tpu.precision, tpu.jit_compile, tpu.steps_per_execution) == ("mixed_bfloat16", True,
                                                                         1)


@pytest.mark.parametrize("accelerator", list(ACCELERATORS))
@pytest.mark.parametrize("kind", ["vae", "gan"])
def test_both_models_train_resume_and_save_in_the_accelerator_configuration(
        tmp_path, accelerator, kind):
    from keras.optimizers import LossScaleOptimizer

    choice = ACCELERATORS[accelerator]

    def build():
        kw = dict(precision=choice.precision)
        if kind == "vae":
            return tiny_vae(**kw)()
        gan = tiny_gan(**kw)()
        # a faster learning rate than the default 2e-4, so that d_class falls within 40 steps
        adam = keras.optimizers.Adam
        gan.compile(g_optimizer=adam(3e-3, beta_1=0.5), d_optimizer=adam(3e-3, beta_1=0.5))
        return gan

    data = training.ArrayData(*tiny_data(128))
    kw = dict(name=kind, batch_size=16, seed=0, preset="test", out_dir=tmp_path / "out",
              device=choice, progress=False, verbose=False)
    first = training.train(build, data, 16, **kw)
    run = training.train(build, data, 40, **kw)  # a new model, resumed from step 16
    assert (first.how, run.how) == ("trained", "resumed")
    assert run.history["resumes"][0]["step"] == 16 and run.history["step"] == 40
    model = run.model
    assert model.jit_compile is True and model.steps_per_execution == choice.steps_per_execution
    assert model.precision == choice.precision and run.history["precision"] == choice.precision
    for opt in training._optimizers(model).values():
        assert isinstance(opt, LossScaleOptimizer) == (choice.precision == "mixed_float16")
    for name in run.history["metric_names"]:
        assert np.all(np.isfinite(run.metric(name))), name
    falls, by = ("loss", 0.95) if kind == "vae" else ("d_class", 0.8)
    values = run.metric(falls)  # epochs of 8 steps
    assert values[-1] < by * values[0], (falls, values)

    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.precision == choice.precision
    z, labels = model.latent(6, seed=1), [0, 1, 2, 3, 4, 5]
    np.testing.assert_array_equal(loaded.sample(z=z, labels=labels),
                                  model.sample(z=z, labels=labels))
