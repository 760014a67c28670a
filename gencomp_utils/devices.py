"""Which device to train on, in which precision, with which ``tf.distribute`` strategy.

:func:`choose` looks at the devices TensorFlow sees (or at a list you give it, which is how the
tests mock a GPU or a TPU machine) and decides:

- **XLA** (``jit_compile``) only on accelerators: on a CPU it made our train steps slower, on
  GPUs and TPUs it is usually faster.
- **precision**: ``"float32"``, or mixed precision, where layers compute in 16 bits and keep their
  weights, the losses and the last layer of every model in float32: ``mixed_float16`` with loss
  scaling on a GPU, ``mixed_bfloat16`` on a TPU. On a CPU, float32 unless mixed precision is
  asked for (then ``mixed_bfloat16``): even on CPUs with bfloat16 instructions it trained some
  of the course's models slower than float32.
- **strategy**: the default (one device), ``MirroredStrategy`` over several GPUs, or
  ``TPUStrategy``. Models are built inside ``strategy.scope()`` and every batch is a *global*
  batch, split across the replicas.
- **steps per call** (Keras's ``steps_per_execution``): :data:`STEPS_PER_EXECUTION` on one GPU,
  where Python's wait between short steps leaves the device idle; 1 on a CPU, where more gave no
  consistent gain (``benchmarks/README.md``) and every step is checked for a diverged loss; 1
  under ``MirroredStrategy`` and ``TPUStrategy``, where Keras's multi-step call fails
  (keras-team/keras#19246, reproduced with two CPU replicas).

``import gencomp_utils.devices`` does not import TensorFlow; :func:`choose` and
:func:`make_strategy` do, unless they are given the device list.
"""
from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import re
import sys
from dataclasses import dataclass, replace

ONEDNN_VAR = "TF_ENABLE_ONEDNN_OPTS"
LOG_LEVEL_VAR = "TF_CPP_MIN_LOG_LEVEL"  # TensorFlow's C++ log: 0 all, 1 no INFO, 2 no WARNING,
QUIET_LEVEL = "3"                        # 3 no ERROR (raised errors still show in Python)
# A line of TensorFlow's C++ log, in absl's format ("E0000 00:00:1795791546.147714  2388 x.cc:52]")
# or the older one ("2024-01-31 12:00:00.000000: E x.cc:52]"), or absl's notice that it logs to
# stderr before it is set up (a warning).
TF_LOG_LINE = re.compile(
    r"^(?:(?P<severity>[IWE])\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\]"
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: (?P<old_severity>[IWE]) \S+:\d+\]"
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR)")
TF_DEFAULTS_VAR = "GENCOMP_TF_DEFAULTS"  # "1": leave TensorFlow's own defaults alone
PRECISIONS = ("auto", "float32", "mixed", "mixed_bfloat16", "mixed_float16")
STRATEGIES = ("auto", "default", "mirrored", "tpu")
STEPS_PER_EXECUTION = 16  # train steps per call into TensorFlow (see the module's docstring)


@dataclass(frozen=True)
class DeviceChoice:
    """How to train on this machine.

    Attributes:
        kind: ``"CPU"``, ``"GPU"`` or ``"TPU"``: the device type the work runs on.
        count: how many devices of that kind are used.
        jit_compile: compile train steps with XLA.
        precision: Keras dtype policy: ``"float32"``, ``"mixed_bfloat16"`` or ``"mixed_float16"``.
        strategy: ``"default"`` (one device), ``"mirrored"`` or ``"tpu"``.
        reason: one line saying why, for the notebook to print.
        onednn: TensorFlow runs its CPU kernels through oneDNN (``None``: unknown).
        steps_per_execution: at most this many train steps per call into TensorFlow (the
            training engine ends a call early at an evaluation or at the end of an epoch).
    """

    kind: str
    count: int
    jit_compile: bool
    precision: str
    strategy: str
    reason: str
    onednn: bool | None = None
    steps_per_execution: int = 1

    @property
    def fast_layers(self) -> bool:
        """Build the AC-GAN's dropout in its CPU form (:mod:`gencomp_utils.fast_layers`); on
        accelerators, Keras's own."""
        return self.kind == "CPU"

    def replace(self, **changes) -> "DeviceChoice":
        """A copy with some fields changed, e.g. ``choice.replace(jit_compile=False)``."""
        return replace(self, **changes)

    def __str__(self) -> str:
        onednn = "" if self.onednn is None else f", oneDNN {'on' if self.onednn else 'off'}"
        return (f"{self.count} x {self.kind}, precision {self.precision}, "
                f"XLA {'on' if self.jit_compile else 'off'}{onednn}, strategy {self.strategy}, "
                f"{self.steps_per_execution} step{'s' if self.steps_per_execution != 1 else ''} "
                f"per call ({self.reason})")


