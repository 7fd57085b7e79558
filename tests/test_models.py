"""The paper's geometry, parameter counts, what each network can see, LRN, heads, every config."""
import glob
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stcnn import models
from stcnn.models import heads, layers
from stcnn.models.fusion import VideoNet
from tests.helpers import ROOT, init, load_config, normal

CONFIGS = sorted(p for p in glob.glob(os.path.join(ROOT, "configs", "*.py"))
                 if os.path.basename(p) not in ("__init__.py", "common.py"))


def shapes(model, video_shape):
  """Output shape of every submodule (abstractly: no FLOPs spent)."""
  def f(v):
    params = model.init(jax.random.key(0), v)
    return model.apply(params, v, capture_intermediates=True, mutable=["intermediates"])[1]
  inter = jax.eval_shape(f, jax.ShapeDtypeStruct(video_shape, jnp.float32))["intermediates"]
  flat = jax.tree_util.tree_flatten_with_path(inter)[0]
  names = lambda path: [k.key for k in path if hasattr(k, "key") and k.key != "__call__"]  # noqa
  return {"/".join(names(path)): leaf.shape for path, leaf in flat}


def n_params(model, video_shape):
  p = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros(video_shape))
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(p))


# ---------------------------------------------------------------------------------------- geometry
def test_single_frame_geometry_at_170():
  s = shapes(VideoNet(487), (2, 1, 170, 170, 3))
  assert s["tower/conv1"] == (2, 1, 57, 57, 96)  # 170 / 3, SAME
  assert s["tower/conv2"] == (2, 1, 28, 28, 256)  # pool1: 57 → 28
  assert s["tower/conv3"] == (2, 1, 14, 14, 384)  # pool2: 28 → 14
  assert s["tower/conv5"] == (2, 1, 14, 14, 256)
  assert s["tower/pool1"] == (2, 1, 28, 28, 96) and s["tower/pool2"] == (2, 1, 14, 14, 256)
  assert s["tower/pool5"] == s["tower"] == (2, 1, 7, 7, 256)  # 12,544 features
  assert s["fc1"] == (2, 4096) and s["head"] == (2, 487)


@pytest.mark.parametrize("fusion", ["single", "slow"])
def test_multires_streams_end_at_7x7x256_at_178(fusion):
  m = VideoNet(487, fusion=fusion, streams="multires")
  s = shapes(m, (1, m.num_frames, 178, 178, 3))
  for stream in ("fovea", "context"):
    assert s[f"{stream}/conv1"][2:4] == (30, 30)  # 89 / 3
    assert s[f"{stream}/pool1"][2:4] == (15, 15)
    assert s[stream] == (1, 1, 7, 7, 256)  # last pool removed: 89 → 30 → 15 → 7
    assert f"{stream}/pool5" not in s


def test_slow_fusion_time_axis_10_4_2_1():
  s = shapes(VideoNet(10, fusion="slow"), (1, 10, 170, 170, 3))
  assert [s[f"tower/conv{i}"][1] for i in range(1, 6)] == [4, 2, 1, 1, 1]
  s = shapes(VideoNet(10, fusion="early"), (1, 10, 170, 170, 3))
  assert s["tower/conv1"][1] == 1
  s = shapes(VideoNet(10, fusion="late"), (1, 16, 170, 170, 3))
  assert s["tower"] == (1, 2, 7, 7, 256)  # two towers (shared weights), merged at FC1


def expected_params(num_classes, conv1_time=1, conv2_time=1, conv3_time=1, towers=1, fc1_in=12544):
  """Exact count from the paper's layer list (not from the model)."""
  c = [(3 * conv1_time, 96, 11), (96 * conv2_time, 256, 5), (256 * conv3_time, 384, 3),
       (384, 384, 3), (384, 256, 3)]
  convs = towers * sum(f * f * cin * cout + cout for cin, cout, f in c)
  return convs + fc1_in * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * num_classes + num_classes


