"""Time to quality: the classroom recipe against a candidate recipe, model by model.

``python -m benchmarks.recipes [--datasets ...] [--models vae gan] [--json PATH]`` trains each
model of each data set twice, once with each recipe of :data:`RECIPES`, in turn in one process
(a block of ``--block`` seconds of one, then of the other, the order swapped every round), and
after every block measures the FD (domain classifier) of 1,000 generated images against 1,000
held-out real ones, with the judge and the evaluation images of the experiment notebooks. It
reports the seconds of training each recipe took to reach the FD threshold of
:data:`THRESHOLDS`. Only training counts (the evaluations and the first, tracing step do not),
and both recipes share the machine's ups and downs, so ``classroom / candidate`` is a ratio that
holds on another machine of the same kind. MNIST and CIFAR-10 are fed exactly as the notebooks'
engine feeds them (same seed, same batches, the first step untimed), so the classroom recipe's
trace is the notebook's own training; CelebA's faces are held in memory and shuffled the same
way, where notebook 07 streams them from their files. A trace is one seed, and a GAN's FD swings
between evaluations: the first evaluation under the threshold decides, so read a ratio to within
a block or two.

The thresholds are the quality the classroom recipe reaches at the end of its budget in the
notebooks (seed 0, shared sample data), rounded up: a candidate that reaches them sooner reaches
the notebooks' quality in less time.
"""
from __future__ import annotations

import argparse
import json
import time

DATASETS = ("mnist", "cifar10", "celeba")
KINDS = ("vae", "gan")
# changes to the classroom preset
RECIPES = {
    "classroom": {},
    "candidate": {"batch_size": 32, "gan_learning_rate": 4e-4},  # half the images per step
}
THRESHOLDS = {  # the final FD of the classroom recipe in the notebooks, rounded up: 46.8 and
    # 18.5 (MNIST), 24.2 and 5.1 (CIFAR-10), 4.9 and 2.9 (CelebA), VAE and AC-GAN
    ("mnist", "vae"): 50.0, ("mnist", "gan"): 20.0,
    ("cifar10", "vae"): 25.0, ("cifar10", "gan"): 5.5,
    ("celeba", "vae"): 5.2, ("celeba", "gan"): 3.2,
}
# the judge the CelebA thresholds above were measured with (notebook 07's before it judged all
# 40 attributes): thresholds and judge go together
CELEBA = {"image_size": 64, "attribute": ["Male", "Smiling"]}


def _log(msg: str) -> None:
    print(msg, flush=True)


def setting(dataset: str, seed: int = 0):
    """``(training images, labels, progress hook, image shape, classes)`` of a notebook: its
    training split in memory, its judge (loaded from the cache, or trained once) and its
    evaluation images."""
    import numpy as np

    from gencomp_utils import classifiers, data, evaluation, training
    from gencomp_utils.presets import get_preset

    preset, splits = get_preset("classroom"), data.default_splits(dataset)
    judge_args = dict(steps=preset.classifier_steps, base_filters=preset.base_filters)
    if dataset == "celeba":
        x, y = data.load_numpy("celeba", splits.train, image_size=CELEBA["image_size"],
                               attribute="Male")
        xe, both = data.load_numpy("celeba", splits.eval, limit=preset.num_eval_images,
                                   **CELEBA)
        ye = both[:, 0]
        judge = classifiers.get_classifier("celeba", splits.train, splits.eval, **CELEBA,
                                           **judge_args).attribute("Male")
    else:
        x, y = training.Data(dataset, splits.train).arrays()
        xe, ye = training.Data(dataset, splits.eval).arrays()
        judge = classifiers.get_classifier(dataset, splits.train, splits.eval, **judge_args)
    hook = evaluation.progress_hook(judge, xe, ye, num_images=preset.num_eval_images, seed=seed)
    classes = 2 if dataset == "celeba" else 10
    return x, np.asarray(y).astype("int32"), hook, x.shape[1:], classes


class Trainee:
    """One model trained by one recipe in blocks of seconds, fed as the engine feeds arrays
    (:func:`gencomp_utils.training.epoch_dataset`: the same batches in the same order)."""

    def __init__(self, model, x, y, batch_size: int, seed: int):
        from gencomp_utils import training

        lo, hi = model.value_range
        self.model, self.y, self.bs, self.seed = model, y, int(batch_size), int(seed)
        self.x = x * (hi - lo) + lo
        self.per_epoch = len(x) // self.bs
        self.step, self.seconds, self.epoch_dataset = 0, 0.0, training.epoch_dataset
        self.chunk = 20
        self._fit(1)  # the first step traces the graph: it is not timed

    def _fit(self, n: int) -> float:
        epoch, k = divmod(self.step, self.per_epoch)
        n = min(n, self.per_epoch - k)
        part = self.epoch_dataset(self.x, self.y, self.bs, self.seed, epoch, first=k, batches=n)
        t0 = time.perf_counter()
        self.model.fit(part, epochs=1, steps_per_epoch=n, verbose=0, shuffle=False)
        self.step += n
        return time.perf_counter() - t0

    def train(self, seconds: float) -> None:
        """Train for at least ``seconds``, in calls of about a quarter of that (each ``fit`` call
        costs a little on its own, more often for the smaller batch if the calls were short)."""
        start = self.seconds
        while self.seconds - start < seconds:
            n = self.step
            took = self._fit(self.chunk)
            self.seconds += took
            per_step = took / max(1, self.step - n)
            self.chunk = max(5, int(0.25 * seconds / max(per_step, 1e-6)))


