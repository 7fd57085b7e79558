"""Plain helpers shared by the test modules (and the scripts under tests/scripts/).

Configs: `ROOT`, `load_config`, `tiny_config`; arrays: `normal`, `init`; checkpoints:
`params_hash`; the in-memory pipeline source of small position-coded JPEG frames: `make_record`,
`make_index`, `decode`. Frame t of every record has R = 8·y, G = 8·x, B = 6·t, so a decoded
(mean-added) clip tells its crop offset, flip and frame indices. Small video files for the
readers and `prepare`: `ramp`, `write_videos`.
"""
import hashlib
import importlib.util
import os
import pathlib
import subprocess
import sys
import time

import jax
import numpy as np

from stcnn import checkpoint_reader
from stcnn.data import video_index, video_io

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ------------------------------------------------------------------------------------------ arrays
# XLA:CPU takes 0.4-2 s to compile `jax.random.normal` for each new shape, and an eager
# `module.init` compiles one per parameter plus every op: inputs come from NumPy, inits are jitted.
def normal(shape, seed=0, scale=1.0):
  """A float32 array of N(0, scale²) samples from NumPy's generator `seed`."""
  return jax.numpy.asarray(np.random.default_rng(seed).standard_normal(shape, np.float32) * scale)


def init(module, *args, seed=0, **kwargs):
  """`module.init(jax.random.key(seed), *args, **kwargs)`, as one compiled program."""
  return jax.jit(lambda *a: module.init(jax.random.key(seed), *a, **kwargs))(*args)


# ----------------------------------------------------------------------------------------- configs
def load_config(path, arg=""):
  """`get_config(arg)` of the config file at `path`."""
  spec = importlib.util.spec_from_file_location("cfg", path)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod.get_config(arg)


def tiny_config(cache_dir, **overrides):
  """configs/single_frame.py:tiny on the synthetic data in `cache_dir`; overrides by dotted key."""
  cfg = load_config(os.path.join(ROOT, "configs", "single_frame.py"), "tiny")
  cfg.data.cache_dir = str(cache_dir)
  cfg.data.clips_per_video = 2
  cfg.data.views = 2
  cfg.eval_batch_size = 16
  for k, v in overrides.items():
    node = cfg
    *path, last = k.split(".")
    for p in path:
      node = node[p]
    node[last] = v
  return cfg


# ------------------------------------------------------------------------------------- video files
def ramp(frames, width, height, start=10, step=12):
  """Frame i is a flat grey of start + step * i, so a stored frame tells which one it was."""
  values = start + step * np.arange(frames)
  return np.broadcast_to(values[:, None, None, None], (frames, height, width, 3)).astype(np.uint8)


def write_videos(root, videos):
  """Writes {relative path: (width, height, fps, frames) | "corrupt" | "empty" | "dangling"} under
  `root`: a `ramp` video, 3000 random bytes, an empty file, or a link to nothing."""
  for rel, what in videos.items():
    path = pathlib.Path(root) / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if what == "corrupt":
      path.write_bytes(np.random.RandomState(0).bytes(3000))
    elif what == "empty":
      path.write_bytes(b"")
    elif what == "dangling":
      os.symlink(path.name + ".gone", path)
    else:
      w, h, fps, n = what
      video_io.write_video(path, ramp(n, w, h), fps=fps)


# ------------------------------------------------------------------------------------- checkpoints
def params_hash(workdir, which="latest"):
  """(sha256 of the params' bytes, step) of a workdir's checkpoint."""
  params, step = checkpoint_reader.load_params(str(workdir), which)
  h = hashlib.sha256()
  for leaf in jax.tree.leaves(params):
    h.update(np.ascontiguousarray(leaf).tobytes())
  return h.hexdigest(), step


# ------------------------------------------------------------------------ pipeline source records
SIZE, CROP = 32, 27


def _frame(t):
  y, x = np.mgrid[0:SIZE, 0:SIZE]
  return np.stack([8 * y, 8 * x, np.full_like(y, 6 * t)], -1).astype(np.uint8)


JPEGS = [video_io.encode_jpeg(_frame(t), quality=95) for t in range(40)]


def make_record(vid, labels, num_frames, segment=0, num_segments=1, first=0):
  """A segment of frames first, first + 1, ... (so a decoded clip tells its segment)."""
  return {"video_id": vid.encode(), "labels": np.asarray(labels, np.int64),
          "frames": JPEGS[first:first + num_frames], "segment": segment,
          "num_segments": num_segments, "fps": np.float32(25)}


def make_index(source, fps=False):
  """The data set index (`Prepared.index`) of an in-memory source."""
  return [{"video_id": video_index.video_id_of(r), "labels": [int(x) for x in r["labels"]],
           "segment": int(r["segment"]), "num_segments": int(r["num_segments"]),
           "num_frames": len(r["frames"]), **({"fps": float(r["fps"])} if fps else {})}
          for r in source]


def decode(frame):
  """(top, left, flip, t) of one mean-subtracted frame of a `make_record` source."""
  f = frame.astype(np.float64) + 117
  c = f.shape[0]
  top = int(round(np.mean(f[..., 0].mean(1) / 8 - np.arange(c))))
  cols = f[..., 1].mean(0)
  flip = bool(cols[0] > cols[-1])
  left = int(round(np.mean(np.sort(cols) / 8 - np.arange(c))))
  return top, left, flip, int(round(f[..., 2].mean() / 6))


class Counting(list):
  """A list source that counts record reads."""
  reads = 0

  def __getitem__(self, i):
    self.reads += 1
    return super().__getitem__(i)


CLIPS, VIEWS = 3, 2  # the workdir's evaluation protocol (config.data.clips_per_video, views)


def trained_workdir(tmp_path_factory):
  """A tiny late-fusion workdir (frames 0 and 15 of a 16-frame clip) trained 10 steps, made once
  a session in the session's base temp dir (tests/test_predict.py and tests/test_export.py)."""
  base = tmp_path_factory.getbasetemp()
  workdir, cache = base / "predict_workdir", base / "predict_cache"
  if not (workdir / "checkpoints" / "10").is_dir():
    cmd = [sys.executable, "-m", "stcnn.main", "--config=configs/single_frame.py:tiny,fusion=late",
           f"--workdir={workdir}", f"--config.data.cache_dir={cache}",
           f"--config.data.clips_per_video={CLIPS}", f"--config.data.views={VIEWS}",
           "--config.eval_batch_size=16", "--config.total_steps=10", "--config.eval_every=10",
           "--config.checkpoint_every=10", "--config.log_every=5"]
    r = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "JAX_PLATFORMS": "cpu"},
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
  return workdir


def wait_past_checkpoint(proc, workdir, step: int, timeout: float = 300) -> None:
  """Waits until the run `proc` has committed checkpoint `step` in `workdir` (then a few steps
  more), so a signal sent next finds a run mid-training."""
  marker = pathlib.Path(workdir) / "checkpoints" / str(step) / "_CHECKPOINT_METADATA"
  deadline = time.time() + timeout
  while not marker.exists() and proc.poll() is None:
    assert time.time() < deadline, f"no checkpoint {step} after {timeout} s"
    time.sleep(0.005)
  time.sleep(0.2)  # a few steps past the periodic checkpoint
