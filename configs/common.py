"""Shared defaults for every config (big_vision style: each configs/X.py has get_config(arg)).

`arg` is the text after `:` in `--config=configs/X.py:arg`, a comma-separated list of flags and
key=value pairs, e.g. `configs/slow_fusion.py:cpu` or `configs/multires.py:cpu,fusion=slow`.
Recognised everywhere:
  cpu      shrink input (64×64 synthetic frames) and width (0.25) so a run on 2 cores takes minutes
  tiny     smaller still (32×32 frames, width 1/16): for tests
  fusion=  single|early|late|slow      streams=  full|multires|fovea|context
Any other key can be overridden with `--config.key=value` on the command line.
"""
import dataclasses

import ml_collections

from stcnn.data import sports1m, synthetic, transforms
from stcnn.models import fusion as fusion_lib


@dataclasses.dataclass(frozen=True)
class Variant:
  """A size of the whole setup: stored frames, network width, synthetic preset, batch, schedule."""
  frame_size: int  # stored frames (paper: 200); crops follow transforms.crop_size_for
  width: float  # channel multiplier of every layer
  preset: str  # synthetic data set preset
  batch_size: int  # global; [paper] 32 per replica
  total_steps: int
  log_every: int
  eval_every: int
  checkpoint_every: int

  def crop_size(self, streams: str) -> int:
    return transforms.crop_size_for(self.frame_size, multires=streams != "full")


VARIANTS = {
    "paper": Variant(transforms.PAPER_FRAME_SIZE, 1.0, "paper", 32, 5_000_000, 100, 20_000, 5000),
    "cpu": Variant(64, 0.25, "cpu", 32, 1500, 25, 500, 250),
    "tiny": Variant(32, 0.0625, "tiny", 8, 20, 5, 10, 10),
}


def parse_arg(arg: str, **defaults) -> ml_collections.ConfigDict:
  """'cpu,fusion=slow' → ConfigDict(cpu=True, fusion='slow', ...defaults). Types follow defaults."""
  out = dict(defaults)
  for item in filter(None, (a.strip() for a in (arg or "").split(","))):
    key, eq, value = item.partition("=")
    if key not in out:
      raise ValueError(f"config arg {key!r} unknown; expected one of {sorted(out)}")
    if not eq:
      out[key] = True
    elif isinstance(defaults[key], bool):
      out[key] = value.lower() in ("1", "true", "yes")
    else:
      out[key] = type(defaults[key])(value)
  return ml_collections.ConfigDict(out)


def get_config(arg: str = "", fusion: str = "single", streams: str = "full"):
  """The full config; the per-model files call this with their fusion/streams."""
  a = parse_arg(arg, cpu=False, tiny=False, fusion=fusion, streams=streams)
  variant = "tiny" if a.tiny else "cpu" if a.cpu else "paper"
  v = VARIANTS[variant]

  c = ml_collections.ConfigDict()
  c.seed = 0
  c.variant = variant
  # The paper's network is Sports-1M's (487 classes; on the synthetic `paper` preset pass its
  # --config.num_classes=96); the small variants fit their synthetic preset.
  c.num_classes = (len(sports1m.LABELS) if variant == "paper" else
                   synthetic.get_preset(v.preset).num_leaves)

  c.model = ml_collections.ConfigDict()
  c.model.fusion = a.fusion
  c.model.streams = a.streams
  c.model.width = v.width
  c.model.dropout = 0.5  # [choice] the paper does not report dropout for Sports-1M
  c.model.head = "flat"  # flat (paper) | tree (hierarchical, docs/paper.md §5)
  c.model.hierarchy = ""  # hierarchy.json path; '' = the data set's own (synthetic ships one)
  c.model.dtype = "float32"  # bfloat16: mixed precision on accelerators (params stay float32)
  c.model.input_size = v.crop_size(a.streams)
  c.model.early_frames = fusion_lib.EARLY_FRAMES
  c.model.late_gap = fusion_lib.LATE_GAP

  c.data = ml_collections.ConfigDict()
  c.data.name = "synthetic"  # synthetic | prepared (a `stcnn.data.prepare` output at data.path)
  c.data.preset = v.preset  # synthetic preset: tiny | cpu | paper | transfer
  c.data.synthetic_seed = 0  # the synthetic data set's generator seed
  c.data.path = ""  # prepared data set; '' = the synthetic one, generated and cached on first use
  c.data.cache_dir = "~/.cache/stcnn"
  c.data.frame_size = v.frame_size  # stored frame size (paper: 200)
  c.data.mean = transforms.MEAN  # [paper] subtracted from raw pixel values
  c.data.train_split = "train"
  c.data.eval_split = "val"
  c.data.test_split = "test"
  c.data.cache_frames = variant != "paper"  # decode small frames once (stcnn.data.frame_cache)
  # Grain worker processes for JPEG decoding; cached frames are read in-process, faster on 2 cores
  # than workers (`stcnn.bench train`: README, Speed).
  c.data.worker_count = 0 if c.data.cache_frames else 2
  # Threads per process each computing a training batch; 0: the trainer's own thread computes the
  # next batch while the step it dispatched runs (cached frames: ~0.6 ms a batch, no thread
  # hand-offs; `stcnn.data.pipeline.train_dataset`).
  c.data.read_threads = 0 if c.data.cache_frames else 2
  c.data.clips_per_video = 20  # [paper] eval: 20 clips a video (UCF-101: 50)
  c.data.views = 4  # [paper] each clip seen 4 times (crops × flips)
  c.data.max_eval_videos = 0  # 0 = all
  c.data.ucf_split = 1  # UCF-101-layout data sets (the synthetic `transfer` preset): split 1..3

  c.batch_size = v.batch_size  # global; [paper] 32 per replica
  c.eval_batch_size = 4 * v.batch_size
  c.optimizer = ml_collections.ConfigDict()
  c.optimizer.lr = 1e-3  # [paper]
  c.optimizer.momentum = 0.9  # [paper]
  c.optimizer.weight_decay = 5e-4  # [paper]
  c.optimizer.plateau_factor = 0.1  # lr ×0.1 when validation error plateaus [paper: by hand]
  c.optimizer.plateau_patience = 3  # evals without improvement before lowering
  c.optimizer.grad_clip = 0.0  # 0 = off (paper: none)
  c.optimizer.schedule = "constant"  # constant [paper] | cosine (to 0 at total_steps)
  c.optimizer.warmup_steps = 0  # linear warm-up from 0 (paper: none)

  c.total_steps = v.total_steps
  c.log_every = v.log_every
  c.eval_every = v.eval_every
  c.checkpoint_every = v.checkpoint_every
  c.keep_checkpoints = 3
  c.init_from = ""  # transfer learning: a workdir or checkpoint dir
  c.finetune = "all"  # top | top3 | all   (what init_from trains; Table 3)
  return c
