"""The training-speed benchmark on tiny shapes: FLOP counts against hand counts, the reference and
our training steps, the bfloat16 path, the interleaving, the fairness flag, and the command line."""
from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from benchmarks import bench  # noqa: E402
from gencomp_utils import devices, load_numpy, models  # noqa: E402
from gencomp_utils.presets import get_preset  # noqa: E402

TINY = dict(num_classes=10, latent_dim=4, base_filters=4)


@pytest.fixture(scope="module")
def digits16():
    """256 MNIST digits (or the generated stand-ins) at 16x16, in [0, 1]."""
    return load_numpy("mnist", "test[:256]", image_size=16)


# --------------------------------------------------------------------------------------------
# FLOPs


def test_count_flops_of_a_small_stack_equals_the_hand_count():
    from keras import layers

    stack = [layers.Conv2D(4, 3, padding="same"), layers.Flatten(), layers.Dense(10)]
    # Conv2D 3x3, 'same', stride 1: 8x8x1 -> 8x8x4, each of the 256 outputs 3*3*1 multiply-adds:
    # 2304 MACs. Flatten: 256 features; Dense 256 -> 10: 2560 MACs. Two FLOPs (a multiply and an
    # add) per MAC: 2 * (2304 + 2560) = 9728 (the MAC count alone, 4864, would fail).
    assert bench.count_flops(stack, (8, 8, 1)) == 9728
    # The same stack as a Sequential model with its own input shape gives the same count.
    seq = keras.Sequential([keras.Input((8, 8, 1))] + [layers.Conv2D(4, 3, padding="same"),
                                                       layers.Flatten(), layers.Dense(10)])
    assert bench.count_flops(seq) == 9728


def test_count_flops_of_a_transposed_convolution_and_a_stride():
    from keras import layers

    # Conv2DTranspose, kernel 2, stride 2: 4x4x2 -> 8x8x3. Each of the 4*4*2 = 32 inputs is
    # spread over a 2x2x3 patch: 32 * 12 = 384 MACs (cross-check: each of the 8*8*3 = 192
    # outputs receives exactly one tap from each of the 2 input channels: 192 * 2 = 384).
    assert bench.count_flops([layers.Conv2DTranspose(3, 2, strides=2)], (4, 4, 2)) == 768
    # Conv2D kernel 4, stride 2, 'same': 16x16x1 -> 8x8x4: 8*8*4 outputs of 4*4*1 MACs.
    assert bench.count_flops([layers.Conv2D(4, 4, strides=2, padding="same")], (16, 16, 1)) \
        == 2 * (8 * 8 * 4 * 4 * 4 * 1)
    with pytest.raises(ValueError, match="input_shape"):
        bench.count_flops([layers.Dense(3)])


def test_count_flops_walks_the_projects_functional_generator():
    gan = models.ACGAN((16, 16, 1), **TINY)
    # 16x16x1, base 4: filters [4, 8], start 4x4. Generator:
    project = (4 + 10) * (4 * 4 * 8)           # Dense (z 4 + one-hot 10) -> 4*4*8 = 1792
    up0 = 4 * 4 * 8 * (4 * 4 * 4)              # ConvT k4 s2: 4x4x8 -> 8x8x4 = 8192
    to_image = 8 * 8 * 4 * (4 * 4 * 1)         # ConvT k4 s2: 8x8x4 -> 16x16x1 = 4096
    assert bench.count_flops(gan.generator) == 2 * (project + up0 + to_image) == 2 * 14080


def test_step_flops_follows_the_documented_convention():
    vae = models.ConditionalVAE((16, 16, 1), **TINY)
    gan = models.ACGAN((16, 16, 1), **TINY)
    enc, dec = bench.count_flops(vae.encoder), bench.count_flops(vae.decoder)
    g, d = bench.count_flops(gan.generator), bench.count_flops(gan.discriminator)
    assert min(enc, dec, g, d) > 0
    # VAE: forward + backward (inputs) + backward (weights) of encoder and decoder.
    assert bench.step_flops(vae, 8) == 8 * 3 * (enc + dec)
    # GAN: D's update = G forward (1) + D on real (3) + D on fake (3);
    #      G's update = G (3) + D passing gradients through (2).
    assert bench.step_flops(gan, 8) == 8 * ((g + 3 * d + 3 * d) + (3 * g + 2 * d))


