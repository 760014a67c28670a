"""Training-speed benchmark: the project's engine against the TensorFlow tutorials' way of training.

``python -m benchmarks.bench`` trains the conditional VAE and the AC-GAN at 28x28x1, 32x32x3
and 64x64x3 in one run, two ways, on the same architecture and the same batches:

- **reference**: the way the official TensorFlow DCGAN and CVAE tutorials train: a hand-written
  ``@tf.function`` step with ``tf.GradientTape``, float32, default settings (no XLA), Adam, a
  Python loop over a ``tf.data`` dataset, in a process of its own started with TensorFlow's
  defaults (:class:`ReferenceProcess`). It trains the networks of a project model
  (``encoder``/``decoder``, ``generator``/``discriminator``: Keras's own layers) and computes the project's losses, so that both ways do the same work per step (for the GAN: the
  discriminator sees the real and the generated batch in separate passes, as in the DCGAN
  tutorial, then the generator is updated with fresh noise, as the project's
  ``ACGAN.train_step`` does).
- **ours**: the project's engine path, in the benchmark's own process: the model's own
  ``train_step`` run by ``model.fit`` on the engine's ``tf.data`` pipeline, TensorFlow's
  oneDNN CPU kernels as ``import gencomp_utils`` asks for them, and the precision and XLA
  setting :func:`gencomp_utils.devices.choose` picks (``--bf16`` adds the model in
  ``mixed_bfloat16``). Both run on one device (the default strategy), even where ``choose``
  would mirror the engine over several GPUs.

After a warm-up the two run in turn, never at once (A B A B ..., ``--rounds`` rounds of
``--steps`` steps), and the table reports images per second (median over the rounds),
ours/reference, each process's peak memory, and the achieved GFLOP/s against a ceiling measured
in the same run (the median time of a large matrix product in float32, with both settings, and
in bfloat16). Options add the time of the Fréchet distance on 10,000 images (``--fd``), of the
test suite (``--suite``), data streamed from disk against data held in memory (``--disk``) and
the time our MNIST recipe takes to reach the quality the tutorial DCGAN reaches in a given time
(``--time-to-quality MINUTES``), and the convolution kernels of ours' step, each timed alone with
both processes' kernels (``--conv-time``, :func:`conv_times`).

FLOPs are counted from the layers (:func:`count_flops`, :func:`step_flops`): 2 FLOPs per
multiply-add of the Conv2D, Conv2DTranspose and Dense layers; normalisation, activations and the
losses are not counted (they are small and memory-bound). A training step costs 3 forward passes
for a network whose weights are trained (forward, backward with respect to the inputs, backward
with respect to the weights), 2 for a network that only passes gradients through (the
discriminator in the generator's update) and 1 for a network run forward only (the generator in
the discriminator's update).

``import benchmarks.bench`` does not import TensorFlow. Run ``python -m benchmarks.bench
--help`` for the options.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

FAIR_FRACTION = 0.75
UNFAIR = "reference below 75% of the fp32 ceiling: not a fair comparison"
DEFAULT_SIZES = (28, 32, 64)
MODEL_KINDS = ("vae", "gan")
MODEL_NAMES = {"vae": "conditional VAE", "gan": "AC-GAN"}
# The matrix product each precision's ceiling is measured in.
CEILING_DTYPES = {"float32": "float32", "mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}
TTQ_TARGET = 1 / 3  # ours should reach the tutorial's final FD in at most a third of its time
SPEED_TARGET = 1.5  # ours should train at least this many times as many images per second


def _log(msg: str) -> None:
    print(msg, flush=True)


# --------------------------------------------------------------------------------------------
# Timing


def _wait(out) -> None:
    """Block until ``out`` (tensors, or dicts/lists of them) is computed."""
    if isinstance(out, dict):
        for v in out.values():
            _wait(v)
    elif isinstance(out, (list, tuple)):
        for v in out:
            _wait(v)
    elif hasattr(out, "numpy"):
        out.numpy()


def time_steps(fn, steps: int) -> float:
    """Seconds that ``steps`` calls of ``fn()`` take, waiting for the last result.

    Args:
        fn: one training step; it may return tensors (waited for at the end, so that work still
            queued on an accelerator is counted).
        steps: number of calls.

    Returns:
        Wall seconds.
    """
    t0 = time.perf_counter()
    out = None
    for _ in range(int(steps)):
        out = fn()
    _wait(out)
    return time.perf_counter() - t0


def interleave(fns: dict, rounds: int, on_round=None) -> dict:
    """Run several timed blocks in turn, ``rounds`` times, each round starting one block later:
    A B, B A, A B ... (A B C, B C A, C A B ...).

    Interleaving spreads slow phases of a shared machine (another process, thermal throttling)
    over all variants instead of penalising whichever ran during them, and the rotation spreads
    the cost of coming first in a round (after the other process, or after a pause).

    Args:
        fns: name -> a function that runs one block and returns its seconds.
        rounds: how many times each function runs.
        on_round: called after each round as ``on_round(round_index, {name: seconds})``.

    Returns:
        name -> ``{"seconds": [per round], "median": median seconds}``.
    """
    if int(rounds) < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds!r}.")
    seconds = {name: [] for name in fns}
    names = list(fns)
    for r in range(int(rounds)):
        this = {}
        for name in names[r % len(names):] + names[:r % len(names)]:
            this[name] = float(fns[name]())
            seconds[name].append(this[name])
        if on_round is not None:
            on_round(r, this)
    return {name: {"seconds": s, "median": float(statistics.median(s))}
            for name, s in seconds.items()}


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (``ru_maxrss``: a high-water mark, per
    process, that never falls; NaN where the ``resource`` module is missing, as on Windows)."""
    try:
        import resource
    except ImportError:
        return float("nan")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2 ** 20 if sys.platform == "darwin" else peak / 2 ** 10  # bytes vs KiB


# --------------------------------------------------------------------------------------------
# The machine's ceiling


def matmul_ceiling(size: int = 2048, dtype: str = "float32", repeats: int = 5) -> dict:
    """GFLOP/s of a ``size`` x ``size`` x ``size`` matrix product (``tf.linalg.matmul`` inside a
    ``tf.function``): the ceiling dense layers and convolutions can hope for on this device.

    Args:
        size: side of the square matrices (2048 in a real run; tests use 128-256).
        dtype: ``"float32"``, ``"bfloat16"`` or ``"float16"``.
        repeats: timed products after one warm-up; the median is kept.

    Returns:
        ``{"dtype", "size", "seconds" (median), "gflops"}``.
    """
    import tensorflow as tf

    n = int(size)
    if n < 1 or int(repeats) < 1:
        raise ValueError(f"size and repeats must be positive, got {size!r} and {repeats!r}.")
    rng = tf.random.Generator.from_seed(0)
    a = tf.cast(rng.normal((n, n)), dtype)
    b = tf.cast(rng.normal((n, n)), dtype)

    @tf.function
    def product(a, b):
        return tf.linalg.matmul(a, b)

    product(a, b)[0, 0].numpy()  # trace and warm up
    times = []
    for _ in range(int(repeats)):
        t0 = time.perf_counter()
        product(a, b)[0, 0].numpy()  # reading one element waits for the whole product
        times.append(time.perf_counter() - t0)
    seconds = float(statistics.median(times))
    return {"dtype": str(dtype), "size": n, "seconds": seconds,
            "gflops": 2.0 * n ** 3 / seconds / 1e9}


def ceiling_dtype(precision: str) -> str:
    """The matrix-product dtype whose ceiling applies to a Keras precision policy."""
    try:
        return CEILING_DTYPES[precision]
    except KeyError:
        raise ValueError(f"No ceiling for precision {precision!r}; known: "
                         f"{', '.join(CEILING_DTYPES)}.") from None


def fairness_flag(reference_gflops: float, fp32_ceiling_gflops: float,
                  fraction: float = FAIR_FRACTION) -> str | None:
    """The warning for a reference that uses too little of the machine, else None.

    A reference far below the float32 ceiling leaves room that a faster engine may fill for
    reasons unrelated to the engine (small layers, a memory-bound model), so a ratio against it
    says little about the engine alone.

    Args:
        reference_gflops: the reference's achieved GFLOP/s.
        fp32_ceiling_gflops: the float32 ceiling from :func:`matmul_ceiling`.
        fraction: the threshold (0.75).

    Returns:
        :data:`UNFAIR` when ``reference_gflops < fraction * fp32_ceiling_gflops``, else None.
    """
    if not fp32_ceiling_gflops > 0:
        raise ValueError(f"The float32 ceiling must be positive, got {fp32_ceiling_gflops!r}.")
    return UNFAIR if reference_gflops < fraction * fp32_ceiling_gflops else None


# --------------------------------------------------------------------------------------------
# FLOPs from the layers


