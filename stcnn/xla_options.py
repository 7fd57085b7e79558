"""The XLA compiler options every jitted stcnn program (training step, evaluation and prediction
forwards, benchmarks) is compiled with: `compiler_options()`, passed as
`jax.jit(..., compiler_options=compiler_options())`.

On CPU, convolutions are left to XLA's own (Eigen) kernels instead of YNNPACK's: XLA:CPU (jax
0.10) hands each convolution, dot and reduction to YNNPACK by default, and YNNPACK runs a
convolution and its gradients on one thread. Measured on the 2-core machine (user time / wall time
over the call; `jax.profiler` shows the thunk on one thread): slow fusion's conv1 weight gradient at
the `cpu` size (128 × 54² × 12 → 11×11×12×24) 88.5 ms on 1.03 cores with YNNPACK, 34.3 ms on 1.93
with Eigen; the training step's conv1 weight gradient alone was 91 of its ~210 ms. `bench model
--sizes=cpu`, two runs of each alternating, training clips/s: early fusion 363, 457 → 687, 605;
slow fusion 213, 173 → 361, 330; late fusion 497, 510 → 611, 572; multires slow fusion 276, 338 →
309, 362; single-frame 1,014, 1,183 → 1,612, 1,149; multires 2,120, 1,626 → 2,044, 1,799
(unchanged within the machine's swing). Dots and reductions stay with YNNPACK (its default list
minus convolutions).

Copy insertion with region analysis (`xla_cpu_copy_insertion_use_region_analysis`, XLA:GPU's
default, off on CPU): without it XLA:CPU copies every parameter that a backward layer still
reads for its input gradient (all but conv1's kernel) before the training step updates it in
place in its donated buffer: a copy of the whole network a step, 411 MB for multires's fc1 kernel
alone at paper size (20 ms of its ~650 ms step in a profile). Region analysis proves the update
comes after those reads and drops the copies; the values are the same (only copies go). Measured
2026-12-07 (`bench model`'s `time_model`, alternating, medians of 3, an AMD EPYC 2-core machine
about twice as fast as the one above): `cpu` size slow fusion 673 → 687 clips/s, late fusion
1,830 → 1,896, single-frame 2,476 → 2,668 (2,385-3,191 against 2,596-3,265), multires 4,381 →
4,361; paper-size multires 46.4-49.3 → 49.6-50.2.

Other backends get no options (their own convolution libraries: cuDNN, the TPU's units). If a jax
version no longer knows the option, `compiler_options()` warns once and returns none.
"""
import functools

from absl import logging
import jax

# XLA:CPU's default YNNPACK fusion types (jax 0.10: individual dots, reductions, individual
# convolutions) less the convolutions; copy insertion that sees a donated parameter's last read.
_CPU = {"xla_cpu_experimental_ynn_fusion_type":
        "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE",
        "xla_cpu_copy_insertion_use_region_analysis": True}


@functools.cache
def _accepted(options: tuple) -> bool:
  try:
    jax.jit(lambda x: x + 1, compiler_options=dict(options)).lower(1.0).compile()
    return True
  except Exception as e:  # pylint: disable=broad-except  (jaxlib raises its own error types)
    logging.warning("stcnn.xla_options: this jax rejects %s (%s); compiling with XLA's defaults",
                    dict(options), str(e).splitlines()[0][:200])
    return False


def compiler_options(backend: str | None = None) -> dict:
  """The options for programs compiled for `backend` (default: jax's default backend)."""
  if (backend or jax.default_backend()) != "cpu" or not _accepted(tuple(_CPU.items())):
    return {}
  return dict(_CPU)