# --------------------------------------------------------------------------------------------
# The convolutions of a step


def _by_type(convs):
    return {t: sum(c["type"] == t for c in convs) for t in bench.CONV_OPS}


def test_live_convolutions_match_the_hand_count_of_a_vae_step():
    """Encoder: 2 forward, 2 filter gradients, 1 input gradient (none to the data images).
    Decoder: each transposed convolution forward is an input-gradient kernel (2), with a filter
    gradient (2) and an input gradient, an ordinary convolution (2)."""
    vae = models.ConditionalVAE((28, 28, 1), **TINY)
    vae.compile()
    convs = bench.live_convolutions(vae, 4)
    assert _by_type(convs) == {"Conv2D": 4, "Conv2DBackpropInput": 3, "Conv2DBackpropFilter": 4}
    # one kernel computes an image: the decoder's last layer, not a gradient to the data
    images = [c for c in convs if c["output"] == [4, 28, 28, 1]]
    assert [c["type"] for c in images] == ["Conv2DBackpropInput"]
    assert [4, 4, 1, 4] in images[0]["operands"]  # the to_image kernel (4, 4, 1 out, 4 in)
    first = {"type": "Conv2D", "operands": [[4, 28, 28, 1], [4, 4, 1, 4]],
             "output": [4, 14, 14, 4], "strides": [1, 2, 2, 1], "padding": "SAME"}
    assert any(first.items() <= c.items() for c in convs)


def test_live_convolutions_match_the_hand_count_of_a_gan_step():
    """D's update: G forward (2 input-gradient kernels), D forward on the real and generated
    images as one batch (2), D's filter gradients (2) and the input gradient between its layers
    (1). G's update: G forward (2), D forward (2), D's input gradients down to the image (2), G's
    filter gradients (2) and input gradients (2 ordinary convolutions). Real and generated
    images through D separately would add 2 forward, 2 filter and 1 input-gradient kernels."""
    gan = models.ACGAN((28, 28, 1), **TINY)
    gan.compile()
    convs = bench.live_convolutions(gan, 4)
    assert _by_type(convs) == {"Conv2D": 6, "Conv2DBackpropInput": 7,
                               "Conv2DBackpropFilter": 4}
    # three kernels compute a batch of 4 images: G's last layer in each update, and D's gradient
    # to the generated batch in G's update; D's update reads 8 images, real and generated
    images = [c for c in convs if c["output"] == [4, 28, 28, 1]]
    assert len(images) == 3 and {c["type"] for c in images} == {"Conv2DBackpropInput"}
    assert any(c["type"] == "Conv2D" and c["operands"][0] == [8, 28, 28, 1] for c in convs)


def test_time_convolutions_times_each_kind_and_refuses_others():
    vae, gan = models.ConditionalVAE((16, 16, 1), **TINY), models.ACGAN((16, 16, 1), **TINY)
    with pytest.raises(ValueError, match="compile"):
        bench.live_convolutions(vae, 2)
    vae.compile()
    gan.compile()
    convs = bench.live_convolutions(vae, 2)
    one_each = [next(c for c in convs if c["type"] == t) for t in bench.CONV_OPS]
    ms = bench.time_convolutions(one_each, repeats=2, chain=2)
    assert len(ms) == 3 and all(np.isfinite(m) and m > 0 for m in ms)
    out = bench.conv_times(gan, 2)
    assert out["count"] == len(out["ops"]) == 17
    assert out["ours_ms"] == pytest.approx(sum(o["ours_ms"] for o in out["ops"]))
    assert out["reference_ms"] is None and out["best_ms"] is None
    with pytest.raises(ValueError, match="only Conv2D"):
        bench.time_convolutions([dict(one_each[0], type="MatMul")])


# --------------------------------------------------------------------------------------------
# The two ways of training


def _weights(model):
    return [v.numpy() for v in model.trainable_variables]