def layer_flops(layer, input_shape, output_shape) -> int:
    """Forward FLOPs of one layer for one example: 2 per multiply-add, biases not counted.

    - Conv2D: ``out_h * out_w * out_c * (k_h * k_w * in_c / groups)`` multiply-adds.
    - Conv2DTranspose: each input value is spread over a ``k_h x k_w x out_c`` patch:
      ``in_h * in_w * in_c * k_h * k_w * out_c``.
    - Dense: ``prod(leading dims) * in_features * units``.
    - anything else: 0.

    Args:
        layer: a Keras layer.
        input_shape, output_shape: its shapes without the batch dimension.

    Returns:
        FLOPs (an int).
    """
    from keras import layers

    inp = tuple(int(d) for d in input_shape)
    out = tuple(int(d) for d in output_shape)
    if isinstance(layer, layers.Conv2DTranspose):
        kh, kw = layer.kernel_size
        macs = inp[0] * inp[1] * inp[2] * kh * kw * out[2]
    elif isinstance(layer, layers.Conv2D):
        kh, kw = layer.kernel_size
        groups = int(getattr(layer, "groups", 1) or 1)
        macs = out[0] * out[1] * out[2] * kh * kw * (inp[2] // groups)
    elif isinstance(layer, layers.Dense):
        macs = int(np.prod(inp[:-1], dtype=np.int64)) * inp[-1] * int(layer.units)
    else:
        return 0
    return 2 * int(macs)


def count_flops(model_or_layers, input_shape=None) -> int:
    """Forward FLOPs for one example of a model or of a stack of layers (see :func:`layer_flops`).

    Args:
        model_or_layers: a functional ``keras.Model`` (its layers' own shapes are used; nested
            models are walked too), a ``keras.Sequential``, or a list of layers applied in order.
        input_shape: shape of one example, without the batch dimension, e.g. ``(8, 8, 1)``;
            needed for a list of layers or an unbuilt Sequential, ignored otherwise.

    Returns:
        FLOPs of one forward pass of one example.

    Raises:
        ValueError: a list of layers without ``input_shape``.
    """
    import keras

    if isinstance(model_or_layers, keras.Sequential):
        stack = [lyr for lyr in model_or_layers.layers
                 if not isinstance(lyr, keras.layers.InputLayer)]
        if input_shape is None:
            input_shape = model_or_layers.input_shape[1:]
        return count_flops(stack, input_shape)
    if isinstance(model_or_layers, keras.Model):
        total = 0
        for lyr in model_or_layers.layers:
            if isinstance(lyr, keras.Model):
                total += count_flops(lyr)
            elif isinstance(lyr, (keras.layers.Conv2D, keras.layers.Conv2DTranspose,
                                  keras.layers.Dense)):
                total += layer_flops(lyr, lyr.input.shape[1:], lyr.output.shape[1:])
        return total
    if input_shape is None:
        raise ValueError("count_flops needs input_shape (one example, no batch dimension) for a "
                         "list of layers.")
    shape = tuple(int(d) for d in input_shape)
    total = 0
    for lyr in model_or_layers:
        if isinstance(lyr, keras.Model):
            total += count_flops(lyr, shape)
            out = lyr.compute_output_shape((1,) + shape)
        else:
            out = lyr.compute_output_shape((1,) + shape)
            total += layer_flops(lyr, shape, out[1:])
        shape = tuple(int(d) for d in out[1:])
    return total


def step_flops(model, batch_size: int) -> int:
    """FLOPs of one training step of ``batch_size`` images (see the module docstring).

    - :class:`~gencomp_utils.models.ConditionalVAE`: 3 x (encoder + L x decoder), L samples.
    - :class:`~gencomp_utils.models.ACGAN`: the discriminator's update runs G forward (1x) and D
      on the real and on the generated batch (3x each); the generator's update runs G (3x) and D
      (2x: gradients pass through D to G, D's weights get none): ``4 G + 8 D``.
    - any other model: 3 x its forward pass.

    Args:
        model: the model.
        batch_size: images per step.

    Returns:
        FLOPs per step.
    """
    from gencomp_utils import models

    b = int(batch_size)
    if isinstance(model, models.ConditionalVAE):
        return b * 3 * (count_flops(model.encoder) + model.num_samples * count_flops(model.decoder))
    if isinstance(model, models.ACGAN):
        g, d = count_flops(model.generator), count_flops(model.discriminator)
        return b * ((g + 3 * d + 3 * d) + (3 * g + 2 * d))
    return b * 3 * count_flops(model)


# --------------------------------------------------------------------------------------------
# The convolutions of a step, each timed alone

CONV_OPS = ("Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter")


def live_convolutions(model, batch_size: int) -> list[dict]:
    """The convolution kernels one ``train_step`` of ``model`` runs, read from its graph.

    The step is traced for ``batch_size`` images (labels as class indices), and a convolution
    counts when the step's results or its variable updates depend on it: a gradient that
    nothing uses (such as the one with respect to the real images) is dropped, as TensorFlow
    drops it before running the graph.

    Returns:
        One dict per kernel call, in graph order: ``type`` (one of :data:`CONV_OPS`), the shapes
        of the two tensors it takes (``operands``: the image and the filter for ``Conv2D``, the
        filter and the incoming gradient for ``Conv2DBackpropInput``, the image and the incoming
        gradient for ``Conv2DBackpropFilter``), its ``output`` shape, and ``strides``,
        ``padding``, ``explicit_paddings``, ``dilations``.
    """
    import tensorflow as tf

    if not model.compiled:
        raise ValueError("The model's train_step needs its optimizers: compile the model first "
                         "(model.compile()).")
    image_shape = tuple(int(d) for d in model.image_shape)
    b = int(batch_size)
    specs = (tf.TensorSpec((b,) + image_shape, tf.float32), tf.TensorSpec((b,), tf.int32))
    fn = tf.function(model.train_step).get_concrete_function(specs)
    graph = fn.graph
    live, todo = set(), [t.op for t in fn.outputs] + list(graph.control_outputs)
    while todo:
        op = todo.pop()
        if op.name not in live:
            live.add(op.name)
            todo += [t.op for t in op.inputs] + list(op.control_inputs)
    tensors = {"Conv2D": (0, 1), "Conv2DBackpropInput": (1, 2), "Conv2DBackpropFilter": (0, 2)}
    convs = []
    for op in graph.get_operations():
        if op.type not in CONV_OPS or op.name not in live:
            continue
        convs.append({"type": op.type,
                      "operands": [op.inputs[i].shape.as_list() for i in tensors[op.type]],
                      "output": op.outputs[0].shape.as_list(),
                      "strides": list(op.get_attr("strides")),
                      "padding": op.get_attr("padding").decode(),
                      "explicit_paddings": list(op.get_attr("explicit_paddings")),
                      "dilations": list(op.get_attr("dilations"))})
    return convs


def time_convolutions(convs: list[dict], repeats: int = 7, chain: int = 8) -> list[float]:
    """Milliseconds per call of each convolution in ``convs`` (:func:`live_convolutions`), run
    alone in this process with its kernels and threads: ``chain`` calls on different random
    inputs, one after the other, in one ``tf.function``; the median of ``repeats`` timings."""
    import tensorflow as tf

    times = []
    for c in convs:
        kind = c.get("type")
        if kind not in CONV_OPS:
            raise ValueError(f"Cannot time {kind!r}: only {', '.join(CONV_OPS)}.")
        attrs = {k: c[k] for k in ("strides", "padding", "explicit_paddings", "dilations")}
        if kind == "Conv2D":
            def one(a, b, attrs=attrs):
                return tf.raw_ops.Conv2D(input=a, filter=b, **attrs)
        elif kind == "Conv2DBackpropInput":
            def one(a, b, attrs=attrs, sizes=c["output"]):
                return tf.raw_ops.Conv2DBackpropInput(input_sizes=sizes, filter=a,
                                                      out_backprop=b, **attrs)
        else:
            def one(a, b, attrs=attrs, sizes=c["output"]):
                return tf.raw_ops.Conv2DBackpropFilter(input=a, filter_sizes=sizes,
                                                       out_backprop=b, **attrs)
        args = [tuple(tf.random.normal(s) for s in c["operands"]) for _ in range(int(chain))]

        @tf.function
        def calls(args, one=one):
            outs = []
            for a, b in args:  # one after the other: each waits for the one before
                with tf.control_dependencies(outs[-1:]):
                    outs.append(one(a, b))
            return outs  # all returned, so that none is pruned

        _wait(calls(args))
        runs = []
        for _ in range(int(repeats)):
            t0 = time.perf_counter()
            _wait(calls(args))
            runs.append((time.perf_counter() - t0) / int(chain) * 1e3)
        times.append(statistics.median(runs))
    return times


def conv_times(model, batch_size: int, reference=None) -> dict:
    """The convolutions of one training step of ``model``, each timed alone: how much of a
    step they take with this process's kernels and, given a :class:`ReferenceProcess`, with
    TensorFlow's defaults.

    Returns:
        ``count`` (kernel calls per step), ``ops`` (:func:`live_convolutions` with ``ours_ms``
        and ``reference_ms`` each), and the sums per step: ``ours_ms``, ``reference_ms`` and
        ``best_ms`` (the faster of the two for each kernel); the ``reference`` entries are
        ``None`` without a reference process.
    """
    convs = live_convolutions(model, batch_size)
    ours = time_convolutions(convs)
    ref = reference.call("convs", convs) if reference is not None else [None] * len(convs)
    ops = [c | {"ours_ms": a, "reference_ms": b} for c, a, b in zip(convs, ours, ref)]
    both = reference is not None
    return {"count": len(ops), "ops": ops, "ours_ms": sum(ours),
            "reference_ms": sum(ref) if both else None,
            "best_ms": sum(map(min, ours, ref)) if both else None}


# --------------------------------------------------------------------------------------------
# The models and their data


@dataclass(frozen=True)
class Spec:
    """What one benchmark row trains.

    Attributes:
        kind: ``"vae"`` or ``"gan"``.
        image_shape: ``(H, W, C)``.
        num_classes: classes of the labels.
    """

    kind: str
    image_shape: tuple
    num_classes: int

    @property
    def size_name(self) -> str:
        h, w, c = self.image_shape
        return f"{h}x{w}x{c}"


def image_spec(size: int) -> tuple[tuple, int]:
    """``(image_shape, num_classes)`` of the course's data at a side length: 28 -> MNIST
    (28x28x1, 10 digits), 32 -> CIFAR-10 (32x32x3, 10 classes), 64 -> CelebA (64x64x3, two
    classes); other sides (tests): one channel below 32 pixels, three from 32, 10 classes."""
    size = int(size)
    known = {28: ((28, 28, 1), 10), 32: ((32, 32, 3), 10), 64: ((64, 64, 3), 2)}
    if size in known:
        return known[size]
    return (size, size, 1 if size < 32 else 3), 10


def build_model(spec: Spec, base_filters: int, latent_dim: int, precision: str = "float32",
                vae_beta: float = 1.0, seed: int = 0, fast_layers: bool = False):
    """The project's model for a spec, as the notebooks build it: a Bernoulli VAE for one
    channel and a Gaussian one (learned sigma) for colour; the AC-GAN with its defaults
    (``fast_layers``: its dropout in the CPU form, as ``devices.choose`` picks on a CPU).

    Returns:
        An uncompiled :class:`~gencomp_utils.models.ConditionalVAE` or
        :class:`~gencomp_utils.models.ACGAN`.
    """
    import keras

    from gencomp_utils import models

    keras.utils.set_random_seed(seed)
    common = dict(image_shape=spec.image_shape, num_classes=spec.num_classes,
                  latent_dim=int(latent_dim), base_filters=int(base_filters), precision=precision,
                  seed=seed)
    if spec.kind == "vae":
        likelihood = "bernoulli" if spec.image_shape[2] == 1 else "gaussian"
        return models.ConditionalVAE(likelihood=likelihood, beta=vae_beta, **common)
    if spec.kind == "gan":
        return models.ACGAN(fast_layers=fast_layers, **common)
    raise ValueError(f"Unknown model {spec.kind!r}; choose one of {', '.join(MODEL_KINDS)}.")


def synthetic_data(image_shape, num_classes: int, n: int, value_range=(0.0, 1.0),
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random images in ``value_range`` and class labels (speed does not depend on content).

    Returns:
        ``(float32 (n, H, W, C), int32 (n,))``.
    """
    rng = np.random.default_rng(seed)
    lo, hi = value_range
    x = (rng.random((int(n),) + tuple(image_shape)) * (hi - lo) + lo).astype(np.float32)
    return x, rng.integers(0, int(num_classes), int(n)).astype(np.int32)


def repeated_dataset(x, y, batch_size: int):
    """An endless ``tf.data`` dataset of full batches of ``(x, y)``, prefetched, built like the
    engine's pipelines (:func:`gencomp_utils.data.steady`)."""
    import tensorflow as tf

    from gencomp_utils.data import PREFETCH, steady

    return steady(tf.data.Dataset.from_tensor_slices((x, y)).batch(int(batch_size),
                                                                   drop_remainder=True)
                  .repeat().prefetch(PREFETCH))


# --------------------------------------------------------------------------------------------
# The reference: the TensorFlow tutorials' way


def _onehot_tf(labels, num_classes: int):
    import tensorflow as tf

    if len(labels.shape) == 1:
        return tf.one_hot(tf.cast(labels, tf.int32), num_classes)
    return tf.cast(labels, tf.float32)


def reference_step(model, learning_rate: float = 1e-4):
    """A training step written the way the TensorFlow CVAE and DCGAN tutorials write it.

    A ``@tf.function`` (no XLA) with ``tf.GradientTape`` and ``optimizer.apply_gradients``, new
    Adam optimizers (the tutorials' ``1e-4``), on the networks of ``model`` (which should be in
    float32), with the same losses as the model's own ``train_step``:

    - VAE: encode, reparameterise (``eps * exp(logvar / 2) + mean``), decode; the sigmoid cross
      entropy (Bernoulli) or the Gaussian negative log-likelihood summed over the pixels, plus
      ``beta`` times the closed-form KL.
    - AC-GAN: the discriminator's update with separate passes on the real and the generated batch
      (BCE real -> 1, fake -> 0, plus the class loss), then the generator's update with fresh
      noise (non-saturating BCE, plus the class loss), both as in ``ACGAN.train_step``.

    Args:
        model: a :class:`~gencomp_utils.models.ConditionalVAE` or
            :class:`~gencomp_utils.models.ACGAN`; its networks are trained in place.
        learning_rate: Adam's learning rate.

    Returns:
        ``step(images, labels) -> {loss name: scalar tensor}``.
    """
    import keras

    from gencomp_utils import models

    if isinstance(model, models.ConditionalVAE):
        return _reference_vae_step(model, keras.optimizers.Adam(learning_rate))
    if isinstance(model, models.ACGAN):
        return _reference_gan_step(model, keras.optimizers.Adam(learning_rate),
                                   keras.optimizers.Adam(learning_rate))
    raise TypeError(f"reference_step needs a ConditionalVAE or an ACGAN, got "
                    f"{type(model).__name__}.")


def _reference_vae_step(model, optimizer):
    import tensorflow as tf

    encoder, decoder = model.encoder, model.decoder
    variables = encoder.trainable_variables + decoder.trainable_variables
    if model.log_sigma.trainable:
        variables = variables + [model.log_sigma]
    optimizer.build(variables)
    k, big_l, beta = model.num_classes, model.num_samples, model.beta
    bernoulli = model.likelihood == "bernoulli"

    @tf.function
    def train_step(x, labels):
        y = _onehot_tf(labels, k)
        with tf.GradientTape() as tape:
            mean, logvar = encoder([x, y], training=True)
            if big_l > 1:  # L reparameterised samples per image
                mean_l, logvar_l = tf.tile(mean, [big_l, 1]), tf.tile(logvar, [big_l, 1])
                x_l, y_l = tf.tile(x, [big_l, 1, 1, 1]), tf.tile(y, [big_l, 1])
            else:
                mean_l, logvar_l, x_l, y_l = mean, logvar, x, y
            eps = tf.random.normal(shape=tf.shape(mean_l))
            z = eps * tf.exp(logvar_l * 0.5) + mean_l
            x_logit = decoder([z, y_l], training=True)
            if bernoulli:
                per_pixel = tf.nn.sigmoid_cross_entropy_with_logits(logits=x_logit, labels=x_l)
            else:
                log_sigma = tf.cast(model.log_sigma, tf.float32)
                per_pixel = (0.5 * tf.square((x_l - tf.sigmoid(x_logit)) / tf.exp(log_sigma))
                             + log_sigma + 0.5 * math.log(2 * math.pi))
            recon = tf.reduce_sum(per_pixel, axis=[1, 2, 3])
            recon = tf.reduce_mean(tf.reshape(recon, [big_l, -1]), axis=0)
            kl = 0.5 * tf.reduce_sum(tf.exp(logvar) + tf.square(mean) - 1.0 - logvar, axis=1)
            loss = tf.reduce_mean(recon + beta * kl)
        gradients = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(gradients, variables))
        return {"loss": loss}

    return train_step


def _reference_gan_step(model, generator_optimizer, discriminator_optimizer):
    import keras
    import tensorflow as tf

    generator, discriminator = model.generator, model.discriminator
    g_vars, d_vars = generator.trainable_variables, discriminator.trainable_variables
    generator_optimizer.build(g_vars)
    discriminator_optimizer.build(d_vars)
    cross_entropy = keras.losses.BinaryCrossentropy(from_logits=True)
    class_entropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    k, latent, cw = model.num_classes, model.latent_dim, model.class_weight
    smoothing, projection = model.label_smoothing, model.projection
    fake_class_loss, minimax = model.fake_class_loss, model.gan_loss == "minimax"

    def judge(images, y):
        out = discriminator(images, training=True)
        logit = out[0]
        if projection:
            logit = logit + tf.reduce_sum(y * tf.cast(out[2], tf.float32), axis=-1, keepdims=True)
        return logit, out[1]

    def class_loss(labels, logits):
        if len(labels.shape) == 1:
            return class_entropy(labels, logits)
        return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
            labels=tf.cast(labels, tf.float32), logits=logits))

    @tf.function
    def train_step(images, labels):
        batch = tf.shape(images)[0]
        y = _onehot_tf(labels, k)
        noise = tf.random.normal([batch, latent])
        with tf.GradientTape() as disc_tape:
            generated_images = generator([noise, y], training=True)
            real_output, real_class = judge(images, y)
            fake_output, fake_class = judge(generated_images, y)
            disc_loss = (cross_entropy(tf.ones_like(real_output) * (1.0 - smoothing), real_output)
                         + cross_entropy(tf.zeros_like(fake_output), fake_output))
            d_class = class_loss(labels, real_class)
            if fake_class_loss:
                d_class = d_class + class_loss(labels, fake_class)
            disc_loss = disc_loss + cw * d_class
        gradients_of_discriminator = disc_tape.gradient(disc_loss, d_vars)
        discriminator_optimizer.apply_gradients(zip(gradients_of_discriminator, d_vars))

        noise = tf.random.normal([batch, latent])
        with tf.GradientTape() as gen_tape:
            generated_images = generator([noise, y], training=True)
            fake_output, fake_class = judge(generated_images, y)
            if minimax:
                gen_loss = -cross_entropy(tf.zeros_like(fake_output), fake_output)
            else:
                gen_loss = cross_entropy(tf.ones_like(fake_output), fake_output)
            gen_loss = gen_loss + cw * class_loss(labels, fake_class)
        gradients_of_generator = gen_tape.gradient(gen_loss, g_vars)
        generator_optimizer.apply_gradients(zip(gradients_of_generator, g_vars))
        return {"d_loss": disc_loss, "g_loss": gen_loss}

    return train_step


