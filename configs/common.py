"""Shared defaults for every config (big_vision style: each configs/X.py has get_config(arg)).

`arg` is the text after `:` in `--config=configs/X.py:arg`, a comma-separated list of flags and
key=value pairs, e.g. `configs/slow_fusion.py:cpu` or `configs/multires.py:cpu,fusion=slow`.
Recognised everywhere:
  cpu      shrink input (64×64 synthetic frames) and width (0.25) so a run on 2 cores takes minutes
  tiny     smaller still (32×32 frames, width 1/16): for tests
  fusion=  single|early|late|slow      streams=  full|multires|fovea|context
Any other key can be overridden with `--config.key=value` on the command line.
"""
import ml_collections

# Paper [§2]: stored 200×200 frames; full-frame nets crop 170, multires nets 178.
PAPER_FRAME, FULL_CROP, MULTIRES_CROP = 200, 170, 178
VARIANTS = {  # frame size, full crop, multires crop (even), width, data preset, batch
    "paper": (PAPER_FRAME, FULL_CROP, MULTIRES_CROP, 1.0, "paper", 32),
    "cpu": (64, 54, 56, 0.25, "cpu", 32),
    "tiny": (32, 28, 28, 0.0625, "tiny", 8),
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
  frame, full_crop, multires_crop, width, preset, batch = VARIANTS[variant]

  c = ml_collections.ConfigDict()
  c.seed = 0
  c.variant = variant
  c.num_classes = 487 if variant == "paper" else {"cpu": 24, "tiny": 8}[variant]

  c.model = ml_collections.ConfigDict()
  c.model.fusion = a.fusion
  c.model.streams = a.streams
  c.model.width = width
  c.model.dropout = 0.5  # [choice] the paper does not report dropout for Sports-1M
  c.model.head = "flat"  # flat (paper) | tree (hierarchical, PAPER.md §5)
  c.model.hierarchy = ""  # hierarchy.json path; '' = the data set's own (synthetic ships one)
  c.model.input_size = full_crop if a.streams == "full" else multires_crop
  c.model.early_frames = 10
  c.model.late_gap = 15

  c.data = ml_collections.ConfigDict()
  c.data.name = "synthetic"  # synthetic | prepared (a `stcnn.data.prepare` output at data.path)
  c.data.preset = preset  # synthetic preset: tiny | cpu | paper | transfer
  c.data.synthetic_seed = 0  # the synthetic data set's generator seed
  c.data.path = ""  # prepared data set; '' = the synthetic one, generated and cached on first use
  c.data.cache_dir = "~/.cache/stcnn"
  c.data.frame_size = frame  # stored frame size (paper: 200)
  c.data.mean = 117.0  # [paper] subtracted from raw pixel values
  c.data.train_split = "train"
  c.data.eval_split = "val"
  c.data.test_split = "test"
  c.data.worker_count = 0 if variant == "tiny" else 2
  c.data.clips_per_video = 20  # [paper] eval: 20 clips a video (UCF-101: 50)
  c.data.views = 4  # [paper] each clip seen 4 times (crops × flips)
  c.data.max_eval_videos = 0  # 0 = all
  c.data.ucf_split = 1  # UCF-101-layout data sets (the synthetic `transfer` preset): split 1..3

  c.batch_size = batch  # global; [paper] 32 per replica
  c.eval_batch_size = 4 * batch
  c.optimizer = ml_collections.ConfigDict()
  c.optimizer.lr = 1e-3  # [paper]
  c.optimizer.momentum = 0.9  # [paper]
  c.optimizer.weight_decay = 5e-4  # [paper]
  c.optimizer.plateau_factor = 0.1  # lr ×0.1 when validation error plateaus [paper: by hand]
  c.optimizer.plateau_patience = 3  # evals without improvement before lowering
  c.optimizer.grad_clip = 0.0  # 0 = off (paper: none)

  c.total_steps = {"paper": 5_000_000, "cpu": 1500, "tiny": 20}[variant]
  c.log_every = {"paper": 100, "cpu": 25, "tiny": 5}[variant]
  c.eval_every = {"paper": 20_000, "cpu": 500, "tiny": 10}[variant]
  c.checkpoint_every = {"paper": 5000, "cpu": 250, "tiny": 10}[variant]
  c.keep_checkpoints = 3
  c.init_from = ""  # transfer learning: a workdir or checkpoint dir
  c.finetune = "all"  # top | top3 | all   (what init_from trains; Table 3)
  return c