def _device_types(devices) -> list[str]:
    """Device types from PhysicalDevice-like objects or plain strings like ``"GPU"``."""
    return [str(getattr(d, "device_type", d)).upper() for d in devices]


def list_devices() -> list:
    """Physical devices TensorFlow sees, plus logical TPU devices once a TPU system is set up."""
    import tensorflow as tf

    devices = list(tf.config.list_physical_devices())
    if "TPU" not in _device_types(devices):
        try:
            devices += tf.config.list_logical_devices("TPU")
        except Exception:  # no TPU runtime: nothing to add
            pass
    return devices


def prefer_onednn() -> bool:
    """Ask TensorFlow, before it is imported, for its oneDNN CPU kernels; ``True`` if this did.

    TensorFlow turns oneDNN on by itself only on CPUs with AVX-512 neural-network features;
    where it does not, oneDNN trained the course's models faster (``benchmarks/README.md``
    gives the figures). Results differ from the default kernels only by floating-point
    rounding. ``import gencomp_utils`` calls this.

    Nothing changes when ``TF_ENABLE_ONEDNN_OPTS`` is already set (``0`` keeps oneDNN off),
    when TensorFlow was imported first (too late: it reads the variable once), or when
    ``GENCOMP_TF_DEFAULTS=1`` (TensorFlow's own defaults, as the benchmark's reference runs).
    """
    if (ONEDNN_VAR in os.environ or "tensorflow" in sys.modules
            or os.environ.get(TF_DEFAULTS_VAR) == "1"):
        return False
    os.environ[ONEDNN_VAR] = "1"
    return True


def quiet_tensorflow_logs() -> bool:
    """Keep TensorFlow's C++ log lines out of notebooks and consoles; ``True`` if the hook is set.

    Before TensorFlow is imported: sets ``TF_CPP_MIN_LOG_LEVEL`` to ``3`` when it is unset (an
    error TensorFlow raises still reaches you as a Python exception; ``1`` or ``2`` also shows
    the errors it only logs, ``0`` every line), and wraps the first ``import tensorflow``, and
    its search for devices, in :func:`_held_back_logs`: TensorFlow reads the level only after
    its libraries have printed their start-up lines (absl's ``WARNING: All log messages
    before absl::InitializeLog() ...``, ``failed call to cuInit`` without a GPU), which would
    otherwise land in the first cell that imports it. The hook then removes itself. Nothing
    changes when TensorFlow was imported first. ``import gencomp_utils`` calls this.
    """
    if "tensorflow" in sys.modules:
        return False
    os.environ.setdefault(LOG_LEVEL_VAR, QUIET_LEVEL)
    if _log_level() < 1:
        return False
    if not any(isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())
    return True


def _log_level() -> int:
    try:
        return int(os.environ.get(LOG_LEVEL_VAR, "0"))
    except ValueError:
        return 0