class ReferenceRunner:
    """Runs :func:`reference_step` over a dataset in a Python loop, as the tutorials do.

    Args:
        model: a float32 project model whose networks the reference trains.
        dataset: an endless dataset of ``(images, labels)`` batches.
    """

    def __init__(self, model, dataset):
        self.model = model
        self.step = reference_step(model)
        self.iterator = iter(dataset)
        self.last = None

    def _one(self):
        images, labels = next(self.iterator)
        self.last = self.step(images, labels)
        return self.last

    def run(self, steps: int) -> float:
        """Train ``steps`` steps; return their seconds."""
        return time_steps(self._one, steps)

    def losses(self) -> dict:
        """The losses of the last step, as floats."""
        return {k: float(v) for k, v in (self.last or {}).items()}


class ReferenceProcess:
    """The reference in a process of its own, started with TensorFlow's own defaults.

    ``import gencomp_utils`` asks TensorFlow for its oneDNN CPU kernels
    (:func:`gencomp_utils.devices.prefer_onednn`), and TensorFlow reads that setting once, when it
    is imported. The tutorials run with TensorFlow's defaults, so the reference runs here, in a
    child process whose environment has ``TF_ENABLE_ONEDNN_OPTS`` removed and
    ``GENCOMP_TF_DEFAULTS=1``. The parent sends one command at a time and waits for its answer,
    so the two processes never compute at once and the A B A B interleaving holds.

    Use as a context manager; :meth:`call` runs one command: ``("ceiling", size, dtype,
    repeats)``, ``("build", spec, base_filters, latent_dim, vae_beta, seed, batch_size,
    images)`` (returns the step's FLOPs), ``("run", steps)`` (seconds), ``("losses",)``,
    ``("layers",)`` (the layer classes of its networks), ``("convs", convs)`` (the
    milliseconds of each kernel of :func:`live_convolutions`, timed with this process's kernels),
    ``("rss",)`` (peak MB),
    ``("onednn",)``, ``("environ", name, ...)`` (the pid and those environment variables).
    """

    def __init__(self):
        import multiprocessing

        from gencomp_utils import devices, paths

        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        with paths.environment({devices.ONEDNN_VAR: None, devices.TF_DEFAULTS_VAR: "1"}):
            self.process = ctx.Process(target=_reference_worker, args=(child,), daemon=True,
                                       name="gencomp-bench-reference")
            self.process.start()
        child.close()

    def call(self, op: str, *args):
        """Run one command in the reference process and return its answer."""
        self.conn.send((op,) + args)
        try:
            status, value = self.conn.recv()
        except EOFError:
            raise RuntimeError(f"The reference process died (exit code "
                               f"{self.process.exitcode}) during {op!r}.") from None
        if status == "error":
            raise RuntimeError(f"The reference process failed during {op!r}:\n{value}")
        return value

    def close(self):
        if self.process.is_alive():
            try:
                self.call("stop")
            except (RuntimeError, OSError):
                pass
            self.process.join(30)
        if self.process.is_alive():
            self.process.kill()
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _reference_worker(conn):
    """The loop of :class:`ReferenceProcess`'s child: one command in, one answer out."""
    import traceback

    import gencomp_utils  # noqa: F401  (before TensorFlow, as in the parent)

    runner = None
    while True:
        op, *args = conn.recv()
        try:
            if op == "stop":
                conn.send(("ok", None))
                return
            if op == "ceiling":
                value = matmul_ceiling(*args)
            elif op == "build":
                spec, base_filters, latent_dim, vae_beta, seed, batch_size, images = args
                value_range = (0.0, 1.0) if spec.kind == "vae" else (-1.0, 1.0)
                x, y = synthetic_data(spec.image_shape, spec.num_classes, images, value_range,
                                      seed)
                model = build_model(spec, base_filters, latent_dim, "float32", vae_beta, seed)
                runner = ReferenceRunner(model, repeated_dataset(x, y, batch_size))
                value = step_flops(model, batch_size)
            elif op == "engine":  # ours, all its parts, with this process's oneDNN setting
                spec, base_filters, latent_dim, vae_beta, seed, batch_size, images, spe = args
                runner = FitRunner(build_model(spec, base_filters, latent_dim, "float32",
                                               vae_beta, seed, fast_layers=True),
                                   _engine_epochs(spec, batch_size, images, seed),
                                   steps_per_execution=spe)
                value = step_flops(runner.model, batch_size)
            elif op == "run":
                value = runner.run(*args)
            elif op == "losses":
                value = runner.losses()
            elif op == "convs":
                value = time_convolutions(*args)
            elif op == "layers":
                value = sorted({type(lyr).__name__ for net in runner.model.layers
                                for lyr in getattr(net, "layers", [net])})
            elif op == "rss":
                value = peak_rss_mb()
            elif op == "onednn":
                from gencomp_utils.devices import onednn_enabled

                value = onednn_enabled()
            elif op == "environ":
                value = {"pid": os.getpid()} | {k: os.environ.get(k) for k in args}
            else:
                raise ValueError(f"unknown command {op!r}")
            conn.send(("ok", value))
        except Exception:
            conn.send(("error", traceback.format_exc()))