def _changed(before, model):
    return any(not np.allclose(a, v.numpy())
               for a, v in zip(before, model.trainable_variables))


@pytest.mark.parametrize("kind", ["vae", "gan"])
def test_reference_step_and_ours_run_with_finite_losses(kind, digits16):
    x, y = digits16
    x = x[:32] if kind == "vae" else x[:32] * 2 - 1
    ds = bench.repeated_dataset(x, y[:32], 8)
    spec = bench.Spec(kind, (16, 16, 1), 10)

    ref_model = bench.build_model(spec, base_filters=4, latent_dim=4)
    parts = ([ref_model.encoder, ref_model.decoder] if kind == "vae"
             else [ref_model.generator, ref_model.discriminator])
    before = [_weights(p) for p in parts]
    ref = bench.ReferenceRunner(ref_model, ds)
    assert ref.run(3) > 0
    losses = ref.losses()
    assert set(losses) == ({"loss"} if kind == "vae" else {"d_loss", "g_loss"})
    assert all(np.isfinite(v) for v in losses.values()), losses
    # Every network the reference trains has moved (for the GAN: both G and D).
    assert all(_changed(b, p) for b, p in zip(before, parts))

    ours = bench.FitRunner(bench.build_model(spec, base_filters=4, latent_dim=4), ds)
    assert ours.run(3) > 0
    assert ours.losses() and all(np.isfinite(v) for v in ours.losses().values()), ours.losses()
    # Several steps per call: a block still trains exactly the steps it times.
    many = bench.FitRunner(bench.build_model(spec, base_filters=4, latent_dim=4), ds,
                           steps_per_execution=4)
    optimizer = many.model.optimizer if kind == "vae" else many.model.d_optimizer
    many.run(6)
    many.run(3)
    assert many.model.steps_per_execution == 4 and int(optimizer.iterations) == 9


def test_reference_vae_loss_is_the_models_loss(digits16):
    """Same weights, same batch: the reference's loss is the model's own (up to the noise)."""
    import tensorflow as tf

    x, y = digits16
    vae = bench.build_model(bench.Spec("vae", (16, 16, 1), 10), base_filters=4, latent_dim=4)
    step = bench.reference_step(vae, learning_rate=0.0)  # no update: the loss at these weights
    ref = np.mean([float(step(tf.constant(x[:64]), tf.constant(y[:64]))["loss"])
                   for _ in range(20)])
    recon, kl = vae.losses_per_image(x[:64], y[:64], training=True)
    ours = float(np.mean(np.asarray(recon) + vae.beta * np.asarray(kl)))
    assert ref == pytest.approx(ours, rel=0.05)


def test_the_bfloat16_path_trains(digits16):
    x, y = digits16
    gan = models.ACGAN((16, 16, 1), precision="mixed_bfloat16", **TINY)
    gan.compile()
    out = gan.fit(x[:48] * 2 - 1, y[:48], batch_size=16, epochs=1, verbose=0)
    assert all(np.isfinite(v[-1]) for v in out.history.values()), out.history

    vae = models.ConditionalVAE((16, 16, 1), precision="mixed_bfloat16", **TINY)
    vae.compile(keras.optimizers.Adam(1e-2))  # a large step, so 20 steps show the fall
    before = vae.evaluate(x[:64], y[:64], batch_size=64, verbose=0, return_dict=True)["loss"]
    out = vae.fit(x[:160], y[:160], batch_size=16, epochs=2, verbose=0, shuffle=False)  # 20 steps
    after = vae.evaluate(x[:64], y[:64], batch_size=64, verbose=0, return_dict=True)["loss"]
    assert all(np.isfinite(v[-1]) for v in out.history.values()), out.history
    assert np.isfinite(after) and after < 0.9 * before, (before, after)


# --------------------------------------------------------------------------------------------
# Timing helpers (pure Python)


