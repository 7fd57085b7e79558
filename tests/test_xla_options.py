"""stcnn.xla_options: on CPU, convolutions are compiled to XLA's own kernels (not YNNPACK's), dots
stay with YNNPACK, and the numbers do not change."""
import jax
import jax.numpy as jnp
import numpy as np

from stcnn import xla_options
from stcnn.models import layers


def _conv_and_dot(x, w, a):
  return layers.conv_reference(x, w, 3), a @ a


def _compiled_text(options):
  # slow fusion's conv1 at the `cpu` size (compiled, not run)
  x, w, a = jnp.ones((8, 54, 54, 12)), jnp.ones((11, 11, 12, 24)), jnp.ones((64, 64))
  return jax.jit(_conv_and_dot, compiler_options=options).lower(x, w, a).compile().as_text()


def _library_fusions(text):
  """Names of the instructions compiled as YNNPACK fusions, and whether a convolution is one."""
  fused = [line for line in text.splitlines() if "__ynn_fusion" in line]
  return len(fused), any("conv_general_dilated" in line for line in fused)


def test_cpu_convolutions_leave_ynnpack_and_dots_stay():
  options = xla_options.compiler_options()
  assert jax.default_backend() == "cpu" and options
  default, with_options = _compiled_text({}), _compiled_text(options)
  # XLA's default hands both the convolution and the dot to YNNPACK (if a jax version stops
  # doing so, this fails: the option and its measurement in the module docstring are then stale)
  assert _library_fusions(default) == (2, True)
  assert _library_fusions(with_options) == (1, False)
  assert "convolution(" in with_options


def test_same_numbers_with_the_options():
  k = jax.random.split(jax.random.key(0), 3)
  x, w = jax.random.normal(k[0], (4, 20, 20, 6)), jax.random.normal(k[1], (5, 5, 6, 8)) * 0.1

  def loss_and_grads(options):
    f = jax.jit(jax.value_and_grad(lambda x, w: jnp.sum(layers.conv_reference(x, w, 2) ** 2),
                                   argnums=(0, 1)), compiler_options=options)
    return f(x, w)

  (l0, (gx0, gw0)), (l1, (gx1, gw1)) = loss_and_grads({}), \
      loss_and_grads(xla_options.compiler_options())
  np.testing.assert_allclose(l1, l0, rtol=1e-5)
  np.testing.assert_allclose(gx1, gx0, rtol=1e-5, atol=1e-5 * float(jnp.abs(gx0).max()))
  np.testing.assert_allclose(gw1, gw0, rtol=1e-5, atol=1e-5 * float(jnp.abs(gw0).max()))


def test_other_backends_get_none():
  assert xla_options.compiler_options("gpu") == {} == xla_options.compiler_options("tpu")


def _parameter_copies(options):
  """Copies of a parameter in the compiled training-like step: three dense layers whose second
  and third kernels are read again by the backward pass for an input gradient, then updated in
  place (SGD momentum) in their donated buffers."""
  def forward(p, x):
    h = jax.nn.relu(x @ p["w1"])
    return jax.nn.relu(h @ p["w2"]) @ p["w3"]

  def step(p, m, x):
    g = jax.grad(lambda p: jnp.sum(jnp.tanh(forward(p, x))))(p)
    m = jax.tree.map(lambda m, g: 0.9 * m + g, m, g)
    return jax.tree.map(lambda p, m: p - 1e-3 * m, p, m), m

  p = {"w1": jnp.ones((64, 32)), "w2": jnp.ones((32, 32)), "w3": jnp.ones((32, 8))}
  m = jax.tree.map(jnp.zeros_like, p)
  text = jax.jit(step, donate_argnums=(0, 1), compiler_options=options).lower(
      p, m, jnp.ones((4, 64))).compile().as_text()
  return sorted(line.split("copy(%")[1].split(")")[0] for line in text.splitlines()
                if " copy(%p" in line)


def test_donated_parameters_are_updated_without_a_copy():
  # XLA:CPU's default copy insertion copies w2 and w3 (if a jax version stops doing so, the
  # option's measurement in the module docstring is stale); with the options none is copied
  assert len(_parameter_copies({})) == 2
  assert _parameter_copies(xla_options.compiler_options()) == []
