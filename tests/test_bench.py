"""stcnn.bench: what it reports and how (never how fast: performance is not asserted)."""
import json
import math
import mmap
import os
import subprocess
import sys

from absl import flags
import numpy as np
import pytest

from stcnn import bench

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL_KEYS = ("model", "size", "width", "batch", "clips_per_s", "gflop_per_clip", "gflops_achieved",
              "peak_fraction", "eval_views_per_s", "peak_gflops", "sys_ms_per_step",
              "page_faults_per_step")


def test_importing_defines_no_flags():
  assert "models" not in flags.FLAGS and "sizes" not in flags.FLAGS


def test_model_configs_are_the_projects():
  for name, (fusion, streams) in {"single": ("single", "full"), "late": ("late", "full"),
                                  "multires_slow": ("slow", "multires")}.items():
    cpu, paper = bench.model_config(name, "cpu"), bench.model_config(name, "paper")
    assert (cpu.model.fusion, cpu.model.streams) == (fusion, streams)
    assert (cpu.model.width, paper.model.width) == (0.25, 1.0)
    assert (cpu.model.input_size, paper.model.input_size) == (
        (54, 170) if streams == "full" else (56, 178))
  c = bench.model_config("slow", "paper", size=64, width=0.5, batch=4)
  assert (c.model.input_size, c.model.width, c.batch_size) == (64, 0.5, 4)
  with pytest.raises(ValueError, match="unknown"):
    bench.model_config("slower", "cpu")


def test_single_frame_paper_forward_cost():
  params, gflop = bench.params_and_gflop(bench.model_config("single", "paper"))
  assert params == 73_908_071
  assert gflop == pytest.approx(2.54, rel=0.01)  # the known forward cost of the paper's network


def test_median_rate_reports_what_the_calls_cost_the_kernel():
  size = 32 * 2**20

  def touch_fresh_memory():  # maps 32 MB and touches each 4 KB page once: 8,192 page faults
    region = mmap.mmap(-1, size)
    pages = np.frombuffer(region, np.uint8)
    pages[::4096] = 1
    del pages
    region.close()

  usage = {}
  assert bench.median_rate(touch_fresh_memory, steps=3, warmup=1, usage=usage) > 0
  assert 8_192 <= usage["page_faults"] < 8_192 + 2_000
  assert usage["sys_ms"] > 0
  usage = {}
  bench.median_rate(lambda: None, steps=3, warmup=1, usage=usage)
  assert usage["page_faults"] < 100


def test_model_subcommand_json():
  out = subprocess.run(
      [sys.executable, "-m", "stcnn.bench", "model", "--sizes=tiny", "--models=single",
       "--size=32", "--width=0.0625", "--batch=4", "--steps=2", "--warmup=1", "--eval_batch=8",
       "--eval_steps=1", "--peak_n=256", "--json"],
      cwd=ROOT, env={**os.environ, "JAX_PLATFORMS": "cpu"}, capture_output=True, text=True,
      timeout=300, check=True).stdout
  rows = [json.loads(line) for line in out.splitlines()]
  assert len(rows) == 1
  row = rows[0]
  assert set(MODEL_KEYS) <= set(row)
  assert (row["model"], row["size"], row["width"], row["batch"]) == ("single", 32, 0.0625, 4)
  for key in MODEL_KEYS[1:]:
    assert isinstance(row[key], (int, float)) and math.isfinite(row[key]), key
    # A tiny step may cost the kernel nothing measurable (getrusage counts in clock ticks).
    kernel_cost = key in ("sys_ms_per_step", "page_faults_per_step")
    assert row[key] >= 0 if kernel_cost else row[key] > 0, key
  assert row["peak_fraction"] == pytest.approx(row["gflops_achieved"] / row["peak_gflops"])


def test_train_subcommand_json_reads_what_the_trainer_reads(cache_dir):
  """`bench train` on the tiny set: the trainer's own input (the frame cache, as the config says)
  and rounds of end-to-end steps each beside the step alone."""
  out = subprocess.run(
      [sys.executable, "-m", "stcnn.bench", "train", "--config=configs/single_frame.py:tiny",
       f"--config.data.cache_dir={cache_dir}", "--steps=2", "--warmup=1", "--rounds=2", "--json"],
      cwd=ROOT, env={**os.environ, "JAX_PLATFORMS": "cpu"}, capture_output=True, text=True,
      timeout=300, check=True)
  (row,) = [json.loads(line) for line in out.stdout.splitlines()]
  assert (row["model"], row["steps"], row["rounds"], row["workers"]) == ("single", 2, 2, 0)
  for key in ("e2e_clips_per_s", "step_clips_per_s", "ratio", "input_wait_fraction"):
    assert math.isfinite(row[key]) and row[key] > 0, key
  assert row["ratio_min"] <= row["ratio"] <= row["ratio_max"]
  assert "frame cache: " in out.stderr  # decoded frames, as train.py reads them


def test_torch_nets_compute_the_same_functions():
  torch = pytest.importorskip("torch")
  import jax  # pylint: disable=g-import-not-at-top

  from benchmarks import torch_nets  # pylint: disable=g-import-not-at-top
  from stcnn import models  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  for name in ("late", "multires_slow"):  # every layer kind, temporal conv and stream path
    config = bench.model_config(name, "tiny", size=44, width=0.125)  # 44: SAME pads 4 | 5
    m, model = config.model, models.build(config)
    video = rng.normal(0, 50, (2, len(models.frame_offsets(config)), 44, 44, 3)).astype("float32")
    shapes = jax.eval_shape(model.init, jax.random.key(0), video)["params"]  # (init is slow)
    params = jax.tree.map(lambda s: rng.normal(0, 1 / np.sqrt(np.prod(s.shape[:-1]) or 10),
                                               s.shape).astype("float32"), shapes)
    net = torch_nets.VideoNet(config.num_classes, m.fusion, m.streams, m.width, 44).eval()
    assert torch_nets.num_params(net) == sum(x.size for x in jax.tree.leaves(params)), name
    torch_nets.load_stcnn_params(net, params)
    with torch.no_grad():
      got = net(torch.from_numpy(video).permute(0, 1, 4, 2, 3)).numpy()
    want = jax.jit(model.apply)({"params": params}, video)  # (jitted: op by op is slower)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg=name)
