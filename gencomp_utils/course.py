"""What every notebook does first: pick the preset, seed everything, make its output folder."""
from __future__ import annotations

import os
import platform
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import paths
from .presets import Preset, get_preset


@dataclass
class Session:
    """A notebook's run settings.

    Attributes:
        notebook: the notebook's name, e.g. ``"00_setup_and_data"``.
        preset: the sizes in force (see :mod:`gencomp_utils.presets`).
        seed: the seed given to Python, NumPy and TensorFlow.
        out_dir: the folder this notebook writes its figures and files to.
    """

    notebook: str
    preset: Preset
    seed: int
    out_dir: Path

    def __repr__(self) -> str:
        return (f"Session(notebook={self.notebook!r}, preset={self.preset.name!r}, "
                f"seed={self.seed}, out_dir='{self.out_dir}')")


def seed_everything(seed: int, tensorflow: bool = True) -> None:
    """Seed Python's ``random``, NumPy and (if asked) TensorFlow/Keras."""
    random.seed(seed)
    np.random.seed(seed)
    if tensorflow:
        import keras

        keras.utils.set_random_seed(seed)


def environment_report() -> dict:
    """Versions of the main packages and the accelerators TensorFlow sees.

    Returns:
        A dict with ``python``, ``tensorflow``, ``keras``, ``numpy``, ``gpus`` (names) and
        ``advice`` (what to do when there is no GPU).
    """
    import keras
    import tensorflow as tf

    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    in_colab = "google.colab" in sys.modules
    if gpus:
        advice = f"Training runs on {len(gpus)} GPU(s)."
    elif in_colab:
        advice = ("No GPU: in Colab choose Runtime > Change runtime type > T4 GPU, then "
                  "Runtime > Restart. The smoke and classroom presets also run on the CPU, slower.")
    else:
        advice = ("No GPU: everything runs on the CPU. The smoke preset takes seconds per notebook; "
                  "the classroom preset minutes to tens of minutes.")
    return {"python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "numpy": np.__version__, "gpus": gpus,
            "cpu_cores": os.cpu_count(), "colab": in_colab, "advice": advice}


def run_times(notebook: str) -> dict:
    """The notebook's measured run times (``smoke``, ``classroom``, ``gpu``) from the package's
    ``run_times.json``, the one source of the times in the notebooks and the README."""
    import json

    times = json.loads((Path(__file__).parent / "run_times.json").read_text())["notebooks"]
    return times.get(notebook[:2], {})


def colab_without_gpu(notebook: str, preset: str) -> str | None:
    """What to tell a student on a Colab runtime without a GPU, or None elsewhere (and for the
    notebooks a GPU does not speed up)."""
    if "google.colab" not in sys.modules:
        return None
    times = run_times(notebook)
    if times.get("cpu_is_enough"):
        return None
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return None
    t = times.get(preset)  # "5.5 min", or "about 2 min" where not yet measured
    expect = f"expect about {t.removeprefix('about ')} on a 2-core CPU with the {preset} preset" \
        if t else f"the {preset} preset runs on the CPU, slower than on a GPU"
    return (f"This Colab runtime has no GPU: {expect}. For a GPU: Runtime > Change runtime "
            "type > T4 GPU, then run the notebook again. Carrying on with the CPU.")


def start(notebook: str, preset: str | None = None, seed: int = 0,
          tensorflow: bool = True, train_steps: int | None = None) -> Session:
    """Set a notebook up: resolve the preset, seed, and create its output folder.

    Args:
        notebook: the notebook's name; its outputs go to ``<output dir>/<notebook>/``.
        preset: preset name (``None``: ``GENCOMP_PRESET``, else ``classroom``).
        seed: seed for Python, NumPy and TensorFlow.
        tensorflow: also seed TensorFlow (imports it).
        train_steps: a shorter or longer training than the preset's; the preset is then renamed
            (e.g. ``classroom-400steps``), so its models and measurements never mix with the
            preset's own.

    Returns:
        A :class:`Session`.
    """
    p = get_preset(preset)
    if train_steps is not None and int(train_steps) != p.train_steps:
        if int(train_steps) < 1:
            raise ValueError(f"train_steps must be at least 1, got {train_steps!r}.")
        p = p.replace(name=f"{p.name}-{int(train_steps)}steps", train_steps=int(train_steps),
                      eval_every=min(p.eval_every, max(1, int(train_steps) // 4)))
    seed_everything(seed, tensorflow=tensorflow)
    out = paths.output_dir(notebook)
    session = Session(notebook=notebook, preset=p, seed=seed, out_dir=out)
    print(f"{notebook}: preset {p.name!r} ({p.description}); seed {seed}; "
          f"Python {platform.python_version()}; outputs in {out}")
    if tensorflow and (advice := colab_without_gpu(notebook, p.name)):
        print(advice)
    return session
