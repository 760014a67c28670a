"""The time-to-quality race of the classroom recipe against a candidate, on tiny shapes with a
made-up judge: what each recipe builds, turns, the threshold, the ratio, and the batches."""
from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from benchmarks import recipes  # noqa: E402
from gencomp_utils import load_numpy, training  # noqa: E402
from gencomp_utils.presets import get_preset  # noqa: E402


def _recipe(name):
    return get_preset("classroom").replace(**recipes.RECIPES[name])


def test_the_candidate_changes_only_the_recipe_and_its_gan_gets_the_step_size():
    classroom, candidate = _recipe("classroom"), _recipe("candidate")
    assert classroom == get_preset("classroom") and candidate != classroom
    # not a larger beta, a smaller latent, fewer evaluation images or another judge
    for field in ("vae_beta", "latent_dim", "num_eval_images", "classifier_steps", "base_filters"):
        assert getattr(candidate, field) == getattr(classroom, field), field
    for preset in (classroom, candidate):
        gan = recipes.build("gan", preset, (16, 16, 1), 10, seed=0)
        for opt in gan.optimizers.values():
            opt = getattr(opt, "inner_optimizer", opt)
            assert float(opt.learning_rate.numpy()) == pytest.approx(preset.gan_learning_rate)
            assert opt.beta_1 == 0.5
        vae = recipes.build("vae", preset, (16, 16, 1), 10, seed=0)
        assert float(vae.optimizer.learning_rate.numpy()) == pytest.approx(
            preset.vae_learning_rate)
    assert candidate.gan_learning_rate == 2 * classroom.gan_learning_rate


def test_a_race_takes_turns_stops_each_recipe_at_the_threshold_and_gives_the_ratio(monkeypatch):
    x, y = load_numpy("mnist", "test[:128]", image_size=16)
    calls = []

    def hook(model, step):  # a made-up FD that falls with the images a model has seen
        batch = int(model.batch)
        calls.append(batch)
        return {"fd_domain": 100.0 / (1 + step * batch / 200), "conditional_accuracy": 0.5}

    def train(self, seconds):  # 10 steps a block, whatever the machine
        self.step, self.seconds = self.step + 10, self.seconds + seconds

    build = recipes.build

    def tagged(kind, preset, shape, classes, seed):
        model = build(kind, preset, shape, classes, seed)
        model.batch = preset.batch_size
        return model

    monkeypatch.setattr(recipes, "setting", lambda dataset, seed=0: (x, y, hook, (16, 16, 1), 10))
    monkeypatch.setattr(recipes, "build", tagged)
    monkeypatch.setattr(recipes.Trainee, "train", train)
    monkeypatch.setitem(recipes.THRESHOLDS, ("mnist", "vae"), 5.0)
    out = recipes.race("mnist", "vae", block=2.0, max_seconds=100, log=lambda m: None)
    # FD <= 5 needs 3,800 images: step 61 (6 blocks) at batch 64, step 121 (12) at batch 32
    classroom, candidate = (out["recipes"][n] for n in ("classroom", "candidate"))
    assert [len(r["trace"]) for r in (classroom, candidate)] == [6, 12]
    assert (classroom["seconds"], candidate["seconds"]) == (12.0, 24.0)
    assert out["ratio"] == pytest.approx(0.5)
    for r, batch in ((classroom, 64), (candidate, 32)):
        assert all(t["images"] == t["steps"] * batch for t in r["trace"])
        fds = [t["fd_domain"] for t in r["trace"]]
        assert fds[-1] <= 5.0 < min(fds[:-1])  # stopped at its first evaluation under it
    assert calls[:6] == [64, 32, 32, 64, 64, 32]  # the order swaps every round
    assert calls[12:] == [32] * 6  # then the candidate alone


def test_a_recipe_that_never_reaches_the_threshold_has_no_time_and_no_ratio(monkeypatch):
    x, y = load_numpy("mnist", "test[:64]", image_size=16)
    monkeypatch.setattr(recipes, "setting", lambda dataset, seed=0: (
        x, y, lambda m, s: {"fd_domain": 50.0, "conditional_accuracy": 0.1}, (16, 16, 1), 10))
    out = recipes.race("mnist", "gan", block=0.1, max_seconds=0.3, log=lambda m: None)
    for r in out["recipes"].values():
        assert r["seconds"] is None and r["trace"][-1]["seconds"] >= 0.3
        assert r["trace"][-1]["steps"] > 1  # it trained
    assert out["ratio"] is None


def test_a_trainee_sees_the_engines_batches_and_ends_with_its_weights(tmp_path):
    """The race's training is the notebooks' training: the AC-GAN (images scaled to [-1, 1])
    after 5 steps of 16 from the race and from ``training.train`` has the same weights."""
    x, y = load_numpy("mnist", "test[:48]", image_size=16)  # 3 batches an epoch: 5 steps span 2
    preset = get_preset("smoke")
    keras.utils.set_random_seed(3)
    t = recipes.Trainee(recipes.build("gan", preset, (16, 16, 1), 10, seed=3), x, y, 16, seed=3)
    t._fit(2)
    t._fit(2)
    assert t.step == 5
    run = training.train(lambda: recipes.build("gan", preset, (16, 16, 1), 10, seed=3),
                         training.ArrayData(x, y), 5, name="engine", batch_size=16, seed=3,
                         preset="test", out_dir=tmp_path, progress=False, verbose=False)
    for a, b in zip(t.model.get_weights(), run.model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