def test_parameter_counts():
  assert expected_params(487) == 73_908_071  # docs/paper.md §1
  assert n_params(VideoNet(487), (1, 1, 170, 170, 3)) == 73_908_071
  cases = {  # (fusion, streams): layer-list count
      ("early", "full"): expected_params(487, conv1_time=10),
      ("late", "full"): expected_params(487, fc1_in=2 * 12544),
      ("slow", "full"): expected_params(487, conv1_time=4, conv2_time=2, conv3_time=2),
      ("single", "multires"): expected_params(487, towers=2, fc1_in=2 * 12544),
      ("single", "fovea"): expected_params(487),
      ("slow", "multires"): expected_params(487, 4, 2, 2, towers=2, fc1_in=2 * 12544),
  }
  for (fusion, streams), want in cases.items():
    m = VideoNet(487, fusion=fusion, streams=streams)
    size = 170 if streams == "full" else 178
    assert n_params(m, (1, m.num_frames, size, size, 3)) == want, (fusion, streams)


def test_width_multiplier_and_small_inputs():
  m = VideoNet(24, fusion="slow", streams="multires", width=0.25)
  s = shapes(m, (2, 10, 56, 56, 3))
  assert s["fovea/conv1"] == (2, 4, 10, 10, 24)  # 28 / 3; 96 × 0.25
  assert s["fc1"] == (2, 1024) and s["head"] == (2, 24)


# -------------------------------------------------------------------------- what each net can see
def small(fusion, streams="full"):
  m = VideoNet(5, fusion=fusion, streams=streams, width=0.125, dropout=0.0)
  v = normal((2, 16, 32, 32, 3), seed=1, scale=50)
  params = init(m, v)
  return jax.jit(lambda x: m.apply(params, x)), v


@pytest.mark.parametrize("fusion,reads", [
    ("single", {0}), ("early", set(range(10))), ("late", {0, 15}), ("slow", set(range(10)))])
def test_frames_read(fusion, reads):
  f, v = small(fusion)
  base = f(v)
  noise = normal(v.shape[2:], seed=2, scale=100)
  for t in range(16):
    changed = not np.allclose(f(v.at[:, t].add(noise)), base, atol=1e-6)
    assert changed == (t in reads), f"{fusion}: frame {t} read={changed}, expected {t in reads}"


def test_late_fusion_takes_its_two_frames_gathered():
  f, v = small("late")
  np.testing.assert_allclose(f(v[:, jnp.asarray([0, 15])]), f(v), atol=1e-5)
  with pytest.raises(ValueError, match="reads frames"):
    f(v[:, :5])


def test_fovea_sees_only_the_centre_context_sees_all():
  for streams, outside_matters in (("fovea", False), ("context", True), ("multires", True)):
    f, v = small("single", streams)
    base = f(v)
    border = v.at[:, :, :7].add(100.0)  # rows 0..6 lie outside the centre 16×16 (rows 8..23)
    centre = v.at[:, :, 8:24, 8:24].add(100.0)
    assert (not np.allclose(f(border), base, atol=1e-6)) == outside_matters, streams
    assert not np.allclose(f(centre), base, atol=1e-6), streams


def test_multires_inputs():
  from stcnn.models import multires
  v = jnp.arange(4 * 4, dtype=jnp.float32).reshape(1, 1, 4, 4, 1)
  np.testing.assert_array_equal(multires.fovea(v)[0, 0, ..., 0], [[5, 6], [9, 10]])
  np.testing.assert_array_equal(multires.context(v)[0, 0, ..., 0], [[2.5, 4.5], [10.5, 12.5]])


