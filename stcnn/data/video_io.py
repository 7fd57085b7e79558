"""Video files in and out (PyAV), and the paper's offline pre-processing of one frame.

Everything that touches an encoded video file lives here, so the synthetic data set, the readers
(UCF-101, Sports-1M, folders) and the tests all use one decode path.

Pre-processing [paper §2]: "crop the centre region, resize to 200×200". We take the largest centred
square (the centre region) and resize it with bilinear filtering [choice].
"""
from __future__ import annotations

import io
from typing import Iterator

import av
import numpy as np
from PIL import Image


class VideoDecodeError(RuntimeError):
  """A file PyAV cannot open or decode; the message names the file and the decoder's reason."""


def write_video(path, frames: np.ndarray, fps: float = 25, codec: str | None = None) -> None:
  """Encodes uint8 frames (T, H, W, 3) to `path` (.mp4 → h264/mpeg4, .avi → XVID-tagged mpeg4)."""
  frames = np.asarray(frames)
  if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
    raise ValueError(f"{path}: frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
  path = str(path)
  if codec is None:
    codec = "mpeg4"
  with av.open(path, mode="w") as container:
    stream = container.add_stream(codec, rate=int(round(fps)))
    stream.width, stream.height = frames.shape[2], frames.shape[1]
    stream.pix_fmt = "yuv420p"
    # A fixed quantiser 2, as `ffmpeg -q:v 2` sets it (global_quality = 2 × FF_QP2LAMBDA). A bare
    # {"qscale": "2"} is no codec option and was silently ignored: rate control at the default bit
    # rate then let small frames drift to ~15/255 mean error within a GOP.
    stream.options = {"flags": "+qscale", "global_quality": "236"} if codec == "mpeg4" else {}
    if path.endswith(".avi") and codec == "mpeg4":
      stream.codec_context.codec_tag = "XVID"
    for frame in frames:
      for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
        container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)


def iter_frames(path) -> Iterator[np.ndarray]:
  """Yields the decoded RGB uint8 frames (H, W, 3) of any video PyAV can read."""
  try:
    with av.open(str(path)) as container:
      if not container.streams.video:
        raise VideoDecodeError(f"{path}: no video stream")
      stream = container.streams.video[0]
      stream.thread_type = "AUTO"
      for frame in container.decode(stream):
        yield frame.to_ndarray(format="rgb24")
  except VideoDecodeError:
    raise
  except (av.error.FFmpegError, OSError, ValueError) as e:  # corrupt / truncated / unsupported
    raise VideoDecodeError(f"{path}: {type(e).__name__}: {e}") from e


def video_fps(path) -> float:
  """The average frame rate of the first video stream (falls back to 25)."""
  try:
    with av.open(str(path)) as container:
      rate = container.streams.video[0].average_rate
      return float(rate) if rate else 25.0
  except (av.error.FFmpegError, OSError, IndexError) as e:
    raise VideoDecodeError(f"{path}: {type(e).__name__}: {e}") from e


def read_video(path) -> np.ndarray:
  """All frames of a video as uint8 (T, H, W, 3); raises VideoDecodeError if it has none."""
  frames = list(iter_frames(path))
  if not frames:
    raise VideoDecodeError(f"{path}: decoded 0 frames")
  return np.stack(frames)


def centre_crop_resize(frame: np.ndarray, size: int) -> np.ndarray:
  """The paper's pre-processing: the centred square region of a frame, resized to size × size."""
  h, w = frame.shape[:2]
  s = min(h, w)
  top, left = (h - s) // 2, (w - s) // 2
  square = frame[top:top + s, left:left + s]
  if s == size:
    return np.ascontiguousarray(square)
  return np.asarray(Image.fromarray(square).resize((size, size), Image.BILINEAR))


def encode_jpeg(frame: np.ndarray, quality: int = 90) -> bytes:
  buf = io.BytesIO()
  Image.fromarray(frame).save(buf, format="JPEG", quality=quality)
  return buf.getvalue()


def decode_jpeg(data: bytes) -> np.ndarray:
  """uint8 (H, W, 3) from JPEG bytes."""
  with Image.open(io.BytesIO(data)) as im:
    return np.asarray(im.convert("RGB"))
