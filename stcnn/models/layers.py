"""Building blocks of the paper's networks: LRN, the (spatio-)temporal conv, and the conv tower.

Temporal convolutions are written as 2-D convolutions: the `kt` frames a filter spans are stacked
into
channels and the output times are folded into the batch. This is exactly a 3-D convolution that is
valid in time (kernel (kt, f, f, C, d) reshaped to (f, f, kt*C, d), same parameter count), and on
XLA:CPU it is ~7x faster than `nn.Conv` with a 3-D kernel (measured: slow fusion 17 → 114 clips/s).

Speed on XLA:CPU. Every fast path keeps the plain formulation as a reference (`conv_reference`,
`max_pool_reference`, `stack_time_reference`); the formulations used compute the
same function (to float rounding) with the same parameters, and tests/test_layers.py checks values
and gradients against the references. Measured on 2 threads (training step, forward + backward):
- the stride-1 convs on maps smaller than their kernel (multires conv3-5 at the `cpu` size) as
  im2col (`conv_im2col`); `conv_impl_for` says where and what else was measured;
- 2×2 max pooling as a max over the four strided sub-grids with a hand-written gradient
  (`max_pool`): XLA:CPU's `select_and_scatter` (the gradient of `reduce_window` max) is slow.
  The gradient goes to the first maximum of each window in row-major order, like
  `select_and_scatter`, so ties are broken the same way.
"""
from __future__ import annotations

import functools
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

# The base tower [paper §1]: C(96,11,3)-N-P-C(256,5,1)-N-P-C(384,3,1)-C(384,3,1)-C(256,3,1)-P.
# (filters, kernel, stride, LRN+pool after it)
CONVS = ((96, 11, 3, True), (256, 5, 1, True), (384, 3, 1, False), (384, 3, 1, False),
         (256, 3, 1, False))
FC_WIDTH = 4096
_DN = ("NHWC", "HWIO", "NHWC")


def scaled(n: int, width: float) -> int:
  """Width multiplier: every layer's channel count scaled, at least 1."""
  return max(1, int(round(n * width)))


# ------------------------------------------------------------------------------------------- LRN
def lrn(x, k: float = 2.0, n: int = 5, alpha: float = 1e-4, beta: float = 0.5):
  """Local response normalisation across channels [paper: k=2, n=5, α=1e-4, β=0.5].

  b_c = a_c / (k + α · Σ_{c' = c-n//2 .. c+n//2} a_{c'}²)^β   (AlexNet's formula, α not divided
  by n; neighbours past the first/last channel are absent).

  `reduce_window` over channels is the fastest formulation measured on XLA:CPU: a banded 0/1
  (C×C) matmul is ~15% slower, a cumsum difference ~5×, a sum of n shifted slices ~8×.
  """
  sq = jnp.square(x)
  half = n // 2
  window = (1,) * (x.ndim - 1) + (n,)
  pad = ((0, 0),) * (x.ndim - 1) + ((half, n - 1 - half),)
  ssum = jax.lax.reduce_window(sq, 0.0, jax.lax.add, window, (1,) * x.ndim, pad)
  return x * jax.lax.rsqrt(k + alpha * ssum) if beta == 0.5 else x / (k + alpha * ssum) ** beta


# --------------------------------------------------------------------------------------- pooling
def max_pool_reference(x):
  """`max_pool` as `reduce_window` (flax's nn.max_pool; its gradient is `select_and_scatter`)."""
  return nn.max_pool(x, (2, 2), strides=(2, 2), padding="VALID")


def _pool_quarters(x):
  """The four (B, h, w, C) sub-grids of a 2×2 window, row-major: (0,0), (0,1), (1,0), (1,1)."""
  h, w = x.shape[-3] // 2, x.shape[-2] // 2
  x = x[..., :2 * h, :2 * w, :]
  return [x[..., i::2, j::2, :] for i in (0, 1) for j in (0, 1)]


@jax.custom_vjp
def max_pool(x):
  """P: max pooling over non-overlapping 2×2 spatial regions (floor); x (..., H, W, C)."""
  a, b, c, d = _pool_quarters(x)
  return jnp.maximum(jnp.maximum(a, b), jnp.maximum(c, d))


def _max_pool_fwd(x):
  y = max_pool(x)
  return y, (x, y)


def _max_pool_bwd(res, g):
  x, y = res
  zero = jnp.zeros_like(g)
  taken = None
  grads = []
  for q in _pool_quarters(x):  # the first maximum in the window gets the gradient
    hit = q == y if taken is None else (q == y) & ~taken
    grads.append(jnp.where(hit, g, zero))
    taken = hit if taken is None else taken | hit
  # Interleave back: (..., h, 2, w, 2, C) → (..., 2h, 2w, C), then zeros for a cropped edge.
  top = jnp.stack(grads[:2], axis=-2)
  bottom = jnp.stack(grads[2:], axis=-2)
  gx = jnp.stack([top, bottom], axis=-4)
  *lead, h, _, w, _, ch = gx.shape
  gx = gx.reshape(tuple(lead) + (2 * h, 2 * w, ch))
  pad = ((0, 0),) * (x.ndim - 3) + ((0, x.shape[-3] - 2 * h), (0, x.shape[-2] - 2 * w), (0, 0))
  return (jnp.pad(gx, pad),)