# ------------------------------------------------------------------------------------------ layers
def test_lrn_matches_numpy_formula():
  x = np.random.RandomState(0).uniform(-300, 300, (2, 3, 4, 7)).astype(np.float32)
  k, n, alpha, beta = 2.0, 5, 1e-4, 0.5
  want = np.empty_like(x)
  for c in range(7):
    lo, hi = max(0, c - n // 2), min(7, c + n // 2 + 1)
    want[..., c] = x[..., c] / (k + alpha * (x[..., lo:hi] ** 2).sum(-1)) ** beta
  np.testing.assert_allclose(layers.lrn(jnp.asarray(x)), want, rtol=1e-5)
  want75 = x[..., 3] / (k + alpha * (x[..., 1:6] ** 2).sum(-1)) ** 0.75
  np.testing.assert_allclose(layers.lrn(jnp.asarray(x), beta=0.75)[..., 3], want75, rtol=1e-5)


@pytest.mark.parametrize("kt,st", [(4, 2), (2, 2), (10, 1), (1, 1)])
def test_temporal_conv_is_a_3d_conv_valid_in_time(kt, st):
  x = normal((2, 10, 9, 9, 3))
  conv = layers.TemporalConv(4, 3, 2, kt, st)
  p = init(conv, x, seed=1)
  w = p["params"]["conv"]["kernel"].reshape(3, 3, kt, 3, 4).transpose(2, 0, 1, 3, 4)
  want = jax.lax.conv_general_dilated(
      x, w, (st, 2, 2), ((0, 0), (1, 1), (1, 1)), dimension_numbers=("NDHWC", "DHWIO", "NDHWC"))
  np.testing.assert_allclose(conv.apply(p, x), want + p["params"]["conv"]["bias"], atol=1e-4)


# ------------------------------------------------------------------------------------------- heads
def test_tree_head_probabilities_and_loss():
  hier = heads.Hierarchy.from_groups([2, 3])  # leaves 0,1 | 2,3,4
  head = heads.TreeHead(hier)
  x = normal((3, 8))
  p = init(head, x, seed=1)
  leaf_logp = head.apply(p, x)
  np.testing.assert_allclose(jnp.exp(leaf_logp).sum(-1), 1.0, rtol=1e-5)
  # By hand: P(leaf) = P(group) · P(leaf | group).
  z = x @ p["params"]["classifier"]["kernel"] + p["params"]["classifier"]["bias"]
  pg = jax.nn.softmax(z[:, 5:7])
  want = jnp.concatenate([pg[:, :1] * jax.nn.softmax(z[:, 0:2]),
                          pg[:, 1:] * jax.nn.softmax(z[:, 2:5])], -1)
  np.testing.assert_allclose(jnp.exp(leaf_logp), want, rtol=1e-5)
  # A wrong leaf under the right parent costs less than the same confidence elsewhere.
  probs = jnp.log(jnp.asarray([[0.05, 0.8, 0.05, 0.05, 0.05]]))
  t0 = jax.nn.one_hot(jnp.asarray([0]), 5)  # true leaf 0; mass on sibling 1
  t2 = jax.nn.one_hot(jnp.asarray([2]), 5)  # true leaf 2; mass on cousin 1
  l_sib, l_cousin = heads.loss_fn(probs, t0, hier), heads.loss_fn(probs, t2, hier)
  np.testing.assert_allclose(l_sib, -np.log(0.05) - np.log(0.85), rtol=1e-5)
  np.testing.assert_allclose(l_cousin, -np.log(0.05) - np.log(0.15), rtol=1e-5)
  np.testing.assert_allclose(heads.loss_fn(probs, t0), -np.log(0.05), rtol=1e-5)  # flat


def test_hierarchy_validation():
  with pytest.raises(ValueError, match="parent of node 0"):
    heads.Hierarchy((7, -1), 1)
  with pytest.raises(ValueError, match="no children"):
    heads.Hierarchy((-1, -1), 1)


# ----------------------------------------------------------------------------------------- configs
def test_every_config_is_listed():
  names = {os.path.basename(p)[:-3] for p in CONFIGS}
  assert {"single_frame", "early_fusion", "late_fusion", "slow_fusion", "multires", "fovea",
          "context"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: os.path.basename(p))
def test_config_builds_and_trains_one_step(path):
  cfg = load_config(path, "tiny")
  model = models.build(cfg)
  t = models.num_frames(cfg)
  size = cfg.model.input_size
  v = normal((2, t, size, size, 3), scale=50)
  targets = jax.nn.one_hot(jnp.asarray([0, 1]), cfg.num_classes)
  params = init(model, v, seed=1)["params"]

  @jax.jit
  def grads(p):
    def loss(p):
      scores = model.apply({"params": p}, v, train=True, rngs={"dropout": jax.random.key(2)})
      return models.loss_fn(scores, targets).mean()
    return jax.value_and_grad(loss)(p)
  loss, g = grads(params)
  assert np.isfinite(loss)
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(g))
  assert any(np.abs(x).sum() > 0 for x in jax.tree.leaves(g["fc1"]))