def test_interleave_alternates_and_returns_medians():
    calls, rounds_seen = [], []
    times = {"A": iter([3.0, 1.0, 2.0]), "B": iter([10.0, 30.0, 20.0])}

    def fake(name):
        def run():
            calls.append(name)
            return next(times[name])
        return run

    out = bench.interleave({"A": fake("A"), "B": fake("B")}, rounds=3,
                           on_round=lambda r, secs: rounds_seen.append((r, secs)))
    assert calls == ["A", "B", "B", "A", "A", "B"]  # each round starts one later
    assert out["A"] == {"seconds": [3.0, 1.0, 2.0], "median": 2.0}
    assert out["B"] == {"seconds": [10.0, 30.0, 20.0], "median": 20.0}
    assert rounds_seen[1] == (1, {"B": 30.0, "A": 1.0})
    calls.clear()
    bench.interleave({k: (lambda k=k: calls.append(k) or 1.0) for k in "ABC"}, rounds=3)
    assert "".join(calls) == "ABCBCACAB"
    with pytest.raises(ValueError, match="rounds"):
        bench.interleave({"A": fake("A")}, rounds=0)


def test_time_steps_calls_the_step_and_waits_for_its_result():
    calls = []

    class Result:
        def numpy(self):
            time.sleep(0.05)  # the result is ready only now: the wait must be timed
            calls.append("wait")

    def step():
        time.sleep(0.01)
        calls.append("step")
        return {"loss": Result()}

    assert bench.time_steps(step, 3) >= 0.08
    assert calls == ["step", "step", "step", "wait"]


def test_fairness_flag_fires_for_a_slow_reference_only():
    ceiling = 100.0  # GFLOP/s of the float32 matmul
    assert bench.fairness_flag(30.0, ceiling) == bench.UNFAIR  # 30% of the ceiling
    assert "75%" in bench.UNFAIR and "fp32 ceiling" in bench.UNFAIR
    assert bench.fairness_flag(74.9, ceiling) == bench.UNFAIR
    assert bench.fairness_flag(75.0, ceiling) is None
    assert bench.fairness_flag(90.0, ceiling) is None
    assert bench.fairness_flag(50.0, ceiling, fraction=0.5) is None
    with pytest.raises(ValueError, match="ceiling"):
        bench.fairness_flag(1.0, 0.0)


def test_train_with_checkpoints_stops_at_the_budget_or_the_target():
    clock = {"t": 0.0}

    def block(max_seconds):
        clock["t"] += max_seconds
        return max_seconds, 10

    values = iter([5.0, 4.0, 3.0, 2.0])
    trace = bench.train_with_checkpoints(block, 8.0, 4, lambda: next(values))
    assert [t["seconds"] for t in trace] == [2.0, 4.0, 6.0, 8.0]
    assert [t["steps"] for t in trace] == [10, 20, 30, 40]
    values = iter([5.0, 4.0, 3.0, 2.0])
    trace = bench.train_with_checkpoints(block, 8.0, 4, lambda: next(values), target=4.0)
    assert [t["value"] for t in trace] == [5.0, 4.0]


def test_image_spec_and_ceiling_dtype():
    assert bench.image_spec(28) == ((28, 28, 1), 10)
    assert bench.image_spec(32) == ((32, 32, 3), 10)
    assert bench.image_spec(64) == ((64, 64, 3), 2)
    assert bench.image_spec(16) == ((16, 16, 1), 10)
    assert bench.ceiling_dtype("mixed_bfloat16") == "bfloat16"
    assert bench.ceiling_dtype("mixed_float16") == "float16"
    with pytest.raises(ValueError, match="precision"):
        bench.ceiling_dtype("float64")


def test_matmul_ceiling_is_positive():
    c = bench.matmul_ceiling(64, "float32", repeats=2)
    assert c["size"] == 64 and c["dtype"] == "float32" and c["gflops"] > 0 and c["seconds"] > 0


# --------------------------------------------------------------------------------------------
# The command line


