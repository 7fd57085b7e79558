"""The paper's networks in PyTorch, layer for layer as stcnn.models builds them (for speed checks).

Tower [paper §1]: C(96,11,3)-N-P-C(256,5,1)-N-P-C(384,3,1)-C(384,3,1)-C(256,3,1)-P, then
FC(4096)-ReLU-dropout-FC(4096)-ReLU-dropout-classifier; ReLU after every conv; 'SAME' padding as
XLA pads it (stride 3 too); N = LRN(k=2, n=5, α=1e-4 not divided by n, β=0.5); P = 2×2 max pool;
every channel count × width, at least 1.

Time: a conv spanning kt frames with temporal stride st is a 2-D conv over the kt frames stacked
into channels, output times folded into the batch (as stcnn.models.layers.TemporalConv):
single (1 frame), early (conv1 over 10 frames), late (one shared tower on 2 frames, concatenated at
FC1), slow (conv1..3 extents 4/2/2, stride 2). Multires: a fovea (centre half crop) and a context
(2×2 average pool) tower, weights not shared, without the last pool, concatenated at FC1.

Input: (B, T, 3, H, W) float (torch's layout), T = the frames the network reads (late: 2).
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

CONVS = ((96, 11, 3, True), (256, 5, 1, True), (384, 3, 1, False), (384, 3, 1, False),
         (256, 3, 1, False))  # (filters, kernel, stride, LRN + pool after it)
FC_WIDTH = 4096
TEMPORAL = {"single": (), "late": (), "early": ((10, 1),), "slow": ((4, 2), (2, 2), (2, 2))}
FRAMES = {"single": 1, "early": 10, "late": 2, "slow": 10}  # input frames (late: 0, 15 gathered)


def scaled(n: int, width: float) -> int:
  return max(1, int(round(n * width)))


def same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
  """XLA's 'SAME' padding (before, after) of one spatial axis."""
  total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
  return total // 2, total - total // 2