def test_cpu_and_paper_configs_have_the_paper_geometry():
  cfg = load_config(os.path.join(ROOT, "configs", "multires.py"))
  assert (cfg.model.input_size, cfg.num_classes, cfg.model.width) == (178, 487, 1.0)
  cfg = load_config(os.path.join(ROOT, "configs", "single_frame.py"))
  assert cfg.model.input_size == 170
  cfg = load_config(os.path.join(ROOT, "configs", "multires.py"), "cpu,fusion=slow")
  assert cfg.model.fusion == "slow" and cfg.model.input_size % 2 == 0 and cfg.model.width == 0.25
  assert models.num_frames(cfg) == 10


def test_bad_config_values_name_the_key():
  cfg = load_config(os.path.join(ROOT, "configs", "single_frame.py"), "tiny")
  cfg.model.fusion = "medium"
  with pytest.raises(ValueError, match="config.model.fusion"):
    models.build(cfg)
  cfg.model.fusion, cfg.model.head = "single", "tree"
  with pytest.raises(ValueError, match="config.model.hierarchy"):
    models.build(cfg)
  cfg.model.hierarchy = "4,4"
  assert models.build(cfg).hierarchy.num_leaves == 8
  with pytest.raises(ValueError, match="config arg 'gpu'"):
    load_config(os.path.join(ROOT, "configs", "single_frame.py"), "gpu")


def test_bfloat16_mixed_precision_trains_with_float32_state():
  from stcnn import train  # pylint: disable=g-import-not-at-top
  cfg = load_config(os.path.join(ROOT, "configs", "slow_fusion.py"), "tiny,streams=multires")
  cfg.model.dtype, cfg.model.dropout, cfg.optimizer.lr = "bfloat16", 0.0, 0.003
  model = models.build(cfg)
  tx, plateau = train.make_optimizer(cfg, None), train.make_plateau(cfg)
  shape = (8, 10, cfg.model.input_size, cfg.model.input_size, 3)
  state = jax.jit(lambda: train.init_state(cfg, model, tx, plateau, (1,) + shape[1:]))()
  step = jax.jit(train.make_train_step(cfg, model, tx, None))
  video = normal(shape, scale=50)
  batch = {"video": video, "target": jax.nn.one_hot(jnp.arange(8) % cfg.num_classes,
                                                    cfg.num_classes)}
  losses = []
  for _ in range(6):  # one fixed batch: the loss must fall
    state, metrics = step(state, batch)
    losses.append(float(metrics["loss"]))
  assert all(np.isfinite(losses)) and losses[-1] < losses[0], losses
  dtypes = {x.dtype for x in jax.tree.leaves((state.params, state.opt_state))}
  assert dtypes == {np.dtype("float32")}
  scores = jax.jit(model.apply)({"params": state.params}, video)
  assert scores.dtype == jnp.float32
  fp32 = models.build(_with_dtype(cfg, "float32"))
  ref = jax.jit(fp32.apply)({"params": state.params}, video)
  assert float(jnp.max(jnp.abs(scores - ref))) < 0.1 * float(jnp.max(jnp.abs(ref))) + 0.1


def _with_dtype(cfg, dtype):
  cfg = cfg.copy_and_resolve_references()
  cfg.model.dtype = dtype
  return cfg