def test_main_runs_end_to_end_and_prints_the_table(tmp_path, capsys, monkeypatch):
    """On a CPU with bfloat16 instructions (the flags are injected): ours still in float32."""
    monkeypatch.setattr(devices, "cpu_flags", lambda: {"avx512_bf16", "amx_bf16"})
    out_json = tmp_path / "bench.json"
    code = bench.main(["--sizes", "16", "--rounds", "2", "--steps", "2", "--warmup", "1",
                       "--ceiling-size", "128", "--ceiling-repeats", "2", "--batch-size", "8",
                       "--base-filters", "4", "--preset", "smoke", "--conv-time",
                       "--json", str(out_json)])
    assert code == 0
    text = capsys.readouterr().out
    assert ("| model | size | variant | reference img/s | ours img/s | ours/ref | "
            "ours/ref by round (lowest-highest) |") in text
    assert "| conditional VAE | 16x16x1 | ours (float32, XLA off) |" in text
    assert "| AC-GAN | 16x16x1 |" in text
    assert "float32 ceiling, the engine settings:" in text and "bfloat16 ceiling" in text
    assert "The reference runs in a process of its own with TensorFlow's defaults" in text
    assert "Device settings (devices.choose):" in text
    assert "mixed_float16 + XLA on" in text and "runs unchanged" in text
    results = json.loads(out_json.read_text())
    assert [(r["model"], r["size"]) for r in results["rows"]] == [("vae", "16x16x1"),
                                                                    ("gan", "16x16x1")]
    for r in results["rows"]:
        assert r["reference_img_s"] > 0 and r["ours_img_s"] > 0 and r["peak_rss_mb"] > 0
        assert r["ratio"] == pytest.approx(r["ours_img_s"] / r["reference_img_s"])
        assert r["round_ratios"] == pytest.approx([a / b for a, b in zip(
            r["reference_seconds"], r["ours_seconds"])]) and len(r["round_ratios"]) == 2
        lowest, highest = min(r["round_ratios"]), max(r["round_ratios"])
        assert f"| {r['ratio']:.2f}x | {lowest:.2f}-{highest:.2f}x |" in text
        assert r["step_gflop"] > 0 and r["flag"] in (None, bench.UNFAIR)
        assert all(np.isfinite(v) for v in r["reference_losses"].values())
        c = r["convolutions"]  # --conv-time: ours' kernels here and in the reference process
        assert c["count"] == len(c["ops"]) > 0
        assert c["best_ms"] == pytest.approx(sum(min(o["ours_ms"], o["reference_ms"])
                                                 for o in c["ops"]))
        assert c["target_step_ms"] == pytest.approx(c["reference_step_ms"] / bench.SPEED_TARGET)
    assert "| model | size | kernels per step | ours' kernels ms |" in text
    assert set(results["ceilings"]) >= {"float32", "bfloat16"}
    if results["onednn"] != results["reference_onednn"]:  # both float32 ceilings are measured
        assert "float32_tf_defaults" in results["ceilings"]
        assert "float32 ceiling, TensorFlow's defaults:" in text


def test_the_reference_process_runs_with_tensorflows_defaults(monkeypatch):
    """The reference trains in a child process whose environment leaves TensorFlow's oneDNN
    setting to TensorFlow, whatever ours uses; the parent's environment is left as it was."""
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "1")
    monkeypatch.delenv("GENCOMP_TF_DEFAULTS", raising=False)
    with bench.ReferenceProcess() as reference:
        env = reference.call("environ", "TF_ENABLE_ONEDNN_OPTS", "GENCOMP_TF_DEFAULTS")
        spec = bench.Spec("gan", (16, 16, 1), 10)
        flops = reference.call("build", spec, 4, 4, 1.0, 0, 8, 32)
        seconds = reference.call("run", 2)
        losses = reference.call("losses")
        layer_kinds = reference.call("layers")
        with pytest.raises(RuntimeError, match="unknown command"):
            reference.call("nonsense")
    assert env["pid"] != os.getpid()
    assert env["TF_ENABLE_ONEDNN_OPTS"] is None and env["GENCOMP_TF_DEFAULTS"] == "1"
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "1" and "GENCOMP_TF_DEFAULTS" not in os.environ
    assert flops == bench.step_flops(bench.build_model(spec, 4, 4), 8)
    assert seconds > 0 and set(losses) == {"d_loss", "g_loss"}
    assert all(np.isfinite(v) for v in losses.values())
    # the tutorials' layers: Keras's own dropout and (transposed) convolutions
    assert {"Dropout", "Conv2DTranspose", "Conv2D"} <= set(layer_kinds)
    assert not reference.process.is_alive()