def below_log_level(line: str, level: int) -> bool:
    """Whether ``line`` is a TensorFlow log line that log level ``level`` hides."""
    m = TF_LOG_LINE.match(line)
    if not m:
        return False
    severity = m.group("severity") or m.group("old_severity") or "W"
    return "IWE".index(severity) < level


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Runs the first ``import tensorflow`` (by anyone) inside :func:`_held_back_logs`, then
    removes itself. A mere look-up (``importlib.util.find_spec``) leaves it in place."""

    def __init__(self):
        self._finding = False

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow" or self._finding:
            return None
        self._finding = True
        try:
            spec = importlib.util.find_spec(name)  # the other finders' answer
        finally:
            self._finding = False
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        load, finder = spec.loader.exec_module, self

        def exec_module(module):
            with contextlib.suppress(ValueError):
                sys.meta_path.remove(finder)
            del spec.loader.exec_module  # the loader's own method again
            with _held_back_logs(_log_level()):
                load(module)
                with contextlib.suppress(Exception):  # the device search logs too (cuInit)
                    module.config.list_physical_devices()

        spec.loader.exec_module = exec_module
        return spec


@contextlib.contextmanager
def _held_back_logs(level: int):
    """Meanwhile, send what is written to file descriptor 2 to a temporary file; then write it
    on without the TensorFlow log lines that log level ``level`` hides, or all of it if the
    block raised (the held-back lines may say why)."""
    import tempfile

    with contextlib.suppress(AttributeError, OSError, ValueError):
        sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no file descriptor 2 to redirect
        yield
        return
    failed = True
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
            failed = False
        finally:
            with contextlib.suppress(AttributeError, OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            for line in caught:
                if failed or not below_log_level(line.decode(errors="replace"), level):
                    os.write(2, line)


def onednn_enabled() -> bool | None:
    """Whether TensorFlow runs its CPU kernels through oneDNN (imports TensorFlow; ``None``:
    this TensorFlow build cannot tell)."""
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:
        return None
    return bool(_pywrap_util_port.IsMklEnabled())


def cpu_flags() -> set[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (empty where that file does not exist)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_description() -> str:
    """The CPU in a few words, e.g. ``AMD EPYC, 2 cores, AVX-512 BF16`` (its model name from
    ``/proc/cpuinfo``, the cores this process may use, and whether it has bfloat16 units, which
    change how fast the course trains)."""
    import os

    name = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            name = next((line.split(":", 1)[1].strip() for line in f
                         if line.startswith("model name")), name)
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    flags = cpu_flags()
    return (f"{name}, {cores} cores" + (", AVX-512 BF16" if "avx512_bf16" in flags else "")
            + (", AMX" if "amx_bf16" in flags else ""))


def cpu_has_bf16(flags: set[str] | None = None) -> bool:
    """Whether the CPU advertises bfloat16 arithmetic (AVX512-BF16 or AMX-BF16)."""
    flags = cpu_flags() if flags is None else set(flags)
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def tpu_address() -> str | None:
    """The TPU address Colab or a Cloud TPU VM advertises, if any."""
    return os.environ.get("COLAB_TPU_ADDR") or os.environ.get("TPU_NAME")


def choose(precision: str = "auto", strategy: str = "auto", devices=None,
           flags: set[str] | None = None, gpu_compute_capability: tuple[int, int] | None = None,
           jit_compile: bool | None = None, onednn: bool | None = None,
           steps_per_execution: int | None = None) -> DeviceChoice:
    """Pick device, precision, XLA and strategy for training.

    Args:
        precision: ``"auto"`` (mixed where the hardware gains from it: bfloat16 on TPUs,
            float16 on GPUs of compute capability 7.0 or more; float32 on CPUs), ``"float32"``,
            ``"mixed"`` (the device's 16-bit type), or a Keras policy name.
        strategy: ``"auto"`` (TPU strategy on a TPU, mirrored over 2+ GPUs, else the default),
            ``"default"``, ``"mirrored"`` or ``"tpu"``.
        devices: device list to decide from (``PhysicalDevice`` objects or strings such as
            ``"GPU"``); ``None``: what TensorFlow sees. Tests pass mocked lists.
        flags: CPU flags (``None``: read ``/proc/cpuinfo``).
        gpu_compute_capability: ``(major, minor)`` of the first GPU (``None``: ask TensorFlow, or
            assume 7.0 when the device list is mocked).
        jit_compile: force XLA on or off (``None``: on for GPU and TPU, off on CPU).
        onednn: whether TensorFlow's CPU kernels use oneDNN (``None``: ask TensorFlow, or, with
            a mocked device list, leave it unknown).
        steps_per_execution: train steps per call into TensorFlow (``None``: as the module's
            docstring says).

    Returns:
        A :class:`DeviceChoice`.

    Raises:
        ValueError: unknown precision or strategy, or a strategy the devices cannot run.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"Unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}.")
    if strategy not in STRATEGIES:
        raise ValueError(f"Unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}.")
    if steps_per_execution is not None and int(steps_per_execution) < 1:
        raise ValueError(f"steps_per_execution must be at least 1, got {steps_per_execution!r}.")
    mocked = devices is not None
    types = _device_types(list_devices() if devices is None else devices)
    n_gpu, n_tpu = types.count("GPU"), types.count("TPU")
    if n_tpu:
        kind, count = "TPU", n_tpu
    elif n_gpu:
        kind, count = "GPU", n_gpu
    else:
        kind, count = "CPU", 1

    if kind == "GPU" and gpu_compute_capability is None:
        gpu_compute_capability = (7, 0) if mocked else _gpu_capability()
    if precision == "auto":
        if kind == "TPU":
            policy, why = "mixed_bfloat16", "TPUs compute in bfloat16"
        elif kind == "GPU" and gpu_compute_capability >= (7, 0):
            policy, why = "mixed_float16", "the GPU has tensor cores"
        elif kind == "CPU" and cpu_has_bf16(flags):
            policy, why = "float32", ("float32 on a CPU, although it has bfloat16 instructions: "
                                      "precision='mixed' trains in bfloat16, faster for some "
                                      "models and slower for others")
        else:
            policy, why = "float32", f"no 16-bit speed-up expected on this {kind}"
    elif precision == "mixed":
        policy = "mixed_float16" if kind == "GPU" else "mixed_bfloat16"
        why = "mixed precision asked for"
    else:
        policy, why = precision, f"{precision} asked for"

    if strategy == "auto":
        strategy = "tpu" if kind == "TPU" else ("mirrored" if count > 1 else "default")
    if strategy == "tpu" and kind != "TPU":
        raise ValueError("strategy='tpu' needs a TPU, and none is visible.")
    if strategy == "mirrored" and kind == "CPU":
        count = max(1, types.count("CPU") if mocked else _logical_cpus())
    if steps_per_execution is None:
        steps_per_execution = (STEPS_PER_EXECUTION if strategy == "default" and kind == "GPU"
                               else 1)
    jit = (kind != "CPU") if jit_compile is None else bool(jit_compile)
    xla = "XLA on (faster on accelerators)" if jit else "XLA off (slower on CPUs)"
    reason = f"{why}; {xla}"
    if onednn is None and not mocked:
        onednn = onednn_enabled()
    if kind == "CPU" and onednn is False:
        reason += (f"; oneDNN off: set {ONEDNN_VAR}=1 before TensorFlow is imported (or import "
                   "gencomp_utils first): it trains this course's models faster on CPUs where "
                   "TensorFlow leaves it off")
    return DeviceChoice(kind=kind, count=count, jit_compile=jit, precision=policy,
                        strategy=strategy, reason=reason, onednn=onednn,
                        steps_per_execution=int(steps_per_execution))


def _logical_cpus() -> int:
    import tensorflow as tf

    return len(tf.config.list_logical_devices("CPU"))


def _gpu_capability() -> tuple[int, int]:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    try:
        cc = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability")
        return tuple(cc) if cc else (0, 0)
    except Exception:  # details unavailable: assume an old GPU
        return (0, 0)


def make_strategy(choice: DeviceChoice | None = None, devices: list[str] | None = None):
    """The ``tf.distribute.Strategy`` for a choice.

    Args:
        choice: from :func:`choose` (``None``: ``choose()``).
        devices: device names for ``MirroredStrategy`` (``None``: all GPUs; on a CPU-only
            machine, all logical CPUs, which is how the tests run two replicas).

    Returns:
        A strategy; use its ``scope()`` to build and compile models.
    """
    import tensorflow as tf

    choice = choice or choose()
    if choice.strategy == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_address() or "")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    if choice.strategy == "mirrored":
        if devices is None and choice.kind == "CPU":
            devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    return tf.distribute.get_strategy()