class FitRunner:
    """Runs a project model's own ``train_step`` through ``model.fit``: the engine's path.

    One ``fit`` call per timed block, as the engine makes one per epoch, each on a new dataset
    from ``data`` (as the engine builds each epoch with
    :func:`gencomp_utils.training.epoch_dataset`): the fixed cost of a call (callbacks, a new
    iterator, tens of milliseconds on a CPU) is included, and longer ``--steps`` spread it as the
    engine's epochs do.

    Args:
        model: a project model (compiled here with ``jit_compile`` unless already compiled).
        data: ``epoch -> dataset`` of ``(images, labels)`` batches in the model's value range
            with at least as many batches as a block trains, or one such dataset for every block.
        jit_compile: XLA, as :func:`gencomp_utils.devices.choose` says.
        steps_per_execution: train steps per call into TensorFlow, as ``choose`` says.
    """

    def __init__(self, model, data, jit_compile: bool = False, steps_per_execution: int = 1):
        if not model.compiled:
            model.compile(jit_compile=bool(jit_compile),
                          steps_per_execution=int(steps_per_execution))
        self.model, self.data = model, data
        self.calls = 0
        self.last = {}

    def run(self, steps: int, dataset=None) -> float:
        """Train ``steps`` steps in one ``fit`` call (on ``dataset`` if given); return seconds."""
        if dataset is None:
            dataset = self.data(self.calls) if callable(self.data) else self.data
        # exactly ``steps`` batches: with several steps per call, Keras would otherwise finish
        # the last call on a repeated dataset (20 steps in calls of 16 would train 32)
        dataset = dataset.take(int(steps))
        self.calls += 1
        t0 = time.perf_counter()
        out = self.model.fit(dataset, epochs=1, steps_per_epoch=int(steps), verbose=0,
                             shuffle=False)
        seconds = time.perf_counter() - t0
        self.last = {k: float(v[-1]) for k, v in out.history.items()}
        return seconds

    def losses(self) -> dict:
        """The metrics of the last ``fit`` call."""
        return dict(self.last)


def _engine_epochs(spec: Spec, batch_size: int, images: int, seed: int, autotune=False):
    """``epoch -> dataset``: the engine's pipeline (:func:`gencomp_utils.training.epoch_dataset`)
    over ``images`` synthetic images, a new one for each ``fit`` call, endless; ``autotune=True``
    turns tf.data's autotuning back on."""
    import tensorflow as tf

    from gencomp_utils.training import epoch_dataset

    value_range = (0.0, 1.0) if spec.kind == "vae" else (-1.0, 1.0)
    x, y = synthetic_data(spec.image_shape, spec.num_classes, images, value_range, seed)
    options = tf.data.Options()
    options.autotune.enabled = True

    def epochs(epoch):
        ds = epoch_dataset(x, y, batch_size, seed, epoch).repeat()
        if not autotune:
            return ds
        absl = logging.getLogger("absl")  # quiet its "Changing the value of option enabled"
        level = absl.level
        absl.setLevel(logging.ERROR)
        try:
            return ds.with_options(options)
        finally:
            absl.setLevel(level)

    return epochs


# --------------------------------------------------------------------------------------------
# One row of the table


def measure(spec: Spec, *, batch_size: int, base_filters: int, latent_dim: int, rounds: int,
            steps: int, warmup: int, device, ceilings: dict, reference: ReferenceProcess,
            bf16: bool = False, conv_time: bool = False, vae_beta: float = 1.0, seed: int = 0,
            log=_log) -> list[dict]:
    """Time the reference and ours (and ours in mixed_bfloat16) on one model and image size.

    Args:
        spec: the model and image size.
        batch_size, base_filters, latent_dim: the sizes.
        rounds, steps, warmup: interleaved rounds, steps per round, warm-up steps per variant.
        device: a :class:`~gencomp_utils.devices.DeviceChoice` (ours uses its precision and XLA).
        ceilings: name -> :func:`matmul_ceiling` result; must hold ``float32`` and the dtypes of
            ours' precisions; every entry whose name starts with ``float32`` counts towards the
            machine's float32 ceiling (the best of them).
        reference: the :class:`ReferenceProcess` the reference trains in (same weights' seed,
            same batches).
        bf16: add "ours (mixed_bfloat16)".
        conv_time: also time the convolutions of ours' step alone (:func:`conv_times`).
        vae_beta: the VAE's KL weight.
        seed: seeds weights and data.
        log: where progress lines go.

    Returns:
        One row per "ours" variant: ``model``, ``size``, ``variant``, ``precision``,
        ``jit_compile``, ``reference_img_s``, ``ours_img_s``, ``ratio`` (ours / reference, in
        images per second, from the medians of the rounds), ``round_ratios`` (the same ratio in
        each round, rounds being interleaved), the per-round ``reference_seconds`` and
        ``ours_seconds``,
        ``step_gflop``, ``reference_gflops`` and ``reference_pct_fp32``, ``ours_gflops`` and
        ``ours_pct_ceiling`` (of ``ours_ceiling_dtype``), ``peak_rss_mb`` and
        ``reference_peak_rss_mb`` (each process's peak so far), the last losses of each,
        ``flag`` (:func:`fairness_flag`), and with ``conv_time`` a ``convolutions`` dict
        (:func:`conv_times`, with ``target_step_ms``: the reference's step time over
        :data:`SPEED_TARGET`).
    """
    name = f"{spec.kind} {spec.size_name}"
    images = 8 * batch_size
    build = partial(build_model, spec, base_filters, latent_dim, vae_beta=vae_beta, seed=seed,
                    fast_layers=device.fast_layers)
    flops = reference.call("build", spec, base_filters, latent_dim, vae_beta, seed, batch_size,
                           images)
    epochs = _engine_epochs(spec, batch_size, images, seed)
    ours_precisions = {"ours": device.precision}
    if bf16 and device.precision != "mixed_bfloat16":
        ours_precisions["ours (mixed_bfloat16)"] = "mixed_bfloat16"
    runners = {label: FitRunner(build(precision=precision), epochs, device.jit_compile,
                                device.steps_per_execution)
               for label, precision in ours_precisions.items()}
    if flops != step_flops(runners["ours"].model, batch_size):  # FLOPs do not depend on dtype
        raise RuntimeError("The reference process built a different network from ours.")
    blocks = {"reference": partial(reference.call, "run")} | {
        label: runner.run for label, runner in runners.items()}

    log(f"{name}: warm-up ({warmup} steps each of {', '.join(blocks)}); "
        f"{flops / 1e9:.3f} GFLOP per step of {batch_size} images")
    for block in blocks.values():
        block(max(1, int(warmup)))

    def report(r, secs):
        cells = ", ".join(f"{k} {batch_size * steps / s:,.0f} img/s" for k, s in secs.items())
        log(f"{name}: round {r + 1}/{rounds}: {cells}")

    timed = interleave({k: partial(v, steps) for k, v in blocks.items()}, rounds, report)
    convs = None
    if conv_time:
        convs = conv_times(runners["ours"].model, batch_size, reference)
        log(f"{name}: {convs['count']} convolutions per step, alone: "
            f"{convs['ours_ms']:.1f} ms (ours' kernels), {convs['reference_ms']:.1f} ms "
            f"(TensorFlow's defaults)")
    rss, ref_rss = peak_rss_mb(), reference.call("rss")
    ref_losses = reference.call("losses")
    trained = batch_size * steps
    ref_s = timed["reference"]["median"]
    ref_gflops = flops * steps / ref_s / 1e9
    fp32 = max(c["gflops"] for k, c in ceilings.items() if k.startswith("float32"))
    rows = []
    for label, precision in ours_precisions.items():
        ours_s = timed[label]["median"]
        ours_gflops = flops * steps / ours_s / 1e9
        dtype = ceiling_dtype(precision)
        ceiling = fp32 if dtype == "float32" else ceilings[dtype]["gflops"]
        rows.append({
            "model": spec.kind, "model_name": MODEL_NAMES[spec.kind], "size": spec.size_name,
            "variant": label, "precision": precision, "jit_compile": bool(device.jit_compile),
            "batch_size": batch_size, "steps": steps, "rounds": rounds,
            "reference_img_s": trained / ref_s, "ours_img_s": trained / ours_s,
            "ratio": ref_s / ours_s,
            "round_ratios": [r / o for r, o in zip(timed["reference"]["seconds"],
                                                   timed[label]["seconds"])],
            "reference_seconds": timed["reference"]["seconds"],
            "ours_seconds": timed[label]["seconds"],
            "step_gflop": flops / 1e9,
            "reference_gflops": ref_gflops, "reference_pct_fp32": 100 * ref_gflops / fp32,
            "ours_gflops": ours_gflops, "ours_ceiling_dtype": dtype,
            "ours_pct_ceiling": 100 * ours_gflops / ceiling,
            "peak_rss_mb": rss, "reference_peak_rss_mb": ref_rss,
            "reference_losses": ref_losses, "ours_losses": runners[label].losses(),
            "flag": fairness_flag(ref_gflops, fp32),
        })
        if convs is not None:
            rows[-1]["convolutions"] = convs | {
                "ours_step_ms": 1e3 * ours_s / steps, "reference_step_ms": 1e3 * ref_s / steps,
                "target_step_ms": 1e3 * ref_s / steps / SPEED_TARGET}
    return rows