class TemporalConv(nn.Module):
  """(B, T, C, H, W) → (B, T', d, H', W'): f×f, stride s, SAME in space; kt, st, valid in time."""

  def __init__(self, cin: int, cout: int, kernel: int, stride: int, kt: int = 1, st: int = 1):
    super().__init__()
    self.kt, self.st, self.kernel, self.stride = kt, st, kernel, stride
    # Stride 1, odd kernel: SAME is symmetric, so the conv pads itself (no copy).
    self.conv = nn.Conv2d(kt * cin, cout, kernel, stride,
                          padding=kernel // 2 if stride == 1 else 0)

  def forward(self, x):
    b, t = x.shape[:2]
    t_out = (t - self.kt) // self.st + 1
    if self.kt > 1:  # the kt frames each output time sees, stacked into channels
      x = torch.stack([x[:, i * self.st:i * self.st + self.kt].flatten(1, 2)
                       for i in range(t_out)], 1)
    elif self.st > 1:
      x = x[:, ::self.st]
    x = x.flatten(0, 1)
    if self.stride > 1:
      (top, bottom), (left, right) = (same_pads(n, self.kernel, self.stride) for n in x.shape[2:])
      x = F.pad(x, (left, right, top, bottom))
    return self.conv(x).unflatten(0, (b, t_out))


def per_frame(fn, x):
  """fn on (B·T, C, H, W), back to (B, T, ...)."""
  return fn(x.flatten(0, 1)).unflatten(0, x.shape[:2])


class Tower(nn.Module):
  def __init__(self, width: float, temporal, last_pool: bool):
    super().__init__()
    convs, cin = [], 3
    for i, (d, kernel, stride, _) in enumerate(CONVS):
      kt, st = temporal[i] if i < len(temporal) else (1, 1)
      convs.append(TemporalConv(cin, scaled(d, width), kernel, stride, kt, st))
      cin = scaled(d, width)
    self.convs = nn.ModuleList(convs)
    self.lrn = nn.LocalResponseNorm(5, alpha=5 * 1e-4, beta=0.5, k=2.0)  # torch divides α by n
    self.last_pool = last_pool

  def forward(self, x):
    for conv, (_, _, _, norm_pool) in zip(self.convs, CONVS):
      x = F.relu(conv(x))
      if norm_pool:
        x = per_frame(lambda y: F.max_pool2d(self.lrn(y), 2), x)
    return per_frame(lambda y: F.max_pool2d(y, 2), x) if self.last_pool else x


def fovea(x):
  s = x.shape[-1]
  f, top = s // 2, (s - s // 2) // 2
  return x[..., top:top + f, top:top + f]


def context(x):
  f = x.shape[-1] // 2
  return per_frame(lambda y: F.avg_pool2d(y[..., :2 * f, :2 * f], 2), x)


STREAM_INPUTS = {"tower": lambda x: x, "fovea": fovea, "context": context}


class VideoNet(nn.Module):
  """(B, T, 3, S, S) → scores (B, num_classes); streams 'full' or 'multires'."""

  def __init__(self, num_classes: int, fusion: str = "single", streams: str = "full",
               width: float = 1.0, size: int = 170, dropout: float = 0.5):
    super().__init__()
    if streams not in ("full", "multires"):
      raise ValueError(f"streams: 'full' or 'multires', got {streams!r}")
    self.frames = FRAMES[fusion]
    names = ("tower",) if streams == "full" else ("fovea", "context")
    self.towers = nn.ModuleDict({n: Tower(width, TEMPORAL[fusion], streams == "full")
                                 for n in names})
    with torch.no_grad():  # each tower's output (T', C, h, w), FC1's input
      zeros = torch.zeros(1, self.frames, 3, size, size)
      self.tower_shapes = [tuple(tower(STREAM_INPUTS[n](zeros)).shape[1:])
                           for n, tower in self.towers.items()]
    features = sum(math.prod(shape) for shape in self.tower_shapes)
    fc = scaled(FC_WIDTH, width)
    self.classifier = nn.Sequential(
        nn.Linear(features, fc), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(fc, fc), nn.ReLU(), nn.Dropout(dropout), nn.Linear(fc, num_classes))

  def forward(self, video):
    feats = [tower(STREAM_INPUTS[n](video)).flatten(1) for n, tower in self.towers.items()]
    return self.classifier(torch.cat(feats, 1))


def make_train_step(net: nn.Module, lr: float = 1e-3, momentum: float = 0.9,
                    weight_decay: float = 5e-4):
  """step(video, labels) → loss: SGD with momentum, weight decay added to the gradient (as
  stcnn.train's optax.add_decayed_weights + sgd), softmax cross-entropy, dropout on."""
  opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
  net.train()

  def step(video, labels):
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(net(video), labels)
    loss.backward()
    opt.step()
    return loss.item()  # (waits for the step)
  return step


def num_params(net: nn.Module) -> int:
  return sum(p.numel() for p in net.parameters())


def load_stcnn_params(net: VideoNet, params) -> None:
  """Copies a stcnn VideoNet's params (flat head) into `net`: both then compute the same function
  (up to float rounding; tests/test_bench.py checks it), so the two are the same network."""
  arr = lambda x: torch.from_numpy(np.array(x, np.float32))  # noqa: E731
  state = {}
  for name in net.towers:
    for i in range(len(CONVS)):
      conv = params[name][f"conv{i + 1}"]["conv"]  # kernel (f, f, kt·C, d), frames-major channels
      key = f"towers.{name}.convs.{i}.conv"
      state[f"{key}.weight"] = arr(np.transpose(conv["kernel"], (3, 2, 0, 1)))
      state[f"{key}.bias"] = arr(conv["bias"])
  rows, offset = [], 0  # FC1: stcnn flattens each tower's (T', h, w, C), torch (T', C, h, w)
  for t, c, h, w in net.tower_shapes:
    rows.append(offset + np.arange(t * h * w * c).reshape(t, h, w, c).transpose(0, 3, 1, 2).ravel())
    offset += t * h * w * c
  dense = [(np.asarray(params["fc1"]["kernel"])[np.concatenate(rows)], params["fc1"]["bias"]),
           (params["fc2"]["kernel"], params["fc2"]["bias"]),
           (params["head"]["classifier"]["kernel"], params["head"]["classifier"]["bias"])]
  for i, (kernel, bias) in zip((0, 3, 6), dense):
    state[f"classifier.{i}.weight"], state[f"classifier.{i}.bias"] = arr(kernel).T, arr(bias)
  net.load_state_dict(state)
