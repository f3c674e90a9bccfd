"""The network parts every algorithm can choose in its Config: the CNN torso for image-like observations and
LayerNorm in MLP and CNN torsos, against hand-computed references; the MLP torso's parameters unchanged."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purerl import ppo, sac, sac_discrete
from purerl.networks import CNN, MLP, ActorCritic, ConvSpec, torso_args


def _layer_norm(h, scale, bias, eps=1e-6):
    mean = h.mean(-1, keepdims=True)
    var = ((h - mean) ** 2).mean(-1, keepdims=True)
    return (h - mean) / np.sqrt(var + eps) * scale + bias


def _conv_valid(x, kernel, bias):
    """A 'VALID', stride-1 convolution of ``x`` [B, H, W, C] with ``kernel`` [k, k, C, O], by loops."""
    b, h, w, _ = x.shape
    k = kernel.shape[0]
    out = np.zeros((b, h - k + 1, w - k + 1, kernel.shape[-1]))
    for i in range(h - k + 1):
        for j in range(w - k + 1):
            patch = x[:, i:i + k, j:j + k, :]                       # [B, k, k, C]
            out[:, i, j, :] = np.einsum("bxyc,xyco->bo", patch, kernel)
    return out + bias


def test_mlp_with_layer_norm_equals_hand_computation():
    x = jax.random.normal(jax.random.key(0), (5, 7))
    net = MLP((6, 4), "tanh", layer_norm=True)
    params = net.init(jax.random.key(1), x)
    # LayerNorm's scale and bias start at 1 and 0: move them so that a wrong order of operations would show
    params = jax.tree.map(lambda p: p + 0.1 * jax.random.normal(jax.random.key(2), p.shape), params)
    p = jax.tree.map(np.asarray, params["params"])
    h = np.asarray(x, np.float64)
    for i in range(2):
        h = h @ p[f"Dense_{i}"]["kernel"] + p[f"Dense_{i}"]["bias"]
        h = np.tanh(_layer_norm(h, p[f"LayerNorm_{i}"]["scale"], p[f"LayerNorm_{i}"]["bias"]))
    np.testing.assert_allclose(np.asarray(net.apply(params, x)), h, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("impl", ["patches", "xla"])
def test_cnn_reshapes_flat_observations_and_convolves_as_by_hand(impl):
    """Both ways of computing the convolution (gathered patches times the kernel; XLA's convolution) are the
    convolution, with the same parameters."""
    spec = ConvSpec((5, 6, 3), channels=(4, 6), kernel=2, impl=impl)
    flat = jax.random.normal(jax.random.key(0), (2, 3, 5 * 6 * 3))     # [T, N, obs_dim]: any leading batch
    net = CNN(spec, "relu", layer_norm=True)
    params = net.init(jax.random.key(1), flat)
    params = jax.tree.map(lambda p: p + 0.1 * jax.random.normal(jax.random.key(2), p.shape), params)
    p = jax.tree.map(np.asarray, params["params"])
    x = np.asarray(flat, np.float64).reshape(6, 5, 6, 3)                # the obs' own (H, W, C) layout
    for i in range(2):
        x = _conv_valid(x, p[f"Conv_{i}"]["kernel"], p[f"Conv_{i}"]["bias"])
        x = np.maximum(_layer_norm(x, p[f"LayerNorm_{i}"]["scale"], p[f"LayerNorm_{i}"]["bias"]), 0.0)
    out = np.asarray(net.apply(params, flat))
    assert out.shape == (2, 3, 3 * 4 * 6)                               # (5-2)x(6-2) then (4-1)x(4-2), 6 channels
    np.testing.assert_allclose(out, x.reshape(2, 3, -1), rtol=1e-4, atol=1e-5)


def test_default_torso_keeps_the_mlp_parameters():
    """The default torso (MLP, no LayerNorm) has the parameter names and shapes it always had, so runs and
    checkpoints from before the CNN and LayerNorm options load and train the same."""
    cfg = ppo.Config(env="CartPole-v1").validate()
    net = ActorCritic(action_dim=2, discrete=True, **torso_args(cfg, (4,)))
    params = net.init(jax.random.key(0), jnp.zeros((1, 4)))["params"]
    paths = sorted("/".join(str(k.key) for k in path) for path, _ in jax.tree_util.tree_leaves_with_path(params))
    assert paths == sorted(f"{t}/Dense_{i}/{w}" for t in ("actor_torso", "critic_torso") for i in (0, 1)
                           for w in ("bias", "kernel")) + ["policy_head/Dense_0/bias", "policy_head/Dense_0/kernel",
                                                           "value_head/Dense_0/bias", "value_head/Dense_0/kernel"]


@pytest.mark.parametrize("module", [ppo, sac_discrete])
def test_cnn_torso_builds_on_minatar_with_conv_features(module):
    cfg = module.Config(env="Breakout-MinAtar", torso="cnn", cnn_channels=(8,), layer_norm=True, hidden_sizes=(32,),
                        total_timesteps=4096)
    trainer = module.make(cfg)
    state = jax.jit(trainer.init)(jax.random.key(0))
    params = state.params if hasattr(state, "params") else state.agent.params
    kernels = [x for path, x in jax.tree_util.tree_leaves_with_path(params)
               if "Conv_0" in jax.tree_util.keystr(path) and "kernel" in jax.tree_util.keystr(path)]
    c = trainer.env.obs_shape[-1]
    assert trainer.env.obs_shape[:2] == (10, 10) and kernels
    assert all(k.shape[-4:] == (3, 3, c, 8) for k in kernels)


def test_torso_errors_name_the_field():
    with pytest.raises(ValueError, match="`torso` = 'cnn' does not apply to env 'CartPole-v1'.*torso='mlp'"):
        ppo.make(ppo.Config(env="CartPole-v1", torso="cnn"))
    with pytest.raises(ValueError, match="`torso` = 'cnn' does not apply to env 'Pendulum-v1'"):
        sac.make(sac.Config(env="Pendulum-v1", torso="cnn"))
    with pytest.raises(ValueError, match="`torso`.*use one of"):
        ppo.Config(torso="resnet").validate()
    with pytest.raises(ValueError, match="`cnn_kernel` = 5 does not apply.*torso='cnn'"):
        ppo.Config(cnn_kernel=5).validate()
    with pytest.raises(ValueError, match="`cnn_channels`"):
        ppo.Config(torso="cnn", cnn_channels=(0,)).validate()


def test_discrete_q_network_heads():
    from purerl.networks import DiscreteQNetwork

    obs = jax.random.normal(jax.random.key(0), (3, 5))
    plain = DiscreteQNetwork(4, (8,))
    params = plain.init(jax.random.key(1), obs)
    p = params["params"]
    h = np.maximum(np.asarray(obs) @ p["MLP_0"]["Dense_0"]["kernel"] + p["MLP_0"]["Dense_0"]["bias"], 0.0)
    np.testing.assert_allclose(plain.apply(params, obs), h @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"],
                               rtol=1e-5, atol=1e-6)
    dueling = DiscreteQNetwork(4, (8,), dueling=True)
    params = dueling.init(jax.random.key(1), obs)
    params = jax.tree.map(lambda x: x + 0.1 * jax.random.normal(jax.random.key(2), x.shape), params)
    p = params["params"]
    h = np.maximum(np.asarray(obs) @ p["MLP_0"]["Dense_0"]["kernel"] + p["MLP_0"]["Dense_0"]["bias"], 0.0)
    v = h @ p["value"]["kernel"] + p["value"]["bias"]
    a = h @ p["advantage"]["kernel"] + p["advantage"]["bias"]
    q = np.asarray(dueling.apply(params, obs))
    np.testing.assert_allclose(q, v + a - a.mean(-1, keepdims=True), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(q.mean(-1), v[:, 0], rtol=1e-5, atol=1e-6)     # the advantages average to zero
