"""Video files in and out (PyAV), and the paper's offline pre-processing of one frame.

Everything that touches an encoded video file lives here, so the synthetic data set, the readers
(UCF-101, Sports-1M, folders) and the tests all use one decode path.

Pre-processing [paper §2]: "crop the centre region, resize to 200×200". We take the largest centred
square (the centre region) and resize it with bilinear filtering [choice].
"""
from __future__ import annotations

import contextlib
import io
from typing import Collection, Iterator

import av
import numpy as np
from PIL import Image

from stcnn import fileio


class VideoDecodeError(RuntimeError):
  """A file PyAV cannot open or decode; the message names the file and the decoder's reason."""


def write_video(path, frames: np.ndarray, fps: float = 25, codec: str | None = None,
                rotation: int = 0) -> None:
  """Encodes uint8 frames (T, H, W, 3) to `path`: mpeg4 by default (XVID-tagged in .avi).
  `rotation`: display-matrix metadata, degrees counter-clockwise (as a phone records portrait
  video: stored landscape, shown rotated)."""
  frames = np.asarray(frames)
  if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
    raise ValueError(f"{path}: frames must be uint8 (T, H, W, 3), got {frames.dtype} "
                     f"{frames.shape}")
  path = str(path)
  if codec is None:
    codec = "mpeg4"
  with av.open(path, mode="w") as container:
    stream = container.add_stream(codec, rate=int(round(fps)))
    stream.width, stream.height = frames.shape[2], frames.shape[1]
    stream.pix_fmt = "yuv420p"
    if rotation:
      stream.set_display_rotation(rotation)
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


@contextlib.contextmanager
def _open(path):
  """The container and its first video stream; PyAV's errors become VideoDecodeError. A URI
  (gs://...) is read through etils.epath (`stcnn.fileio`)."""
  try:
    with contextlib.ExitStack() as stack:
      source = (stack.enter_context(fileio.open_binary(path)) if fileio.is_remote(path)
                else str(path))
      container = stack.enter_context(av.open(source))
      if not container.streams.video:
        raise VideoDecodeError(f"{path}: no video stream")
      yield container, container.streams.video[0]
  except VideoDecodeError:
    raise
  except (av.error.FFmpegError, OSError, ValueError) as e:  # corrupt / truncated / unsupported
    raise VideoDecodeError(f"{path}: {type(e).__name__}: {e}") from e


def probe(path) -> tuple[int, float]:
  """(frame count, average frame rate) from the container's header; no frame is decoded.

  The count is the stream's own when the container stores it (mp4, avi); else (mkv, webm) it is
  estimated as duration x rate, so it may be off by a few frames. Only a file without any duration
  is demuxed to count its packets. The rate falls back to 25 when the header has none.
  """
  with _open(path) as (container, stream):
    rate = float(stream.average_rate or stream.guessed_rate or 0) or 25.0
    if stream.frames:
      return stream.frames, rate
    if stream.duration and stream.time_base:
      seconds = float(stream.duration * stream.time_base)
    else:
      seconds = (container.duration or 0) / av.time_base
    if seconds > 0:
      return max(1, round(seconds * rate)), rate
    return sum(1 for p in container.demux(stream) if p.size), rate


def video_fps(path) -> float:
  """The average frame rate of the first video stream (falls back to 25)."""
  return probe(path)[1]


def upright(frame: np.ndarray, rotation: float) -> np.ndarray:
  """The frame as a player shows it: turned `rotation` degrees counter-clockwise (the display
  matrix's rotation, PyAV's `VideoFrame.rotation`), to the nearest quarter turn."""
  quarter_turns = round(rotation / 90) % 4
  return np.ascontiguousarray(np.rot90(frame, quarter_turns)) if quarter_turns else frame


def decode_frames(path, wanted: Collection[int] | None = None) -> Iterator[tuple[int, np.ndarray]]:
  """Yields (frame index, RGB uint8 (H, W, 3)) of the frames in `wanted` (None: every frame),
  upright: rotation metadata (a phone's portrait video) is honoured, as players do.

  Only wanted frames are converted to RGB, and decoding stops after the last one.
  """
  last = max(wanted, default=-1) if wanted is not None else None
  with _open(path) as (container, stream):
    stream.thread_type = "AUTO"
    for i, frame in enumerate(container.decode(stream)):
      if last is not None and i > last:
        return
      if wanted is None or i in wanted:
        yield i, upright(frame.to_ndarray(format="rgb24"), frame.rotation)


def iter_frames(path) -> Iterator[np.ndarray]:
  """Yields the decoded RGB uint8 frames (H, W, 3) of any video PyAV can read."""
  for _, frame in decode_frames(path):
    yield frame


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