def test_part_variants_follow_the_device_choice():
    cpu = devices.DeviceChoice("CPU", 1, False, "float32", "default", "", onednn=True,
                               steps_per_execution=16)
    gpu = devices.DeviceChoice("GPU", 1, True, "mixed_float16", "default", "",
                               onednn=None, steps_per_execution=16)
    assert bench.part_variants(cpu, reference_onednn=False) == [
        bench.DROPOUT_PART, bench.STEPS_PART, bench.AUTOTUNE_PART, bench.ONEDNN_PART]
    assert bench.part_variants(cpu.replace(steps_per_execution=1), False) == [
        bench.DROPOUT_PART, bench.AUTOTUNE_PART, bench.ONEDNN_PART]
    # where TensorFlow turns oneDNN on by itself, asking for it changes nothing: not a part
    assert bench.ONEDNN_PART not in bench.part_variants(cpu, reference_onednn=True)
    assert bench.part_variants(gpu, reference_onednn=None) == [bench.STEPS_PART,
                                                                bench.AUTOTUNE_PART]


def test_part_verdicts_keep_only_what_gains_somewhere_and_slows_nothing():
    def row(**gains):
        return {"model": "vae", "size": "28x28x1",
                "gains": {k: {"gain": g, "round_gains": [g]} for k, g in gains.items()}}

    rows = [row(a=1.06, b=1.04, c=1.30, d=1.02), row(a=1.00, b=1.04, c=0.95, d=1.02)]
    verdicts = bench.part_verdicts(rows)
    assert {k: v["keep"] for k, v in verdicts.items()} == {
        "a": True, "b": False, "c": False, "d": False}
    assert (verdicts["c"]["lowest"], verdicts["c"]["highest"]) == (0.95, 1.30)
    table = bench.format_parts_table(rows)
    assert table.splitlines()[-1] == "| **verdict** | | keep | delete | delete | delete |"
    assert "| conditional VAE | 28x28x1 | 1.06x (1.06-1.06) |" in table


def test_parts_mode_times_the_engine_without_each_part(tmp_path, capsys, monkeypatch):
    """Every part of the CPU choice is taken away in turn (the dropout only where there is
    some: the AC-GAN): each variant trains, and the gains are the variants' median times over
    the engine's."""
    monkeypatch.setattr(devices, "cpu_flags", lambda: set())
    choose = devices.choose  # with several steps per call, as on one GPU, to take them away too
    monkeypatch.setattr(devices, "choose", lambda *a, **k: choose(*a, **k).replace(
        steps_per_execution=4))
    out_json = tmp_path / "parts.json"
    assert bench.main(["--parts", "--sizes", "16", "--rounds", "2", "--steps", "2",
                       "--warmup", "1", "--ceiling-size", "64", "--ceiling-repeats", "1",
                       "--batch-size", "8", "--base-filters", "4", "--preset", "smoke",
                       "--json", str(out_json)]) == 0
    text = capsys.readouterr().out
    results = json.loads(out_json.read_text())
    assert results["rows"] == [] and [r["model"] for r in results["parts"]] == ["vae", "gan"]
    expected = bench.part_variants(devices.choose("auto"), results["reference_onednn"])
    assert expected[:3] == [bench.DROPOUT_PART, bench.STEPS_PART, bench.AUTOTUNE_PART]
    vae, gan = results["parts"]
    assert list(gan["gains"]) == expected and list(vae["gains"]) == expected[1:]
    for row in (vae, gan):
        assert set(row["seconds"]) == {"engine", *row["gains"]}
        for part, g in row["gains"].items():
            ratio = [a / b for a, b in zip(row["seconds"][part], row["seconds"]["engine"])]
            assert g["round_gains"] == pytest.approx(ratio) and len(ratio) == 2
            assert g["gain"] == pytest.approx(np.median(row["seconds"][part])
                                              / np.median(row["seconds"]["engine"]))
    assert "## What each speed part gains" in text and "| **verdict** |" in text
    assert "| conditional VAE | 16x16x1 | - |" in text  # no dropout to take away
    assert set(results["part_verdicts"]) == set(expected)