max_pool.defvjp(_max_pool_fwd, _max_pool_bwd)


# ----------------------------------------------------------------------------------------- convs
def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
  """(output size, low pad, high pad) of a SAME convolution (TensorFlow/XLA convention)."""
  out = -(-size // stride)
  total = max((out - 1) * stride + kernel - size, 0)
  return out, total // 2, total - total // 2


def conv_reference(x, w, stride: int):
  """2-D conv, SAME padding: x (N, H, W, C), w (f, f, C, d) → (N, ceil(H/s), ceil(W/s), d)."""
  return jax.lax.conv_general_dilated(x, w, (stride, stride), "SAME", dimension_numbers=_DN)


def conv_im2col(x, w, stride: int):
  """`conv_reference` as im2col: the f·f strided shifts of the padded input concatenated on
  channels (order (dy, dx, c), the kernel's row-major order), then one matmul with the kernel
  reshaped to (f·f·C, d)."""
  n, h, wd, c = x.shape
  fh, fw, _, d = w.shape
  oh, ph0, ph1 = same_padding(h, fh, stride)
  ow, pw0, pw1 = same_padding(wd, fw, stride)
  xp = jnp.pad(x, ((0, 0), (ph0, ph1), (pw0, pw1), (0, 0)))
  cols = [xp[:, dy:dy + stride * (oh - 1) + 1:stride, dx:dx + stride * (ow - 1) + 1:stride]
          for dy in range(fh) for dx in range(fw)]
  patches = jnp.concatenate(cols, axis=-1).reshape(n * oh * ow, fh * fw * c)
  return (patches @ w.reshape(fh * fw * c, d)).reshape(n, oh, ow, d)


CONV_IMPLS = {"reference": conv_reference, "im2col": conv_im2col}


def conv_impl_for(stride: int, size: int, kernel: int) -> str:
  """The formulation of a conv layer on XLA:CPU (`size`: the input's larger spatial side): im2col
  for a stride-1 conv on a map smaller than its kernel, where most taps fall on padding (conv3-5
  of the multires streams at the `cpu` size: 3×3 kernels on 2² maps), XLA's convolution for the
  rest. Other platforms always get XLA's convolution (cuDNN, the TPU's convolution units):
  `conv2d` stages both out with `jax.lax.platform_dependent`.

  Measured with whole `cpu` training steps (`stcnn.bench model`, 2 threads, batch 32, XLA's
  convolution compiled for its multi-threaded kernels by `stcnn.xla_options`, 2026-12-01,
  alternating runs): im2col there gives multires 1,306-1,573 clips/s against 747 with XLA's
  convolution. On maps as large as the kernel (multires conv2, 5×5 on 5²) im2col also won
  against YNNPACK's single-threaded convolution, but it grows multires slow fusion's step
  temporaries from 33 to 77 MB (its conv2 sees two frames' channels), past the size glibc serves
  from a thread's heap (`stcnn.host_memory`): 224-244 → 292-319 clips/s without it. A
  space-to-depth formulation of conv1 (3 → 24 channels, 11×11 stride 3, as matmuls) won against
  YNNPACK too and was dropped: against XLA's multi-threaded convolution the training steps ran
  faster without it (single-frame 905-1,074 → 1,119-1,149 clips/s, late fusion 413-444 →
  546-613: its backward's 36 MB of row copies also pushed late fusion's temporaries to 64.2 MB).
  """
  return "im2col" if stride == 1 and size < kernel else "reference"


def conv2d(x, w, stride: int, impl: str | None = None):
  """2-D SAME conv (N, H, W, C) × (f, f, C, d), with the formulation `impl`; by default the one
  measured fastest on CPU (`conv_impl_for`) where the program runs on a CPU and XLA's convolution
  elsewhere. The choice is made when the program is lowered for its platform, so a program
  exported for several (`stcnn.export --platforms=cpu,cuda`) carries each platform's own."""
  if impl:
    return CONV_IMPLS[impl](x, w, stride)
  impl = conv_impl_for(stride, max(x.shape[1:3]), w.shape[0])
  if impl == "reference":
    return conv_reference(x, w, stride)
  return jax.lax.platform_dependent(x, w, cpu=functools.partial(CONV_IMPLS[impl], stride=stride),
                                    default=functools.partial(conv_reference, stride=stride))


# ------------------------------------------------------------------------------------------ time
def fold_time(x):
  """(B, T, H, W, C) → (B·T, H, W, C)."""
  return x.reshape((-1,) + x.shape[2:])


def unfold_time(x, t: int):
  """(B·T, H, W, C) → (B, T, H, W, C)."""
  return x.reshape((-1, t) + x.shape[1:])


def stack_time_reference(x, kt: int, st: int):
  """(B, T, H, W, C) → (B, T', H, W, kt·C): the kt frames output time i sees (frames i·st …
  i·st + kt - 1), stacked on channels frame-major; T' = (T - kt) // st + 1."""
  t_out = (x.shape[1] - kt) // st + 1
  x = jnp.stack([x[:, i * st:i * st + kt] for i in range(t_out)], axis=1)
  return jnp.moveaxis(x, 2, -2).reshape(x.shape[:2] + x.shape[3:5] + (-1,))


def stack_time(x, kt: int, st: int):
  """`stack_time_reference` with one gather-free transpose when windows do not overlap."""
  b, t, h, w, c = x.shape
  t_out = (t - kt) // st + 1
  if kt == 1:
    return x[:, 0:st * (t_out - 1) + 1:st]
  if st >= kt or t_out == 1:  # disjoint windows: a reshape and one transpose
    if st > kt:
      x = jnp.stack([x[:, i * st:i * st + kt] for i in range(t_out)], axis=1)
    else:
      x = x[:, :t_out * kt].reshape(b, t_out, kt, h, w, c)
    return x.transpose(0, 1, 3, 4, 2, 5).reshape(b, t_out, h, w, kt * c)
  return stack_time_reference(x, kt, st)


class _Conv(nn.Module):
  """The parameters of `nn.Conv(features, (f, f))` (same names, shapes and initialisers; float32),
  applied with `conv2d` in `dtype` (bfloat16 for mixed precision)."""
  features: int
  kernel: int
  stride: int
  impl: str | None = None
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    w = self.param("kernel", nn.initializers.lecun_normal(),
                   (self.kernel, self.kernel, x.shape[-1], self.features), jnp.float32)
    b = self.param("bias", nn.initializers.zeros_init(), (self.features,), jnp.float32)
    x, w, b = (v.astype(self.dtype) for v in (x, w, b))
    return conv2d(x, w, self.stride, self.impl) + b


class TemporalConv(nn.Module):
  """Conv, spatial kernel f×f stride s (SAME), temporal extent kt stride st (VALID in time).

  Input/output (B, T, H, W, C); T_out = (T - kt) // st + 1. kt = 1 is a plain per-frame 2-D conv.
  Parameters `conv/kernel` (f, f, kt·C, d) (channel index = frame·C + c) and `conv/bias` (d,).
  `impl` picks the 2-D conv formulation (None: `conv2d`'s choice, per platform).
  """
  features: int
  kernel: int
  stride: int = 1
  kt: int = 1
  st: int = 1
  impl: str | None = None
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    t = x.shape[1]
    if t < self.kt:
      raise ValueError(f"{self.name}: temporal extent {self.kt} needs >= {self.kt} frames, got {t}")
    t_out = (t - self.kt) // self.st + 1
    if self.kt > 1 or self.st > 1:
      x = stack_time(x, self.kt, self.st)
    y = _Conv(self.features, self.kernel, self.stride, self.impl, self.dtype,
              name="conv")(fold_time(x))
    return unfold_time(y, t_out)


class Tower(nn.Module):
  """The paper's conv tower, conv1 … conv5 (+ last pool), on a clip (B, T, H, W, 3).

  `temporal` gives (extent, stride) in time per conv layer (missing layers: (1, 1), purely spatial).
  Returns (B, T', h, w, 256·width): 170 → 57 → 28 → 14 → 7 spatially (SAME padding, floor pooling).
  Multiresolution streams drop the last pool (`last_pool=False`): 89 → 30 → 15 → 7.
  """
  width: float = 1.0
  temporal: Sequence[tuple[int, int]] = ()
  last_pool: bool = True
  lrn_k: float = 2.0
  lrn_n: int = 5
  lrn_alpha: float = 1e-4
  lrn_beta: float = 0.5
  dtype: Any = jnp.float32  # compute dtype; parameters stay float32
  conv_impl: str | None = None  # every conv's formulation (CONV_IMPLS); None: `conv2d`'s choice

  @nn.compact
  def __call__(self, x):
    for i, (d, f, s, norm_pool) in enumerate(CONVS):
      kt, st = self.temporal[i] if i < len(self.temporal) else (1, 1)
      x = TemporalConv(scaled(d, self.width), f, s, kt, st, self.conv_impl, self.dtype,
                       name=f"conv{i + 1}")(x)
      x = nn.relu(x)
      if norm_pool:  # LRN's sum of squares in float32 whatever the compute dtype
        x = lrn(x.astype(jnp.float32), self.lrn_k, self.lrn_n, self.lrn_alpha, self.lrn_beta)
        x = max_pool(x.astype(self.dtype))
        self.sow("intermediates", f"pool{i + 1}", x)  # for summaries; free when not collected
    if self.last_pool:
      x = max_pool(x)
      self.sow("intermediates", "pool5", x)
    return x