# What a part must gain to stay: taken away, a whole step is at least this many times slower on
# some model and size ...
PART_GAIN = 1.05
# ... and on none of them at most this (faster by more than rounds of the same code differ).
PART_NOT_SLOWER = 0.97
DROPOUT_PART, STEPS_PART, AUTOTUNE_PART, ONEDNN_PART = (
    "bit-mask dropout", "several steps per call", "no tf.data autotuning", "oneDNN asked for")


def part_variants(device, reference_onednn) -> list[str]:
    """The speed settings a device choice uses, which :func:`measure_parts` takes away in turn:
    the AC-GAN's bit-mask dropout (the CPU form), several steps per call, the pipelines' fixed
    settings, and oneDNN where the package turns it on and TensorFlow's default
    (``reference_onednn``) leaves it off. (``benchmarks/results/parts-*`` also hold two layers
    and an optimizer that were measured this way and deleted.)"""
    names = [DROPOUT_PART] if device.fast_layers else []
    if device.steps_per_execution > 1:
        names.append(STEPS_PART)
    names.append(AUTOTUNE_PART)
    if device.onednn and reference_onednn is False:
        names.append(ONEDNN_PART)
    return names


def measure_parts(spec: Spec, parts: list[str], *, batch_size: int, base_filters: int,
                  latent_dim: int, rounds: int, steps: int, warmup: int, device,
                  reference: ReferenceProcess, vae_beta: float = 1.0, seed: int = 0,
                  log=_log) -> dict:
    """Time the engine with all its parts and without each of ``parts`` in turn, interleaved.

    Without the bit-mask dropout: Keras's (the AC-GAN only: the VAE has none, and its row
    leaves the part out); without several steps per call: 1; without the fixed pipelines: tf.data's
    autotuning on; without oneDNN: the engine in ``reference``'s process (TensorFlow's
    defaults). Each variant trains its own model from the same weights' seed on the same
    batches, one ``fit`` call of ``steps`` steps per round, as :func:`measure` times ours.

    Returns:
        ``model``, ``size``, ``seconds`` (variant -> per-round seconds, ``"engine"`` for
        all parts), and ``gains``: part -> ``{"gain": median seconds without it / with it (above 1:
        the part makes the step faster), "round_gains": the same per round}``.
    """
    name = f"{spec.kind} {spec.size_name}"
    images = 8 * batch_size
    spe = device.steps_per_execution

    def runner(steps_per_execution=spe, autotune=False, fast_layers=True):
        model = build_model(spec, base_filters, latent_dim, device.precision, vae_beta, seed,
                            fast_layers=device.fast_layers and fast_layers)
        model.compile(jit_compile=bool(device.jit_compile),
                      steps_per_execution=int(steps_per_execution))
        return FitRunner(model, _engine_epochs(spec, batch_size, images, seed, autotune)).run

    blocks = {"engine": runner()}
    for part in parts:
        if part == DROPOUT_PART:
            if spec.kind == "gan":  # the VAE has no dropout
                blocks[part] = runner(fast_layers=False)
        elif part == STEPS_PART:
            blocks[part] = runner(steps_per_execution=1)
        elif part == AUTOTUNE_PART:
            blocks[part] = runner(autotune=True)
        elif part == ONEDNN_PART:
            reference.call("engine", spec, base_filters, latent_dim, vae_beta, seed, batch_size,
                           images, spe)
            blocks[part] = partial(reference.call, "run")
        else:
            raise ValueError(f"Unknown part {part!r}; the parts: {DROPOUT_PART}, {STEPS_PART}, "
                             f"{AUTOTUNE_PART}, {ONEDNN_PART}.")
    log(f"{name}: warm-up ({warmup} steps each of the engine and {len(blocks) - 1} variants)")
    for block in blocks.values():
        block(max(1, int(warmup)))

    def report(r, secs):
        log(f"{name}: round {r + 1}/{rounds}: engine {secs['engine']:.2f} s; without: " +
            ", ".join(f"{k} {v:.2f} s" for k, v in secs.items() if k != "engine"))

    timed = interleave({k: partial(v, steps) for k, v in blocks.items()}, rounds, report)
    engine = timed["engine"]
    return {"model": spec.kind, "size": spec.size_name,
            "seconds": {k: v["seconds"] for k, v in timed.items()},
            "gains": {part: {"gain": timed[part]["median"] / engine["median"],
                             "round_gains": [a / b for a, b in zip(timed[part]["seconds"],
                                                                   engine["seconds"])]}
                      for part in parts if part in timed}}


def part_verdicts(rows: list[dict]) -> dict:
    """part -> ``{"lowest", "highest": its median gain over the rows, "keep": the rule}``: a
    part stays when its gain reaches :data:`PART_GAIN` on some row and is at least
    :data:`PART_NOT_SLOWER` on every row."""
    out = {}
    widest = max(rows, key=lambda r: len(r["gains"]))["gains"]  # its order first
    for part in dict.fromkeys([*widest, *(p for r in rows for p in r["gains"])]):
        gains = [r["gains"][part]["gain"] for r in rows if part in r["gains"]]
        out[part] = {"lowest": min(gains), "highest": max(gains),
                     "keep": max(gains) >= PART_GAIN and min(gains) >= PART_NOT_SLOWER}
    return out


def format_parts_table(rows: list[dict]) -> str:
    """A Markdown table of :func:`measure_parts` rows: one column per part, its median gain and
    the lowest-highest by round; a last row with the rule's verdict."""
    parts = list(part_verdicts(rows))
    lines = ["| model | size | " + " | ".join(parts) + " |", "|---|---|" + "---|" * len(parts)]
    for r in rows:
        cells = [f"{g['gain']:.2f}x ({min(g['round_gains']):.2f}-{max(g['round_gains']):.2f})"
                 if (g := r["gains"].get(p)) else "-" for p in parts]
        lines.append(f"| {MODEL_NAMES[r['model']]} | {r['size']} | " + " | ".join(cells) + " |")
    verdicts = part_verdicts(rows)
    lines.append("| **verdict** | | " + " | ".join(
        "keep" if verdicts[p]["keep"] else "delete" for p in parts) + " |")
    return "\n".join(lines)


def format_table(rows: list[dict]) -> str:
    """A Markdown table of :func:`measure` rows."""
    head = ("| model | size | variant | reference img/s | ours img/s | ours/ref | "
            "ours/ref by round (lowest-highest) | ref GFLOP/s (% fp32 ceiling) | "
            "ours GFLOP/s (% of its ceiling) | peak RSS MB |")
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        lines.append(
            f"| {r['model_name']} | {r['size']} | ours ({r['precision']}, XLA "
            f"{'on' if r['jit_compile'] else 'off'}) | "
            f"{r['reference_img_s']:,.0f} | {r['ours_img_s']:,.0f} | {r['ratio']:.2f}x | "
            f"{min(r['round_ratios']):.2f}-{max(r['round_ratios']):.2f}x | "
            f"{r['reference_gflops']:.1f} ({r['reference_pct_fp32']:.0f}%) | "
            f"{r['ours_gflops']:.1f} ({r['ours_pct_ceiling']:.0f}% of {r['ours_ceiling_dtype']}) | "
            f"{r['peak_rss_mb']:,.0f} |")
    return "\n".join(lines)


def format_conv_table(rows: list[dict]) -> str:
    """A Markdown table of the ``convolutions`` of :func:`measure` rows (``--conv-time``)."""
    lines = [f"| model | size | kernels per step | ours' kernels ms | TensorFlow's defaults ms | "
             f"faster of the two ms | ours' step ms | reference step ms | step for "
             f"{SPEED_TARGET:g}x ms |", "|" + "---|" * 9]
    for r in rows:
        c = r.get("convolutions")
        if c is None:
            continue
        lines.append(f"| {r['model_name']} | {r['size']} | {c['count']} | {c['ours_ms']:.1f} | "
                     f"{c['reference_ms']:.1f} | {c['best_ms']:.1f} | {c['ours_step_ms']:.1f} | "
                     f"{c['reference_step_ms']:.1f} | {c['target_step_ms']:.1f} |")
    return "\n".join(lines)


def format_ceilings(ceilings: dict) -> str:
    """One line per measured ceiling."""
    return "\n".join(f"- {c['dtype']} ceiling, {c.get('settings', 'the engine settings')}: "
                     f"{c['gflops']:.1f} GFLOP/s ({c['size']}^3 matmul, median "
                     f"{c['seconds'] * 1e3:.1f} ms)" for c in ceilings.values())


def gpu_note() -> str:
    """What :func:`gencomp_utils.devices.choose` picks on a Colab GPU (asked, not assumed)."""
    from gencomp_utils import devices

    gpu = devices.choose(devices=["CPU", "GPU"], gpu_compute_capability=(7, 5))
    return (f"On a GPU (Colab, e.g. a T4) devices.choose picks {gpu.precision} + XLA "
            f"{'on' if gpu.jit_compile else 'off'} by itself, and this benchmark runs unchanged "
            "there (ours then measured against the float16 ceiling).")


# --------------------------------------------------------------------------------------------
# Other timings


def _digit_classifier(preset, log=_log):
    from gencomp_utils import classifiers, data

    splits = data.default_splits("mnist")
    t0 = time.perf_counter()
    clf = classifiers.digit_classifier(splits.train, splits.eval, steps=preset.classifier_steps,
                                       base_filters=preset.base_filters, seed=0, verbose=False)
    seconds = time.perf_counter() - t0
    log(f"digit classifier: {clf.how} in {seconds:.1f} s (accuracy {clf.accuracy:.3f} on "
        f"{splits.eval})")
    return clf, seconds


