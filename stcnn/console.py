"""What a command line prints besides its own output: `quiet_libraries()` keeps libraries' routine
INFO lines out of it (the jax backend probe's "Unable to initialize backend 'tpu'" on every
machine without one, Orbax's and TFDS's per-save chatter); their warnings and errors still show.
Every CLI calls it first thing in its `main`."""
from absl import logging

_PROBE_LOGGER = "jax._src.xla_bridge"  # logs each backend it tried and could not start, at INFO


# Orbax warns on every read-only open of a checkpoint directory (what evaluate, predict, export and
# visualize do, on purpose): not a problem, so not shown.
_BENIGN_WARNINGS = ("Given directory is read only", "CheckpointManagerOptions.read_only=True")


class _RoutineInfo(logging.logging.Filter):
  """Drops INFO records of Orbax and TFDS (one per save / per data set load) and Orbax's warning
  about a read-only open."""

  def filter(self, record):
    noisy = "/orbax/" in record.pathname or "/tensorflow_datasets/" in record.pathname
    if noisy and str(record.msg).startswith(_BENIGN_WARNINGS):
      return False
    return record.levelno >= logging.logging.WARNING or not noisy


_FILTER = _RoutineInfo()


def quiet_libraries() -> None:
  logging.logging.getLogger(_PROBE_LOGGER).setLevel(logging.logging.WARNING)
  handler = logging.get_absl_handler()
  if _FILTER not in handler.filters:
    handler.addFilter(_FILTER)
