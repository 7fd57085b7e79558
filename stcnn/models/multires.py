"""The multiresolution streams' inputs [paper §1, "Multiresolution CNNs"].

From a S×S frame (S = 178 in the paper):
- fovea: the centre (S/2)×(S/2) region at full resolution (camera bias: the subject is central);
- context: the whole frame downsampled ×2 to (S/2)×(S/2).
The downsampling filter is not given by the paper; we average non-overlapping 2×2 blocks [choice]
(the box filter that an image resize by exactly one half uses), so a context pixel is the mean of
the 4 frame pixels it covers.
"""


def stream_size(frame_size: int) -> int:
  """Side of both streams' inputs for a frame_size frame (178 → 89)."""
  return frame_size // 2


def fovea(video):
  """(B, T, S, S, C) → the centre (B, T, S/2, S/2, C) at full resolution."""
  s = video.shape[2]
  f = stream_size(s)
  top = (s - f) // 2
  return video[:, :, top:top + f, top:top + f, :]


def context(video):
  """(B, T, S, S, C) → the frame at half resolution (B, T, S/2, S/2, C): 2×2 block means."""
  b, t, h, w, c = video.shape
  f = stream_size(h)
  v = video[:, :, :2 * f, :2 * f, :].reshape(b, t, f, 2, f, 2, c)
  return v.mean(axis=(3, 5))


STREAM_INPUTS = {"fovea": fovea, "context": context}