def time_fd(n_images: int, preset, log=_log) -> dict:
    """Seconds of one Fréchet distance on ``n_images`` images with the digit classifier's features.

    The two sets are MNIST test images (repeated if fewer are on disk) and a noisy, shuffled copy
    standing in for generated images: features of both sets, then the distance.

    Returns:
        ``{"images", "classifier", "classifier_seconds", "features_seconds", "fd_seconds",
        "seconds" (features + distance), "fd"}``.
    """
    from gencomp_utils import metrics, training

    clf, clf_seconds = _digit_classifier(preset, log)
    x, _ = training.Data("mnist", "test").arrays()
    n = int(n_images)
    x = x[np.arange(n) % len(x)]
    rng = np.random.default_rng(0)
    fake = np.clip(x[rng.permutation(n)] + rng.normal(0, 0.1, x.shape), 0, 1).astype(np.float32)
    t0 = time.perf_counter()
    fa, fb = clf.features(x), clf.features(fake)
    t1 = time.perf_counter()
    fd = metrics.frechet_distance(fa, fb)
    t2 = time.perf_counter()
    out = {"images": n, "classifier": clf.how, "classifier_seconds": clf_seconds,
           "features_seconds": t1 - t0, "fd_seconds": t2 - t1, "seconds": t2 - t0, "fd": fd}
    log(f"FD on {n:,} images: {out['seconds']:.2f} s ({out['features_seconds']:.2f} s features "
        f"of both sets, {out['fd_seconds']:.2f} s distance)")
    return out


def time_suite(args=("-q",), cwd=None) -> dict:
    """Wall time of the test suite (``python -m pytest``) in a subprocess.

    Returns:
        ``{"seconds", "returncode", "summary"}`` (``summary``: pytest's last line).
    """
    from gencomp_utils import paths

    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", *args], cwd=str(cwd or paths.REPO_ROOT),
                          capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    return {"seconds": time.perf_counter() - t0, "returncode": proc.returncode,
            "summary": lines[-1] if lines else proc.stderr.strip()[-300:]}


def time_disk(kinds, *, n_images: int, batch_size: int, base_filters: int, latent_dim: int,
              rounds: int, steps: int, warmup: int, device, vae_beta: float = 1.0,
              log=_log) -> dict:
    """Training on 64x64 CelebA streamed from disk against the same batches in memory.

    Each model trains through ``fit`` (ours), in turn on ``Stream("celeba",
    "train[:n_images]", 64)`` read two ways, the JPEG files decoded, resized and batched by
    ``tf.data`` while training (``"disk"``) and the decoded cache file that ``cache=True``
    writes in one pass beforehand (``"disk_cache"``), and on ``steps`` batches of it held in
    memory as one tensor (``"memory"``). Each timed block is one ``fit`` call, so the disk
    pipeline starts afresh in each, as it does in each of the engine's epochs.

    Returns:
        ``{"skipped": reason}`` when CelebA is absent, else ``{"images", "rows": [{"model",
        "disk_img_s", "disk_cache_img_s", "memory_img_s", "ratio" and "cache_ratio" (disk /
        memory)}]}``.
    """
    import tensorflow as tf

    from gencomp_utils import data, training

    if not data.available("celeba", "train"):
        return {"skipped": f"CelebA is not on disk, so the disk-vs-memory timing is skipped. "
                           f"{data.CELEBA_HOWTO}"}
    stream = training.Stream("celeba", f"train[:{int(n_images)}]", 64)
    cached = training.Stream("celeba", f"train[:{int(n_images)}]", 64, cache=True)
    if len(stream) < batch_size:
        return {"skipped": f"{len(stream)} CelebA images are fewer than one batch of {batch_size}."}
    log(f"disk vs memory: writing the decoded cache file of {len(cached)} images")
    cached.prepare()
    rows = []
    for kind in kinds:
        spec = Spec(kind, *image_spec(64))
        model = build_model(spec, base_filters, latent_dim, device.precision, vae_beta,
                            fast_layers=device.fast_layers)
        sources = {name: s.dataset(batch_size, value_range=model.value_range).repeat()
                   for name, s in (("disk", stream), ("disk_cache", cached))}
        batches = list(stream.dataset(batch_size, value_range=model.value_range,
                                      shuffle=False).take(int(steps)))
        xs = tf.concat([b[0] for b in batches], 0)  # one tensor in memory
        ys = tf.concat([b[1] for b in batches], 0)
        sources["memory"] = repeated_dataset(xs, ys, batch_size)
        runner = FitRunner(model, sources["memory"], device.jit_compile,
                           device.steps_per_execution)
        log(f"disk vs memory, {kind} 64x64x3: warm-up ({len(batches)} batches in memory)")
        for ds in sources.values():
            runner.run(max(1, int(warmup)), ds)

        def report(r, secs, kind=kind):
            log(f"disk vs memory, {kind}: round {r + 1}/{rounds}: " + ", ".join(
                f"{k} {batch_size * steps / s:,.0f} img/s" for k, s in secs.items()))

        timed = interleave({k: partial(runner.run, steps, ds) for k, ds in sources.items()},
                           rounds, report)
        img_s = {k: batch_size * steps / t["median"] for k, t in timed.items()}
        rows.append({"model": kind, "disk_img_s": img_s["disk"],
                     "disk_cache_img_s": img_s["disk_cache"], "memory_img_s": img_s["memory"],
                     "ratio": img_s["disk"] / img_s["memory"],
                     "cache_ratio": img_s["disk_cache"] / img_s["memory"]}
                    | {f"{k}_seconds": t["seconds"] for k, t in timed.items()})
    return {"images": len(stream), "rows": rows}


# --------------------------------------------------------------------------------------------
# Time to quality: the tutorial DCGAN against our MNIST recipe


def tutorial_dcgan(noise_dim: int = 100):
    """The TensorFlow DCGAN tutorial's generator and discriminator (MNIST, unconditional).

    Returns:
        ``(generator: (B, noise_dim) -> (B, 28, 28, 1) in [-1, 1], discriminator: image -> logit)``.
    """
    import keras
    from keras import layers

    generator = keras.Sequential([
        keras.Input((noise_dim,)),
        layers.Dense(7 * 7 * 256, use_bias=False),
        layers.BatchNormalization(),
        layers.LeakyReLU(),
        layers.Reshape((7, 7, 256)),
        layers.Conv2DTranspose(128, (5, 5), strides=(1, 1), padding="same", use_bias=False),
        layers.BatchNormalization(),
        layers.LeakyReLU(),
        layers.Conv2DTranspose(64, (5, 5), strides=(2, 2), padding="same", use_bias=False),
        layers.BatchNormalization(),
        layers.LeakyReLU(),
        layers.Conv2DTranspose(1, (5, 5), strides=(2, 2), padding="same", use_bias=False,
                               activation="tanh"),
    ], name="tutorial_generator")
    discriminator = keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(64, (5, 5), strides=(2, 2), padding="same"),
        layers.LeakyReLU(),
        layers.Dropout(0.3),
        layers.Conv2D(128, (5, 5), strides=(2, 2), padding="same"),
        layers.LeakyReLU(),
        layers.Dropout(0.3),
        layers.Flatten(),
        layers.Dense(1),
    ], name="tutorial_discriminator")
    return generator, discriminator


def tutorial_dcgan_step(generator, discriminator, batch_size: int = 256, noise_dim: int = 100,
                        learning_rate: float = 1e-4):
    """The DCGAN tutorial's ``train_step``: one generated batch, both networks updated from it.

    Returns:
        ``train_step(images) -> (gen_loss, disc_loss)``.
    """
    import keras
    import tensorflow as tf

    cross_entropy = keras.losses.BinaryCrossentropy(from_logits=True)
    generator_optimizer = keras.optimizers.Adam(learning_rate)
    discriminator_optimizer = keras.optimizers.Adam(learning_rate)
    generator_optimizer.build(generator.trainable_variables)
    discriminator_optimizer.build(discriminator.trainable_variables)

    @tf.function
    def train_step(images):
        noise = tf.random.normal([batch_size, noise_dim])
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            generated_images = generator(noise, training=True)
            real_output = discriminator(images, training=True)
            fake_output = discriminator(generated_images, training=True)
            gen_loss = cross_entropy(tf.ones_like(fake_output), fake_output)
            disc_loss = (cross_entropy(tf.ones_like(real_output), real_output)
                         + cross_entropy(tf.zeros_like(fake_output), fake_output))
        gradients_of_generator = gen_tape.gradient(gen_loss, generator.trainable_variables)
        gradients_of_discriminator = disc_tape.gradient(disc_loss,
                                                        discriminator.trainable_variables)
        generator_optimizer.apply_gradients(zip(gradients_of_generator,
                                                generator.trainable_variables))
        discriminator_optimizer.apply_gradients(zip(gradients_of_discriminator,
                                                    discriminator.trainable_variables))
        return gen_loss, disc_loss

    return train_step


def train_with_checkpoints(run_block, budget_seconds: float, checkpoints: int, evaluate,
                           target: float | None = None) -> list[dict]:
    """Train for a budget of training seconds, evaluating at evenly spaced checkpoints.

    Args:
        run_block: ``run_block(max_seconds) -> (seconds, steps)``: train until at least
            ``max_seconds`` of training have passed (or a little more: whole steps).
        budget_seconds: training seconds in all (evaluations are not counted).
        checkpoints: evaluations over the budget.
        evaluate: ``evaluate() -> value`` (lower is better).
        target: stop at the first evaluation at or below it.

    Returns:
        ``[{"seconds", "steps", "value"}, ...]``, one per evaluation.
    """
    interval = float(budget_seconds) / max(1, int(checkpoints))
    clock, steps, trace = 0.0, 0, []
    while clock < budget_seconds * (1 - 1e-9):
        s, n = run_block(min(interval, budget_seconds - clock))
        clock, steps = clock + s, steps + n
        value = float(evaluate())
        trace.append({"seconds": clock, "steps": steps, "value": value})
        if target is not None and value <= target:
            break
    return trace