def test_main_refuses_bad_options(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--sizes", "27"])
    assert "not supported" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.main(["--rounds", "0"])


def test_disk_mode_times_celeba_from_disk_against_memory():
    from gencomp_utils.devices import choose

    out = bench.time_disk(["gan"], n_images=32, batch_size=8, base_filters=4, latent_dim=4,
                          rounds=1, steps=2, warmup=1, device=choose("float32"))
    assert out["images"] == 32
    (row,) = out["rows"]
    assert row["model"] == "gan" and row["disk_img_s"] > 0 and row["memory_img_s"] > 0
    assert row["ratio"] == pytest.approx(row["disk_img_s"] / row["memory_img_s"])
    assert row["cache_ratio"] == pytest.approx(row["disk_cache_img_s"] / row["memory_img_s"])
    assert len(row["disk_cache_seconds"]) == 1
    from gencomp_utils import paths  # the decoded cache file was written whole, then read

    assert list(paths.cache_dir("tfdata").glob("celeba_*64x64_32*.npy"))
    text = bench.report({"rows": [], "settings": {"rounds": 1, "steps": 2, "batch_size": 8},
                         "ceilings": {}, "device": "cpu", "bf16_instructions": False,
                         "disk": out})
    assert "Disk vs memory (64x64x3 CelebA, 32 images streamed):" in text
    assert "- AC-GAN: JPEG files " in text and "(cache file)" in text


def test_disk_mode_is_skipped_with_a_message_without_celeba(data_dir):
    from gencomp_utils.devices import choose

    out = bench.time_disk(["vae"], n_images=32, batch_size=8, base_filters=4, latent_dim=4,
                          rounds=1, steps=1, warmup=1, device=choose("float32"))
    assert "CelebA is not on disk" in out["skipped"]


def test_time_to_quality_runs_on_a_tiny_budget(capsys):
    preset = get_preset("smoke")
    out = bench.time_to_quality(0.01, preset=preset, checkpoints=1, eval_images=64,
                                tutorial_batch=32)
    assert out["tutorial"] and np.isfinite(out["target_fd"])
    assert out["ours"] and all(np.isfinite(t["value"]) for t in out["ours"])
    assert (out["ours_seconds"] is None) == (out["ratio"] is None)
    report = bench.report({"rows": [], "settings": {"rounds": 1, "steps": 1, "batch_size": 1},
                           "ceilings": {}, "device": "cpu", "bf16_instructions": False,
                           "time_to_quality": out})
    assert "Time to quality: the tutorial DCGAN reached FD" in report


def test_time_suite_reports_wall_time_and_pytests_summary(tmp_path):
    (tmp_path / "test_one.py").write_text("def test_one():\n    assert True\n")
    # Plugins off, so that this stays fast: the point is the timing and the summary line.
    out = bench.time_suite(("-q", "-p", "no:cacheprovider", "-p", "no:nbval", "-p", "no:benchmark",
                            "test_one.py"), cwd=tmp_path)
    assert out["returncode"] == 0 and out["seconds"] > 0
    assert "1 passed" in out["summary"]


def test_pipeline_memory_compares_streaming_with_one_array():
    out = bench.pipeline_memory(counts=(32,), image_size=16)
    if "skipped" in out:
        pytest.skip(out["skipped"])
    modes = {r["mode"]: r for r in out["rows"]}
    assert set(modes) == {"stream", "arrays"} and all(r["images"] == 32 for r in out["rows"])
    assert all(np.isfinite(r["growth_mb"]) and r["before_mb"] > 0 for r in out["rows"])
    text = bench.report({"rows": [], "settings": {"rounds": 1, "steps": 1, "batch_size": 1},
                         "ceilings": {}, "device": "CPU", "bf16_instructions": False,
                         "pipeline_memory": out})
    assert "streamed from the files" in text and "loaded as one array" in text
