"""`python -m stcnn.summary`: the layer table and the paper's FLOP budget (docs/paper.md §3)."""
import os
import subprocess
import sys

import pytest

from stcnn import summary
from tests.helpers import ROOT, load_config


@pytest.mark.parametrize("name,gflops,params", [
    ("single_frame", 2.5, 73_908_071), ("multires", 1.5, None), ("slow_fusion", 9.2, None)])
def test_flops_match_the_paper_budget(name, gflops, params):
  cfg = load_config(os.path.join(ROOT, "configs", f"{name}.py"))
  rows, total_params, total_flops = summary.summarize(cfg)
  assert abs(total_flops / 1e9 - gflops) < 0.06, total_flops
  assert total_params == sum(r[2] for r in rows)  # every parameter sits in a listed layer
  if params:
    assert total_params == params
  # conv1 of the single-frame net by hand: 57·57·96 outputs × 11·11·3 MACs × 2.
  if name == "single_frame":
    assert rows[0][:2] == ("tower/conv1", (1, 57, 57, 96))
    assert rows[0][3] == 2 * 57 * 57 * 96 * 11 * 11 * 3


def test_cli_prints_table_and_totals():
  out = subprocess.run(
      [sys.executable, "-m", "stcnn.summary", "--config=configs/slow_fusion.py:tiny",
       "--config.num_classes=5"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
  lines = out.strip().splitlines()
  assert lines[-1].startswith("total params ") and "forward GFLOPs" in lines[-1]
  assert any("tower/conv1" in ln and "(4," in ln for ln in lines)  # slow fusion: 4 times
  assert any(ln.startswith("│ head") and "(5,)" in ln for ln in lines)