def time_to_quality(minutes: float, *, preset, checkpoints: int = 20, eval_images: int = 2000,
                    device=None, seed: int = 0, tutorial_batch: int = 256, log=_log) -> dict:
    """How soon our MNIST recipe reaches the FD the tutorial DCGAN reaches in ``minutes``.

    The tutorial recipe (its architecture, Adam 1e-4, batch 256, unconditional, its train step)
    trains for ``minutes`` of training time; then our recipe (the project's AC-GAN with the
    preset's sizes and learning rate, ``model.fit``) trains until its FD reaches the tutorial's
    final FD, or for as long. FD: the digit classifier's features of ``eval_images`` generated
    images against as many held-out real ones (generated classes cycle through the digits). Only
    training time counts: the evaluations and the first (tracing) step of each are left out.
    Both recipes run in this process, so the tutorial's also gets the oneDNN kernels that
    ``import gencomp_utils`` asks for: the comparison is of the recipes, not of the settings.

    Args:
        minutes: the tutorial's training time.
        preset: sizes of our recipe and of the digit classifier (``latent_dim``,
            ``base_filters``, ``classifier_steps``).
        checkpoints: FD evaluations over the budget (the same spacing for both).
        eval_images: images per FD.
        device: ours' precision and XLA (``None``: ``devices.choose("auto")``).
        seed: seeds both recipes.
        tutorial_batch: the tutorial's batch (256; tests use less).
        log: where progress lines go.

    Returns:
        ``{"budget_seconds", "tutorial": trace, "ours": trace, "target_fd", "ours_seconds"
        (None if not reached), "ratio", "meets_target" (ratio <= 1/3)}``; a trace is a list of
        ``{"seconds", "steps", "value"}`` (value: FD).
    """
    import keras
    import tensorflow as tf

    from gencomp_utils import data, devices, metrics, models, training

    device = device or devices.choose("auto")
    budget = 60.0 * float(minutes)
    splits = data.default_splits("mnist")
    log(f"time to quality: {splits.note}")
    x, y = training.Data("mnist", splits.train).arrays()
    xe, _ = training.Data("mnist", splits.eval).arrays()
    clf, _ = _digit_classifier(preset, log)
    n_eval = min(int(eval_images), len(xe))
    real = clf.features(xe[:n_eval])

    def fd_of(images01):
        return metrics.frechet_distance(real, clf.features(images01))

    # The tutorial: batch 256, shuffled, images in [-1, 1], a Python loop over the dataset.
    keras.utils.set_random_seed(seed)
    generator, discriminator = tutorial_dcgan()
    step = tutorial_dcgan_step(generator, discriminator, batch_size=int(tutorial_batch))
    ds = (tf.data.Dataset.from_tensor_slices(x * 2.0 - 1.0).shuffle(len(x), seed=seed)
          .batch(int(tutorial_batch), drop_remainder=True).repeat())
    it = iter(ds)
    step(next(it))  # trace outside the clock

    def tutorial_block(max_seconds):
        t0, n = time.perf_counter(), 0
        while time.perf_counter() - t0 < max_seconds:
            _wait(step(next(it)))
            n += 1
        return time.perf_counter() - t0, n

    noise = tf.random.normal([n_eval, 100], seed=seed)

    def tutorial_fd():
        images = np.concatenate([generator(noise[i:i + 500], training=False).numpy()
                                 for i in range(0, n_eval, 500)])
        value = fd_of((images + 1.0) / 2.0)
        log(f"time to quality: tutorial DCGAN FD {value:.2f}")
        return value

    log(f"time to quality: training the tutorial DCGAN for {minutes:g} min")
    tut = train_with_checkpoints(tutorial_block, budget, checkpoints, tutorial_fd)
    target = tut[-1]["value"]

    # Ours: the project's AC-GAN at the preset's sizes and learning rate, fed the engine's
    # batches in the engine's order (benchmarks.recipes.Trainee).
    from benchmarks.recipes import Trainee

    bs = int(preset.batch_size)
    if len(x) < bs:
        raise ValueError(f"{len(x)} MNIST training images are fewer than one batch of {bs}.")
    keras.utils.set_random_seed(seed)
    model = models.ACGAN((28, 28, 1), 10, preset.latent_dim, preset.base_filters,
                         precision=device.precision, seed=seed, fast_layers=device.fast_layers)
    model.compile(learning_rate=preset.gan_learning_rate, jit_compile=device.jit_compile,
                  steps_per_execution=device.steps_per_execution)
    trainee = Trainee(model, x, y, bs, seed)  # its first step is untimed: it traces

    def ours_block(max_seconds):
        seconds, steps = trainee.seconds, trainee.step
        trainee.train(max_seconds)
        return trainee.seconds - seconds, trainee.step - steps

    def ours_fd():
        value = fd_of(model.sample(n_eval, seed=seed))
        log(f"time to quality: ours FD {value:.2f} (target {target:.2f})")
        return value

    log(f"time to quality: training ours until FD <= {target:.2f} (at most {minutes:g} min)")
    ours = train_with_checkpoints(ours_block, budget, checkpoints, ours_fd, target=target)
    reached = metrics.first_reaching([t["value"] for t in ours], [t["seconds"] for t in ours],
                                     target)
    ratio = None if reached is None else reached / tut[-1]["seconds"]
    return {"budget_seconds": budget, "tutorial_batch": int(tutorial_batch),
            "splits": {"train": splits.train, "eval": splits.eval},
            "eval_images": n_eval, "tutorial": tut, "ours": ours, "target_fd": target,
            "ours_seconds": reached, "ratio": ratio,
            "meets_target": ratio is not None and ratio <= TTQ_TARGET}


# --------------------------------------------------------------------------------------------
# Command line


_PIPELINE_PROBE = r"""
import json, sys
def rss_mb():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024
from gencomp_utils import data
n, mode, size = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
split = f"train[:{n}]"
warm = data.load_dataset("celeba", "train[:64]", size, 64)  # graph, thread pools, decoders
for _ in warm:
    pass
before = peak = rss_mb()
if mode == "stream":
    for x, y in data.load_dataset("celeba", split, size, 64, shuffle=True):
        peak = max(peak, rss_mb())
    images = None
else:
    images, labels = data.load_numpy("celeba", split, image_size=size)
    peak = max(peak, rss_mb())
print(json.dumps({"images": n, "mode": mode, "before_mb": before, "growth_mb": peak - before}))
"""


