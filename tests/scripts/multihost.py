"""One of two processes training the tiny config together: prints `HASH <process> <params sha256>`.

Run from the repository root as
`python -m tests.scripts.multihost PROCESS_ID PORT CACHE_DIR WORKDIR` (JAX_PLATFORMS=cpu), once for
each of the process ids 0 and 1, with the same port (the coordinator's, on 127.0.0.1).
"""
import hashlib
import sys

from absl import flags
import jax
import numpy as np

flags.FLAGS(sys.argv[:1])  # Grain 0.2.x reads absl flags in its workers (google/grain#1355).

from stcnn import checkpoint_reader, parallel, train  # noqa: E402
from tests.helpers import tiny_config  # noqa: E402


def main(argv):
  pid, port, cache_dir, workdir = int(argv[1]), int(argv[2]), argv[3], argv[4]
  parallel.initialize(f"127.0.0.1:{port}", 2, pid)
  assert jax.process_count() == 2 and len(jax.devices()) == 2
  cfg = tiny_config(cache_dir, total_steps=4, eval_every=4, checkpoint_every=2, log_every=2)
  train.train_and_evaluate(cfg, workdir)
  params, _ = checkpoint_reader.load_params(workdir)
  h = hashlib.sha256(b"".join(np.ascontiguousarray(x).tobytes()
                              for x in jax.tree.leaves(params)))
  print("HASH", pid, h.hexdigest())


if __name__ == "__main__":
  main(sys.argv)
