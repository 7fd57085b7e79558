"""Video data: readers, offline preparation, the embedded synthetic data set and the Grain pipeline.

The contract every module here keeps (see DESIGN.md):

Prepared data set = a TFDS data set stored as ArrayRecord (`stcnn.data.builders`), one example per
*video segment*:
  video_id      str    the video's id (file stem / YouTube id)
  labels        int64 (n,)  leaf class ids, n >= 1 (several for multi-label videos)
  frames        sequence of JPEG bytes, each a square frame_size x frame_size RGB image
                (centre crop + resize done offline, `video_io.centre_crop_resize`)
  segment       int64  index of this segment within its video
  num_segments  int64  how many segments the video was stored as (long videos are split into at most
                       `max_segments` evenly spaced segments of `segment_frames` frames)
  fps           float32 frame rate of the stored frames
The data set's metadata holds class_names, the class hierarchy (or none), frame_size and a fingerprint.

Hierarchy JSON (`hierarchy.json`): {"names": [...], "parents": [...], "num_leaves": L}; nodes
0..L-1 are the leaves = class ids, nodes L.. are internal; parents[i] is a node id or -1 (root).

Pipeline output (per process batch): video float32 (b, T, S, S, 3) mean-subtracted, label int32 (b,)
(first label), target float32 (b, C) soft target spread evenly over the video's labels.
"""