def pipeline_memory(counts=(500, 5000), image_size: int = 64) -> dict:
    """Resident-memory growth of iterating the CelebA pipeline over ``counts`` images, each in a
    fresh process: streamed from the files (``load_dataset``) against loaded as one array
    (``load_numpy``). Growth is the peak RSS while iterating minus the RSS after a warm-up pass
    over 64 images (which builds the graph and the decoders' thread pools).

    Returns:
        ``{"rows": [{"images", "mode", "before_mb", "growth_mb"}, ...]}``, or ``{"skipped": why}``
        without CelebA or ``/proc`` (Linux only).
    """
    from gencomp_utils import data

    if not Path("/proc/self/status").is_file():
        return {"skipped": "resident memory is read from /proc (Linux only)."}
    if not data.available("celeba", "train"):
        return {"skipped": "CelebA not found: put it in the data folder (see the README)."}
    have = len(data.find_source("celeba", "train"))
    rows = []
    for n in counts:
        if n > have:
            _log(f"pipeline memory: only {have} CelebA images on disk, not {n}; skipped {n}.")
            continue
        for mode in ("stream", "arrays"):
            out = subprocess.run([sys.executable, "-c", _PIPELINE_PROBE, str(n), mode,
                                  str(image_size)], capture_output=True, text=True,
                                 env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
            if out.returncode != 0:
                raise RuntimeError(f"pipeline memory probe failed: {out.stderr[-2000:]}")
            row = json.loads(out.stdout.strip().splitlines()[-1])
            _log(f"pipeline memory: {n} images, {mode}: +{row['growth_mb']:.1f} MB")
            rows.append(row)
    return {"image_size": image_size, "rows": rows}


def parse_args(argv=None) -> argparse.Namespace:
    from gencomp_utils.presets import PRESETS

    p = argparse.ArgumentParser(
        prog="python -m benchmarks.bench",
        description="Training speed: the project's engine (model.fit on the model's train_step, "
                    "devices.choose settings) against the TensorFlow tutorials' hand-written "
                    "tf.function step, on the same architecture and batches.")
    p.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES),
                   help="image sides: 28 (28x28x1), 32 (32x32x3), 64 (64x64x3) (default: all)")
    p.add_argument("--models", nargs="+", choices=MODEL_KINDS, default=list(MODEL_KINDS),
                   help="vae (conditional VAE) and/or gan (AC-GAN) (default: both)")
    p.add_argument("--preset", choices=list(PRESETS), default="classroom",
                   help="sizes to take the defaults from (default: classroom)")
    p.add_argument("--batch-size", type=int, help="images per step (default: the preset's, 64)")
    p.add_argument("--base-filters", type=int, help="default: the preset's (32)")
    p.add_argument("--latent-dim", type=int, help="default: the preset's (8)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    p.add_argument("--steps", type=int, default=20, help="steps timed per round (default 20)")
    p.add_argument("--warmup", type=int, default=5,
                   help="untimed steps per variant before the rounds (default 5)")
    p.add_argument("--bf16", action="store_true", help="add ours in mixed_bfloat16")
    p.add_argument("--parts", action="store_true",
                   help="instead of the reference, time ours without each speed part in turn "
                        "(the AC-GAN's dropout, steps per call, fixed pipelines, oneDNN) and "
                        f"say which gain at least {PART_GAIN - 1:.0%} of a whole step")
    p.add_argument("--conv-time", action="store_true",
                   help="also time the convolutions of ours' step alone, with ours' kernels and "
                        "with TensorFlow's defaults")
    p.add_argument("--ceiling-size", type=int, default=2048,
                   help="side of the matmul that measures the ceiling (default 2048)")
    p.add_argument("--ceiling-repeats", type=int, default=5, help="timed matmuls (default 5)")
    p.add_argument("--fd", action="store_true",
                   help="time the Frechet distance with the digit classifier's features")
    p.add_argument("--fd-images", type=int, default=10_000, help="images for --fd (10,000)")
    p.add_argument("--suite", action="store_true", help="time `python -m pytest -q`")
    p.add_argument("--disk", action="store_true",
                   help="time 64x64 CelebA streamed from disk against the same batches in memory")
    p.add_argument("--disk-images", type=int, default=2000,
                   help="CelebA images streamed for --disk (train[:N], default 2000)")
    p.add_argument("--pipeline-memory", action="store_true",
                   help="resident memory growth of the CelebA pipeline over 500 and 5,000 images, "
                        "streamed against loaded as one array")
    p.add_argument("--time-to-quality", type=float, metavar="MINUTES",
                   help="train the tutorial DCGAN for MINUTES, then ours to its final FD")
    p.add_argument("--ttq-checkpoints", type=int, default=20,
                   help="FD evaluations over the time-to-quality budget (default 20)")
    p.add_argument("--ttq-eval-images", type=int, default=2000,
                   help="generated and real images per FD of --time-to-quality (default 2000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="PATH", help="also write the results to this JSON file")
    args = p.parse_args(argv)
    for name in ("rounds", "steps", "ceiling_size", "ceiling_repeats", "fd_images", "disk_images",
                 "ttq_checkpoints", "ttq_eval_images"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1.")
    if args.warmup < 0:
        p.error("--warmup must not be negative.")
    if args.time_to_quality is not None and args.time_to_quality <= 0:
        p.error("--time-to-quality must be a positive number of minutes.")
    for size in args.sizes:
        try:
            from gencomp_utils.models import Architecture

            Architecture(image_spec(size)[0])
        except ValueError as e:
            p.error(f"--sizes {size}: {e}")
    return args


def main(argv=None) -> int:
    """Run the benchmark (see ``python -m benchmarks.bench --help``); print the results.

    Returns:
        0 (also when a comparison is flagged as unfair: the flag is printed).
    """
    args = parse_args(argv)
    from gencomp_utils import devices, paths
    from gencomp_utils.presets import get_preset

    preset = get_preset(args.preset)
    batch = args.batch_size or preset.batch_size
    base = args.base_filters or preset.base_filters
    latent = args.latent_dim or preset.latent_dim
    device = devices.choose("auto")
    _log(f"device: {device}")
    _log(f"sizes: batch {batch}, base_filters {base}, latent {latent} (preset {preset.name}); "
         f"{args.rounds} rounds of {args.steps} steps after {args.warmup} warm-up steps")

    dtypes = ["float32", "bfloat16"]
    if ceiling_dtype(device.precision) not in dtypes:
        dtypes.append(ceiling_dtype(device.precision))
    rows, part_rows, ceilings = [], [], {}
    with ReferenceProcess() as reference:
        reference_onednn = reference.call("onednn")
        _log(f"reference: a separate process with TensorFlow's defaults (oneDNN "
             f"{_on_off(reference_onednn)}); ours: this process (oneDNN "
             f"{_on_off(device.onednn)})")
        for dt in dtypes:
            ceilings[dt] = matmul_ceiling(args.ceiling_size, dt, args.ceiling_repeats)
            ceilings[dt]["settings"] = "the engine settings"
            _log(f"ceiling {dt} (ours): {ceilings[dt]['gflops']:.1f} GFLOP/s")
        if reference_onednn != device.onednn:
            c = reference.call("ceiling", args.ceiling_size, "float32", args.ceiling_repeats)
            ceilings["float32_tf_defaults"] = c | {"settings": "TensorFlow's defaults"}
            _log(f"ceiling float32 (TensorFlow's defaults): {c['gflops']:.1f} GFLOP/s")
        parts = part_variants(device, reference_onednn) if args.parts else []
        for size in args.sizes:
            shape, classes = image_spec(size)
            for kind in args.models:
                if args.parts:
                    part_rows.append(measure_parts(
                        Spec(kind, shape, classes), parts, batch_size=batch, base_filters=base,
                        latent_dim=latent, rounds=args.rounds, steps=args.steps,
                        warmup=args.warmup, device=device, reference=reference,
                        vae_beta=preset.vae_beta, seed=args.seed))
                    continue
                rows += measure(Spec(kind, shape, classes), batch_size=batch, base_filters=base,
                                latent_dim=latent, rounds=args.rounds, steps=args.steps,
                                warmup=args.warmup, device=device, ceilings=ceilings,
                                reference=reference, bf16=args.bf16,
                                conv_time=args.conv_time, vae_beta=preset.vae_beta,
                                seed=args.seed)
    results = {"device": str(device), "precision": device.precision,
               "jit_compile": device.jit_compile, "bf16_instructions": devices.cpu_has_bf16(),
               "onednn": device.onednn, "reference_onednn": reference_onednn,
               "settings": {"batch_size": batch, "base_filters": base, "latent_dim": latent,
                            "preset": preset.name, "rounds": args.rounds, "steps": args.steps,
                            "warmup": args.warmup},
               "ceilings": ceilings, "rows": rows}
    if args.parts:
        results |= {"parts": part_rows, "part_verdicts": part_verdicts(part_rows)}
    if args.fd:
        results["fd"] = time_fd(args.fd_images, preset)
    if args.disk:
        results["disk"] = time_disk(args.models, n_images=args.disk_images, batch_size=batch,
                                    base_filters=base, latent_dim=latent, rounds=args.rounds,
                                    steps=args.steps, warmup=args.warmup, device=device,
                                    vae_beta=preset.vae_beta)
        if "skipped" in results["disk"]:
            _log(results["disk"]["skipped"])
    if args.pipeline_memory:
        results["pipeline_memory"] = pipeline_memory()
    if args.time_to_quality is not None:
        results["time_to_quality"] = time_to_quality(
            args.time_to_quality, preset=preset, checkpoints=args.ttq_checkpoints,
            eval_images=args.ttq_eval_images, device=device, seed=args.seed)
    if args.suite:
        _log("running the test suite (python -m pytest -q) ...")
        results["suite"] = time_suite()

    print()
    print(report(results))
    if args.json:
        path = paths.write_json(args.json, results)
        print(f"\nresults written to {path}")
    return 0


def _on_off(flag) -> str:
    return "unknown" if flag is None else ("on" if flag else "off")


def report(results: dict) -> str:
    """The printed report: table, flags, ceilings, device settings and the optional timings."""
    rows = results["rows"]
    settings = results["settings"]
    out = []
    if "parts" in results:
        out += [f"## What each speed part gains (median of {settings['rounds']} interleaved "
                f"rounds of {settings['steps']} steps, batch {settings['batch_size']})", "",
                format_parts_table(results["parts"]), "",
                "Each cell: the engine's time for a step without the part over its time with "
                "all parts (above 1: the part makes the step faster), and in brackets the "
                "lowest and highest of that ratio in one round. Without the bit-mask dropout, "
                "Keras's (the AC-GAN only: the VAE has no dropout); without several steps per "
                "call, 1; without the fixed "
                "pipelines, tf.data's autotuning; without oneDNN, the engine runs in a process "
                "with TensorFlow's defaults. A part is kept when it gains at least "
                f"{PART_GAIN - 1:.0%} on some model and size and its gain is at least "
                f"{PART_NOT_SLOWER:.2f} on every one.", ""]
    if rows:
        out += [f"## Training speed (images per second, median of {settings['rounds']} "
                f"interleaved rounds of {settings['steps']} steps, batch "
                f"{settings['batch_size']})", "", format_table(rows), ""]
    flagged = sorted({f"{r['model_name']} {r['size']}" for r in rows if r["flag"]})
    if flagged:
        out.append(f"Flag: {UNFAIR} for {', '.join(flagged)}.")
    if rows:
        out += ["ours/ref > 1: ours is faster. By round: the lowest and highest ratio of the "
                "reference's time to ours' in one round, each round timing both in turn; their "
                "spread shows how much the machine moved during the run. The reference runs in a "
                "process of its own with TensorFlow's defaults (oneDNN "
                f"{_on_off(results.get('reference_onednn'))}); ours in the benchmark's process "
                f"(oneDNN {_on_off(results.get('onednn'))}). The percentages of float32 are of the "
                "best float32 ceiling measured. Peak RSS is ours' process's high-water mark "
                "(getrusage ru_maxrss) after each row, so it grows along the table and bounds, rather "
                "than isolates, each row; run one --sizes/--models at a time to isolate it.", ""]
    out += ["Ceilings (same run):", format_ceilings(results["ceilings"]), "",
            f"Device settings (devices.choose): {results['device']}",
            f"CPU bfloat16 instructions (avx512_bf16/amx_bf16): "
            f"{'yes' if results['bf16_instructions'] else 'no'}", gpu_note()]
    if any("convolutions" in r for r in rows):
        out += ["", "Convolutions alone (--conv-time): the convolution kernels ours' training "
                    "step runs (read from its graph, without the gradients nothing uses), each "
                    "timed alone with both cores (8 calls in a row, median of 7 timings), with "
                    "ours' kernels and with TensorFlow's defaults (in the reference process), "
                    "summed per step. In a step, kernels may also run side by side.", "",
                format_conv_table(rows)]
    if "fd" in results:
        f = results["fd"]
        out += ["", f"FD (digit classifier features) on {f['images']:,} images: "
                    f"{f['seconds']:.2f} s ({f['features_seconds']:.2f} s features, "
                    f"{f['fd_seconds']:.2f} s distance; classifier {f['classifier']} in "
                    f"{f['classifier_seconds']:.1f} s)"]
    if "disk" in results:
        d = results["disk"]
        if "skipped" in d:
            out += ["", f"Disk vs memory: skipped. {d['skipped']}"]
        else:
            out += ["", f"Disk vs memory (64x64x3 CelebA, {d['images']:,} images streamed):"]
            out += [f"- {MODEL_NAMES[r['model']]}: JPEG files {r['disk_img_s']:,.0f} img/s, "
                    f"decoded cache file {r['disk_cache_img_s']:,.0f} img/s, memory "
                    f"{r['memory_img_s']:,.0f} img/s; disk/memory {r['ratio']:.2f} (JPEG), "
                    f"{r['cache_ratio']:.2f} (cache file)" for r in d["rows"]]
    if "pipeline_memory" in results:
        pm = results["pipeline_memory"]
        if "skipped" in pm:
            out += ["", f"Pipeline memory: skipped. {pm['skipped']}"]
        else:
            out += ["", f"CelebA pipeline, resident memory growth ({pm['image_size']}x"
                        f"{pm['image_size']}, fresh process each):"]
            how = {"stream": "streamed from the files", "arrays": "loaded as one array"}
            out += [f"- {r['images']:,} images, {how[r['mode']]}: +{r['growth_mb']:.1f} MB"
                    for r in pm["rows"]]
    if "time_to_quality" in results:
        t = results["time_to_quality"]
        tut = t["tutorial"][-1]
        line = (f"Time to quality: the tutorial DCGAN reached FD {t['target_fd']:.2f} after "
                f"{tut['seconds']:.0f} s ({tut['steps']} steps of {t['tutorial_batch']}); ")
        if t["ours_seconds"] is None:
            line += (f"ours did not reach it within {t['budget_seconds']:.0f} s (best FD "
                     f"{min(x['value'] for x in t['ours']):.2f}).")
        else:
            line += (f"ours reached it after {t['ours_seconds']:.0f} s: {t['ratio']:.2f} of the "
                     f"tutorial's time (target at most {TTQ_TARGET:.2f}: "
                     f"{'met' if t['meets_target'] else 'not met'}).")
        out += ["", line]
    if "suite" in results:
        s = results["suite"]
        out += ["", f"Test suite: {s['seconds']:.0f} s wall (exit code {s['returncode']}; "
                    f"{s['summary']})"]
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