def build(kind: str, preset, shape, classes: int, seed: int):
    """A fresh model of ``kind`` (``"vae"`` or ``"gan"``) as the notebooks build it."""
    from gencomp_utils import devices, experiment

    likelihood = "bernoulli" if shape[-1] == 1 else "gaussian"
    _, build_vae, build_gan = experiment.builders(shape, classes, preset, devices.choose("auto"),
                                                  seed, likelihood)
    return build_vae() if kind == "vae" else build_gan()


def race(dataset: str, kind: str, *, block: float, max_seconds: float, seed: int = 0,
         recipes: dict = RECIPES, log=_log) -> dict:
    """Train ``kind`` on ``dataset`` with every recipe, in turn, until each reaches the threshold.

    Returns:
        ``{"threshold", "recipes": {name: {"changes", "trace": [{"seconds", "steps", "images",
        "fd_domain", "conditional_accuracy"}], "seconds" (to the threshold, None if not within
        max_seconds)}}, "ratio" (classroom / candidate, None unless both reached it)}``.
    """
    import keras

    from gencomp_utils.presets import get_preset

    x, y, hook, shape, classes = setting(dataset, seed)
    threshold = THRESHOLDS[(dataset, kind)]
    runs = {}
    for name, changes in recipes.items():
        preset = get_preset("classroom").replace(**changes)
        keras.utils.set_random_seed(seed)
        runs[name] = Trainee(build(kind, preset, shape, classes, seed), x, y, preset.batch_size,
                             seed)
    out = {name: {"changes": recipes[name], "trace": [], "seconds": None} for name in runs}
    order = list(runs)
    while True:
        going = [n for n in order if out[n]["seconds"] is None
                 and runs[n].seconds < max_seconds]
        if not going:
            break
        for name in going:
            t = runs[name]
            t.train(block)
            m = hook(t.model, t.step)
            out[name]["trace"].append({"seconds": round(t.seconds, 2), "steps": t.step,
                                       "images": t.step * t.bs, **m})
            log(f"{dataset} {kind} {name}: {t.seconds:6.1f} s, step {t.step:5d}, "
                f"FD {m['fd_domain']:.2f} (threshold {threshold:g}), "
                f"accuracy {m['conditional_accuracy']:.3f}")
            if m["fd_domain"] <= threshold:
                out[name]["seconds"] = round(t.seconds, 2)
        order.reverse()
    s = [out[n]["seconds"] for n in ("classroom", "candidate") if n in out]
    ratio = s[0] / s[1] if len(s) == 2 and None not in s else None
    return {"dataset": dataset, "model": kind, "threshold": threshold, "recipes": out,
            "ratio": ratio}


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.recipes", description=__doc__.split(
        "\n")[0])
    p.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    p.add_argument("--models", nargs="+", choices=KINDS, default=list(KINDS))
    p.add_argument("--block", type=float, default=None,
                   help="training seconds between evaluations (default: 5 for MNIST, 10 for "
                        "CIFAR-10, 25 for CelebA)")
    p.add_argument("--max-seconds", type=float, default=None,
                   help="give a recipe up after this many training seconds (default: 180 for "
                        "MNIST, 450 for CIFAR-10, 1800 for CelebA: 1.7 to 3.6 times the classroom "
                        "recipe's whole training on a 2-core CPU)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="PATH", help="also write the results to this JSON file")
    args = p.parse_args(argv)
    if any(v is not None and v <= 0 for v in (args.block, args.max_seconds)):
        p.error("--block and --max-seconds must be positive.")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    import gencomp_utils  # noqa: F401  (oneDNN, as in the notebooks)
    from gencomp_utils import devices

    results = {"device": str(devices.choose("auto")), "seed": args.seed, "races": []}
    default_block = {"mnist": 5.0, "cifar10": 10.0, "celeba": 25.0}
    default_max = {"mnist": 180.0, "cifar10": 450.0, "celeba": 1800.0}
    for dataset in args.datasets:
        for kind in args.models:
            r = race(dataset, kind, block=args.block or default_block[dataset],
                     max_seconds=args.max_seconds or default_max[dataset], seed=args.seed)
            results["races"].append(r)
            if args.json:  # after every race: an interruption keeps the finished ones
                with open(args.json, "w") as f:
                    json.dump(results, f, indent=1)
    _log("\n| data set | model | FD threshold | classroom (s) | candidate (s) | ratio |")
    _log("|---|---|---|---|---|---|")
    for r in results["races"]:
        s = {n: r["recipes"][n]["seconds"] for n in r["recipes"]}
        cell = {n: "not reached" if v is None else f"{v:.0f}" for n, v in s.items()}
        ratio = "—" if r["ratio"] is None else f"{r['ratio']:.2f}x"
        _log(f"| {r['dataset']} | {r['model']} | {r['threshold']:g} | {cell.get('classroom')} | "
             f"{cell.get('candidate')} | {ratio} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
