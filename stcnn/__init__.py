"""stcnn: Karpathy et al. (CVPR 2014) video CNNs in JAX/Flax; `stcnn.Predictor` (predictor.py)."""

__all__ = ["Predictor"]


def __getattr__(name):
  # Imported on first use, so that `import stcnn.data` (which knows no network) stays light.
  if name == "Predictor":
    from stcnn.predictor import Predictor  # pylint: disable=import-outside-toplevel
    return Predictor
  raise AttributeError(f"module 'stcnn' has no attribute {name!r}")
