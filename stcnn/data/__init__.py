"""Video data: readers, offline preparation, the embedded synthetic data set and the Grain pipeline.

The contract every module here keeps (see docs/design.md):

Prepared data set = a TFDS data set stored as ArrayRecord (written by `stcnn.data.builders`, read
back by `stcnn.data.prepared`), one example per *video segment*:
  video_id      str    the video's id (file stem / YouTube id)
  labels        int64 (n,)  leaf class ids, n >= 1 (several for multi-label videos)
  frames        sequence of JPEG bytes, each a square frame_size x frame_size RGB image
                (centre crop + resize done offline, `video_io.centre_crop_resize`)
  segment       int64  index of this segment within its video
  num_segments  int64  how many segments the video was stored as: a video of up to
                       max_segments x segment_frames frames is stored whole, in contiguous segments
                       of at most `segment_frames` frames; a longer one as `max_segments` evenly
                       spaced segments of `segment_frames` frames (`encode.segment_windows`)
  fps           float32 frame rate of the stored frames
Records are stored in listing order, a video's segments consecutive. The data set's metadata holds
class_names, the class hierarchy (or none), frame_size and a fingerprint.

Record index (`<builder dir>/index-<split>.jsonl`, `Prepared.index(split)`): one JSON object per
record, in stored order, everything but the frames, so that evaluation can be planned and videos
sampled without reading JPEG bytes:
  {"video_id": str, "labels": [int, ...], "segment": int, "num_segments": int, "num_frames": int,
   "fps": float}   (num_frames = len(frames); fps as stored, float32 precision)
Data sets written before the index existed have none (`Prepared.index` returns None): scan the
records instead.

Hierarchy JSON (`hierarchy.json`): {"names": [...], "parents": [...], "num_leaves": L}; nodes
0..L-1 are the leaves = class ids, nodes L.. are internal; parents[i] is an internal node id or -1
(a root); every node's chain of parents ends at a root (no cycles).

Pipeline output (per process batch): video float32 (b, T, S, S, 3) mean-subtracted, label int32 (b,)
(first label), target float32 (b, C) soft target spread evenly over the video's labels.
"""
