"""The fast formulations in stcnn.models.layers against the plain ones: values and gradients."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stcnn.models import layers
from stcnn.models.fusion import VideoNet
from tests import helpers

RTOL = 1e-5


def close(got, want, rtol=RTOL):
  """Equal up to rtol relative to the largest magnitude (sums of hundreds of float32 terms)."""
  for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    assert g.shape == w.shape
    scale = max(float(jnp.max(jnp.abs(w))), 1e-30)
    err = float(jnp.max(jnp.abs(g - w)))
    assert err <= rtol * scale, f"max error {err} > {rtol} x {scale}"


def normal(seed, shape, scale=1.0):
  return helpers.normal(shape, seed, scale)


def value_and_grads(f, *args):
  """f(*args) and the gradient of a random projection of it wrt every argument."""
  @jax.jit  # one compilation for both (op-by-op dispatch of the im2col slices is slow)
  def both(*args):
    y, vjp = jax.vjp(f, *args)
    return y, vjp(normal(99, y.shape))
  return both(*args)


# ------------------------------------------------------------------------------------------ convs
CONV_CASES = [  # (batch, size, channels in, out, kernel, stride); width is size + 1. The first
    # layers of early (12 channels) and slow fusion (30): test_temporal_conv_is_a_3d_conv.
    (2, 54, 3, 8, 11, 3), (1, 57, 3, 5, 11, 3),
    (2, 9, 7, 5, 5, 1), (2, 7, 3, 4, 3, 2), (1, 10, 2, 3, 4, 2)]


@pytest.mark.parametrize("case", CONV_CASES)
def test_im2col_matches_reference(case):
  b, hw, cin, cout, f, s = case
  x, w = normal(0, (b, hw, hw + 1, cin)), normal(1, (f, f, cin, cout), 0.1)
  want = value_and_grads(lambda x, w: layers.conv_reference(x, w, s), x, w)
  got = value_and_grads(lambda x, w: layers.conv_im2col(x, w, s), x, w)
  assert got[0].shape == (b, -(-hw // s), -(-(hw + 1) // s), cout)
  close(got, want)


def test_each_platform_gets_its_own_conv_in_one_exported_program():
  """The CPU formulation (matmuls) where the program runs on a CPU, XLA's convolution elsewhere,
  chosen per platform at lowering: an export for cpu and cuda carries both."""
  x, w = jax.ShapeDtypeStruct((2, 2, 2, 8), jnp.float32), jax.ShapeDtypeStruct((3, 3, 8, 8),
                                                                               jnp.float32)
  assert layers.conv_impl_for(1, 2, 3) == "im2col"
  assert layers.conv_impl_for(1, 5, 5) == layers.conv_impl_for(3, 28, 11) == "reference"
  f = jax.jit(lambda x, w: layers.conv2d(x, w, 1))

  def ops(*platforms):
    text = jax.export.export(f, platforms=platforms)(x, w).mlir_module()
    return text.count("stablehlo.convolution") > 0, text.count("stablehlo.dot_general") > 0
  assert ops("cpu") == (False, True)
  assert ops("cuda") == ops("tpu") == (True, False)
  assert ops("cpu", "cuda") == (True, True)


# ---------------------------------------------------------------------------------------- pooling
@pytest.mark.parametrize("shape", [(2, 18, 18, 24), (2, 9, 9, 5), (1, 2, 7, 6, 3), (3, 4, 5, 2)])
def test_max_pool_matches_reduce_window(shape):
  x = normal(0, shape)
  close(value_and_grads(layers.max_pool, x), value_and_grads(layers.max_pool_reference, x))


def test_max_pool_gradient_breaks_ties_like_select_and_scatter():
  x = jnp.floor(normal(0, (2, 7, 9, 4), 1.5))  # few distinct values: many tied windows
  x = x.at[0, :2, :2, 0].set(1.0)  # a window all tied
  _, (got,) = value_and_grads(layers.max_pool, x)
  _, (want,) = value_and_grads(layers.max_pool_reference, x)
  np.testing.assert_array_equal(got, want)


# ------------------------------------------------------------------------------------ time stacks
@pytest.mark.parametrize("t,kt,st", [(10, 4, 2), (4, 2, 2), (2, 2, 2), (10, 10, 1), (10, 1, 1),
                                     (10, 1, 3), (9, 2, 3), (7, 3, 1)])
def test_stack_time_matches_reference(t, kt, st):
  x = normal(0, (2, t, 5, 4, 3))
  want = layers.stack_time_reference(x, kt, st) if kt > 1 else x[:, ::st]
  np.testing.assert_array_equal(layers.stack_time(x, kt, st), want)


# im2col against the reference conv: test_im2col_matches_reference.
@pytest.mark.parametrize("impl", [None, "im2col"])
@pytest.mark.parametrize("t,kt,st,f,s,size", [(10, 4, 2, 11, 3, 20), (4, 2, 2, 5, 1, 9),
                                              (10, 10, 1, 11, 3, 17), (2, 1, 1, 11, 3, 28)])
def test_temporal_conv_is_a_3d_conv(impl, t, kt, st, f, s, size):
  x = normal(0, (2, t, size, size, 3))
  conv = layers.TemporalConv(5, f, s, kt, st, impl=impl)
  p = helpers.init(conv, x, seed=1)["params"]

  def conv3d(p, x):  # the true 3-D conv, VALID in time, SAME in space
    w = p["conv"]["kernel"].reshape(f, f, kt, 3, 5).transpose(2, 0, 1, 3, 4)
    _, lo, hi = layers.same_padding(size, f, s)
    y = jax.lax.conv_general_dilated(x, w, (st, s, s), ((0, 0), (lo, hi), (lo, hi)),
                                     dimension_numbers=("NDHWC", "DHWIO", "NDHWC"))
    return y + p["conv"]["bias"]

  p["conv"]["bias"] = normal(2, (5,))
  close(value_and_grads(lambda p, x: conv.apply({"params": p}, x), p, x),
        value_and_grads(conv3d, p, x))


def test_conv_params_are_nn_conv_params():
  """Same names, shapes and initial values as nn.Conv: checkpoints carry over."""
  x = normal(0, (1, 1, 12, 12, 6))

  class Old(nn.Module):
    @nn.compact
    def __call__(self, x):
      return nn.Conv(7, (5, 5), (2, 2), padding="SAME", name="conv")(layers.fold_time(x))

  want = helpers.init(Old(), x, seed=3)
  got = helpers.init(layers.TemporalConv(7, 5, 2), x, seed=3)
  assert jax.tree.map(jnp.shape, got) == jax.tree.map(jnp.shape, want)
  for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_array_equal(g, w)


# ---------------------------------------------------------------------------------------- towers
def reference_tower(p, x, temporal, last_pool, width):
  """The Tower written with the reference formulations only, on Tower's parameters."""
  for i, (d, f, s, norm_pool) in enumerate(layers.CONVS):
    kt, st = temporal[i] if i < len(temporal) else (1, 1)
    t_out = (x.shape[1] - kt) // st + 1
    x = layers.stack_time_reference(x, kt, st) if kt > 1 else x[:, ::st]
    q = p[f"conv{i + 1}"]["conv"]
    y = layers.conv_reference(layers.fold_time(x), q["kernel"], s) + q["bias"]
    x = nn.relu(layers.unfold_time(y, t_out))
    if norm_pool:
      x = layers.lrn(x)
    if norm_pool or (i == 4 and last_pool):
      x = layers.unfold_time(layers.max_pool_reference(layers.fold_time(x)), x.shape[1])
  return x


@pytest.mark.parametrize("fusion,size,last_pool", [("single", 54, True), ("slow", 30, True),
                                                   ("early", 29, False)])
def test_tower_matches_reference_formulation(fusion, size, last_pool):
  from stcnn.models.fusion import temporal_spec  # pylint: disable=g-import-not-at-top
  temporal = temporal_spec(fusion)
  model = VideoNet(3, fusion=fusion)
  x = normal(0, (2, model.num_frames, size, size, 3), 50.0)
  tower = layers.Tower(0.125, temporal, last_pool)
  p = helpers.init(tower, x, seed=1)["params"]
  p = jax.tree.map(lambda a: a + 0.01 * normal(5, a.shape), p)  # non-zero biases
  got = value_and_grads(lambda p, x: tower.apply({"params": p}, x), p, x)
  want = value_and_grads(lambda p, x: reference_tower(p, x, temporal, last_pool, 0.125), p, x)
  close(got, want, rtol=2e-5)
