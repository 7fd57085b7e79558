"""Shared fixtures. Grain 0.2.x reads absl flags in its workers (google/grain#1355): parse them once."""
import sys

from absl import flags

if not flags.FLAGS.is_parsed():
  flags.FLAGS(sys.argv[:1])
