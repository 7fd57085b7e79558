"""Exported networks (StableHLO, ONNX) loaded in a fresh process without stcnn = the live model."""
import importlib.util
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from stcnn import export
from tests.helpers import ROOT

# Run in a fresh process: only numpy and jax or onnxruntime; stcnn (and flax) must stay unimported.
LOADER = r"""
import sys
import numpy as np
fmt, model_path, x_path, y_path = sys.argv[1:]
xs = np.load(x_path)
if fmt == "stablehlo":
  import jax
  with open(model_path, "rb") as f:
    exported = jax.export.deserialize(bytearray(f.read()))
  ys = {k: np.asarray(exported.call(xs[k])) for k in xs}
else:
  import onnxruntime
  session = onnxruntime.InferenceSession(model_path, providers=["CPUExecutionProvider"])
  ys = {k: session.run(None, {"video": xs[k]})[0] for k in xs}
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("stcnn", "flax", "configs"))
assert not loaded, loaded
np.savez(y_path, **ys)
"""

_missing = lambda *modules: [m for m in modules if importlib.util.find_spec(m) is None]
needs_flatbuffers = pytest.mark.skipif(
    bool(_missing("flatbuffers")),
    reason="jax.export serialisation needs flatbuffers (pip install flatbuffers)")
needs_onnx = pytest.mark.skipif(
    bool(_missing("flatbuffers", "jax2onnx", "onnxruntime")),
    reason=f"ONNX export needs {', '.join(_missing('flatbuffers', 'jax2onnx', 'onnxruntime'))}: "
    "pip install -e '.[export]'")


def _inputs(predictor, *batches):
  """Normalised inputs of realistic range, one array per batch size."""
  rng = np.random.default_rng(0)
  return {f"b{b}": (rng.integers(0, 256, (b, *predictor.input_shape)) - predictor.mean
                    ).astype(np.float32) for b in batches}


def _load_fresh(fmt, model_path, xs, tmp_path):
  """The exported model's outputs on xs, computed by a fresh process that never imports stcnn."""
  x_path, y_path = tmp_path / f"x_{fmt}.npz", tmp_path / f"y_{fmt}.npz"
  np.savez(x_path, **xs)
  script = tmp_path / "loader.py"
  script.write_text(LOADER)
  r = subprocess.run([sys.executable, str(script), fmt, str(model_path), str(x_path),
                      str(y_path)], cwd=str(tmp_path), capture_output=True, text=True,
                     env={**os.environ, "JAX_PLATFORMS": "cpu"})
  assert r.returncode == 0, r.stderr[-3000:]
  with np.load(y_path) as ys:
    return {k: ys[k] for k in ys}


def _check_same_scores(predictor, xs, ys):
  for k, x in xs.items():
    live = predictor.scores(x)
    assert ys[k].shape == live.shape == (len(x), len(predictor.class_names))
    np.testing.assert_allclose(ys[k], live, rtol=0, atol=1e-4)


@needs_flatbuffers
def test_stablehlo_cli_with_a_dynamic_batch(workdir, predictor, tmp_path):
  out = tmp_path / "model.stablehlo"
  r = subprocess.run([sys.executable, "-m", "stcnn.export", f"--workdir={workdir}",
                      f"--out={out}"], cwd=ROOT, capture_output=True, text=True,
                     env={**os.environ, "JAX_PLATFORMS": "cpu"})
  assert r.returncode == 0, r.stderr[-3000:]
  assert f"{out}: stablehlo" in r.stdout
  info = json.loads((tmp_path / "model.stablehlo.json").read_text())
  assert info["format"] == "stablehlo" and info["bytes"] == out.stat().st_size
  assert info["input"]["shape"] == [None, 2, 27, 27, 3]  # late fusion: frames 0 and 15
  assert info["output"]["shape"] == [None, 8]
  assert info["class_names"] == list(predictor.class_names)
  pre = info["preprocessing"]
  assert pre["frame_offsets"] == [0, 15] and pre["clip_span"] == 16
  assert (pre["frame_size"], pre["crop_size"], pre["mean"]) == (32, 27, 117.0)
  assert pre["views"] == [{"top": 2, "left": 2, "flip": False}, {"top": 2, "left": 2, "flip": True}]
  assert info["platforms"] == ["cpu", "cuda"] and info["model"]["checkpoint_step"] == 10
  xs = _inputs(predictor, 3, 1)
  _check_same_scores(predictor, xs, _load_fresh("stablehlo", out, xs, tmp_path))


@needs_flatbuffers
def test_stablehlo_fixed_batch(workdir, predictor, tmp_path):
  out = tmp_path / "fixed.stablehlo"
  info = export.export(workdir, out, "stablehlo", batch=4, platforms=("cpu",))
  assert info["input"]["shape"] == [4, 2, 27, 27, 3]
  exported = jax.export.deserialize(bytearray(out.read_bytes()))
  assert exported.in_avals[0].shape == (4, 2, 27, 27, 3)
  xs = _inputs(predictor, 4)
  _check_same_scores(predictor, xs, _load_fresh("stablehlo", out, xs, tmp_path))


@needs_onnx
def test_onnx(workdir, predictor, tmp_path):
  out = tmp_path / "model.onnx"
  info = export.export(workdir, out, "onnx")
  assert info["format"] == "onnx" and info["input"]["shape"] == [None, 2, 27, 27, 3]
  import onnx  # pylint: disable=g-import-not-at-top
  strides = [list(a.ints) for n in onnx.load(out).graph.node if n.op_type == "Conv"
             for a in n.attribute if a.name == "strides"]
  assert [3, 3] in strides, "conv1 as an ONNX Conv, not the CPU's matmul formulation"
  xs = _inputs(predictor, 3, 1)
  _check_same_scores(predictor, xs, _load_fresh("onnx", out, xs, tmp_path))


def test_bad_arguments_are_named(tmp_path):
  with pytest.raises(ValueError, match="--batch must be a positive integer or 'dynamic'"):
    export.parse_batch("0")
  with pytest.raises(ValueError, match="--format must be one of"):
    export.export(tmp_path, tmp_path / "m", "tflite")
  assert export.parse_batch("dynamic") is None and export.parse_batch(8) == 8
