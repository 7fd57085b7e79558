r"""A trained workdir's network, exported for serving without this repository.

  python -m stcnn.export --workdir=DIR --out=PATH [--format=stablehlo|onnx] [--batch=N|dynamic]
      [--checkpoint=best|latest|STEP] [--platforms=cpu,cuda]

PATH holds the network with its parameters: scores = f(video), video float32
(batch, frames read, crop, crop, 3) already normalised, scores float32 (batch, classes), the
probabilities softmax(scores) (the tree head's scores are leaf log-probabilities: the same).
`PATH.json` beside it holds what turns a video into that input and the scores into names: stored
frame size, JPEG quality, crop size, mean, the frames read, clips a video and their placement, the
views (crop corners, flips), class names, input and output shapes; `stcnn.predictor` computes the
same thing from the workdir (see its docstring for the steps).

Loading, with neither this repository nor flax:
  stablehlo  (needs jax and flatbuffers)
      exp = jax.export.deserialize(open(PATH, "rb").read()); scores = exp.call(video)
  onnx       (needs onnxruntime)
      sess = onnxruntime.InferenceSession(PATH); scores = sess.run(None, {"video": video})[0]

StableHLO is `jax.export` serialised for `--platforms` (default cpu and cuda; lowering needs no
GPU). ONNX goes through jax2onnx (`pip install -e ".[export]"`): the network converts as it is
computed: the LRN's `reduce_window`, the 2×2 max pool (its hand-written gradient is no part of
the inference graph), the convolutions as ONNX `Conv` and the tree head (jax2onnx 0.12.5 and 0.17.1,
onnxruntime 1.32: every fusion type, full and multires, within 3e-6 of the live model's scores at
the `tiny` size). `--batch=dynamic` (the default) leaves the batch size free; `--batch=N` fixes it.
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import logging as py_logging
import os
import sys

from absl import app, flags, logging
import jax
import jax.numpy as jnp

from stcnn import checkpoint_reader, console, fileio
from stcnn.predictor import Predictor

FORMATS = ("stablehlo", "onnx")
INPUT_NAME, OUTPUT_NAME = "video", "scores"


def parse_batch(batch) -> int | None:
  """'dynamic' → None; a positive int (or its text) → that int."""
  if batch is None or str(batch) == "dynamic":
    return None
  if not str(batch).isdigit() or int(batch) < 1:
    raise ValueError(f"--batch must be a positive integer or 'dynamic', got {batch!r}")
  return int(batch)


def preprocessing(predictor: Predictor, batch: int | None) -> dict:
  """The constants a server needs around the exported network (the `PATH.json` minus file
  fields)."""
  p = predictor
  config = p.config
  return {
      "input": {"name": INPUT_NAME, "dtype": "float32",
                "shape": [batch, *p.input_shape],
                "axes": "(batch, frames read, crop, crop, RGB); batch null = any"},
      "output": {"name": OUTPUT_NAME, "dtype": "float32", "shape": [batch, len(p.class_names)],
                 "probabilities": "softmax over the last axis"},
      "preprocessing": {
          "frame_size": p.frame_size, "jpeg_quality": p.jpeg_quality, "fps": p.fps,
          "crop_size": p.crop_size, "mean": p.mean, "frame_offsets": list(p.offsets),
          "clip_span": p.span, "clips_per_video": p.clips_per_video,
          "views": [{"top": v.top, "left": v.left, "flip": v.flip} for v in p.view_list],
          "steps": [
              "decode RGB frames; if fps is set, stored frame j = source frame "
              "int(j * source_rate / fps + 1e-6)",
              "each frame: the largest centred square, resized to frame_size x frame_size "
              "(bilinear, PIL), then JPEG-encoded at jpeg_quality and decoded",
              "n frames -> clips_per_video clips: valid = max(n - clip_span, 0) + 1, clip i "
              "starts at (2i + 1) * valid // (2 * clips_per_video); it reads frames start + "
              "frame_offsets, clamped to n - 1",
              "each clip x each view: rows top..top+crop_size-1, columns left..left+crop_size-1 "
              "of every frame, reversed left-right if flip; example e = view e % views of clip "
              "e // views",
              "float32 pixel values minus mean",
              "video probabilities = mean of softmax(scores) over all clips x views",
          ]},
      "class_names": list(p.class_names),
      "model": {"fusion": config.model.fusion, "streams": config.model.streams,
                "head": config.model.head, "num_classes": int(config.num_classes),
                "dtype": config.model.get("dtype", "float32"), "checkpoint_step": p.step},
  }


def export_stablehlo(predictor: Predictor, batch: int | None,
                     platforms=("cpu", "cuda")) -> bytes:
  """`jax.export` of the network (parameters embedded), serialised."""
  require("stablehlo")  # jax.export's serialisation needs the flatbuffers package
  first = jax.export.symbolic_shape("batch")[0] if batch is None else batch
  spec = jax.ShapeDtypeStruct((first, *predictor.input_shape), jnp.float32)
  exported = jax.export.export(jax.jit(predictor.scores_fn()), platforms=tuple(platforms))(spec)
  return bytes(exported.serialize())


@contextlib.contextmanager
def _quiet_jax2onnx():
  """jax2onnx imports its example plugins and logs a traceback for each one whose optional
  dependency is missing (equinox, dm_pix; none of them is used here), and 0.12 prints debug lines
  to stdout: both are kept off the output."""
  logger = py_logging.getLogger("jax2onnx.plugins.plugin_system")
  level = logger.level
  logger.setLevel(py_logging.ERROR)
  try:
    with contextlib.redirect_stdout(io.StringIO()):
      yield
  finally:
    logger.setLevel(level)


def require(fmt: str) -> None:
  """Raises ImportError naming what to install when `fmt` cannot be written here."""
  needs = {"stablehlo": ("flatbuffers",), "onnx": ("flatbuffers", "jax2onnx", "onnxruntime")}
  missing = [m for m in needs[fmt] if importlib.util.find_spec(m) is None]
  if missing:
    what = "pip install flatbuffers" if fmt == "stablehlo" else "pip install -e '.[export]'"
    raise ImportError(f"{fmt} export needs {', '.join(missing)}: {what}")


def export_onnx(predictor: Predictor, batch: int | None) -> bytes:
  """The network as an ONNX model (jax2onnx), serialised; input "video", output "scores". Its
  convolutions are ONNX `Conv` ops (XLA's formulation), which every ONNX runtime implements for
  its own hardware."""
  require("onnx")
  with _quiet_jax2onnx():
    import jax2onnx  # pylint: disable=import-outside-toplevel
  with _quiet_jax2onnx():
    model = jax2onnx.to_onnx(predictor.scores_fn(conv_impl="reference"),
                             [("batch" if batch is None else batch, *predictor.input_shape)],
                             model_name="stcnn", input_names=[INPUT_NAME],
                             output_names=[OUTPUT_NAME])
  return model.SerializeToString()


def export(workdir, out, fmt: str = "stablehlo", batch="dynamic", checkpoint="best",
           platforms=("cpu", "cuda")) -> dict:
  """Writes the network to `out` and its constants to `out`.json; returns the latter."""
  if fmt not in FORMATS:
    raise ValueError(f"--format must be one of {FORMATS}, got {fmt!r}")
  batch = parse_batch(batch)
  require(fmt)
  predictor = Predictor.from_workdir(workdir, checkpoint)
  if fmt == "stablehlo":
    data = export_stablehlo(predictor, batch, platforms)
    load = "jax.export.deserialize(open(file, 'rb').read()).call(video)"
  else:
    data = export_onnx(predictor, batch)
    load = "onnxruntime.InferenceSession(file).run(None, {'video': video})[0]"
  out = os.path.abspath(os.fspath(out))
  os.makedirs(os.path.dirname(out), exist_ok=True)
  tmp = f"{out}.tmp-{os.getpid()}"
  with open(tmp, "wb") as f:
    f.write(data)
  os.replace(tmp, out)
  info = {"format": fmt, "file": os.path.basename(out), "bytes": len(data), "load": load,
          **({"platforms": list(platforms)} if fmt == "stablehlo" else {}),
          "workdir": predictor.sources.get("workdir"), **preprocessing(predictor, batch)}
  fileio.write_json(f"{out}.json", info)
  return info


# ---------------------------------------------------------------------------------------------- CLI
FLAGS = flags.FLAGS


def define_flags():
  checkpoint_reader.define_workdir_flags()
  flags.DEFINE_string("out", None, "Where to write the network (PATH.json beside it).")
  flags.DEFINE_enum("format", "stablehlo", FORMATS, "stablehlo (jax.export) | onnx (jax2onnx).")
  flags.DEFINE_string("batch", "dynamic", "Batch size of the input: N, or dynamic (any).")
  flags.register_validator("batch", lambda v: v == "dynamic" or (v.isdigit() and int(v) > 0),
                           message="--batch must be a positive integer or dynamic")
  flags.DEFINE_list("platforms", ["cpu", "cuda"], "StableHLO: platforms to lower for.")
  flags.mark_flags_as_required(["workdir", "out"])


def main(argv):
  console.quiet_libraries()
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  try:
    info = export(FLAGS.workdir, FLAGS.out, FLAGS.format, FLAGS.batch, FLAGS.checkpoint,
                  FLAGS.platforms)
  except ImportError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  shape = ["batch" if d is None else d for d in info["input"]["shape"]]
  print(f"{FLAGS.out}: {info['format']}, {info['bytes']:,} bytes, input {INPUT_NAME} "
        f"float32 {shape} -> {OUTPUT_NAME} ({info['output']['shape'][1]} classes), "
        f"checkpoint step {info['model']['checkpoint_step']}")
  print(f"{FLAGS.out}.json: preprocessing constants and class names")
  logging.info("done")
  return 0


if __name__ == "__main__":
  define_flags()
  app.run(main)
