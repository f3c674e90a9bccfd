"""Policy and value networks (flax.linen) with orthogonal initialisation; distributions from distrax.

Hidden layers use orthogonal init with gain sqrt(2), policy heads gain 0.01 (a near-uniform / near-zero
mean initial policy) and value heads gain 1, the initialisation the PPO literature found to matter.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": nn.tanh,
    "relu": nn.relu,
    "elu": nn.elu,
    "gelu": nn.gelu,
    "silu": nn.silu,
}


def _dense(features: int, gain: float, name: str | None = None) -> nn.Dense:
    return nn.Dense(features, kernel_init=nn.initializers.orthogonal(gain),
                    bias_init=nn.initializers.zeros, name=name)


@dataclasses.dataclass(frozen=True)
class ConvSpec:
    """A convolutional front for image-like observations: ``obs_shape`` ``(H, W, C)`` (observations arrive flat,
    ``[..., H * W * C]``, and are reshaped to it), then per entry of ``channels`` a ``kernel`` x ``kernel`` convolution
    with stride 1 and no padding, (LayerNorm,) activation; the result is flattened for the dense layers.

    ``impl`` says how a convolution is computed, with the same parameters (``Conv_i``: ``kernel`` ``[k, k, C,
    O]``, ``bias``) and the same result up to float rounding: ``"patches"`` gathers each output position's
    ``k x k x C`` inputs and multiplies them by the kernel as one matrix product (XLA's CPU convolution, above
    all its kernel gradient, ran a MinAtar-sized network's training step about ten times slower: the
    measurements are in :data:`purerl.compiling.PER_BACKEND`); ``"xla"`` is ``flax.linen.Conv``."""

    obs_shape: tuple[int, ...]
    channels: tuple[int, ...] = (16,)
    kernel: int = 3
    impl: str = "xla"


class PatchConv(nn.Module):
    """A stride-1, unpadded convolution as one matrix product over gathered patches (:class:`ConvSpec`'s
    ``"patches"``): the parameters of ``flax.linen.Conv``, computed without XLA's convolution."""

    features: int
    kernel: int
    kernel_init: Callable = nn.initializers.lecun_normal()
    bias_init: Callable = nn.initializers.zeros

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        k, c = self.kernel, x.shape[-1]
        w = self.param("kernel", self.kernel_init, (k, k, c, self.features))
        b = self.param("bias", self.bias_init, (self.features,))
        h, wd = x.shape[-3] - k + 1, x.shape[-2] - k + 1
        # feature (i * k + j) * C + c of a patch is input (y + i, x + j, c): the kernel's row-major order
        patches = jnp.concatenate([x[..., i:i + h, j:j + wd, :] for i in range(k) for j in range(k)], axis=-1)
        return patches @ jnp.reshape(w, (k * k * c, self.features)) + b


class CNN(nn.Module):
    """The convolutional front of :class:`ConvSpec` (flat observations in, flat features out)."""

    spec: ConvSpec
    activation: str = "relu"
    layer_norm: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        batch = x.shape[:-1]
        x = jnp.reshape(x, (-1, *self.spec.obs_shape))
        init = {"kernel_init": nn.initializers.orthogonal(np.sqrt(2.0)), "bias_init": nn.initializers.zeros}
        for i, c in enumerate(self.spec.channels):
            k = self.spec.kernel
            if self.spec.impl == "patches":
                x = PatchConv(c, k, name=f"Conv_{i}", **init)(x)
            else:
                x = nn.Conv(c, (k, k), padding="VALID", name=f"Conv_{i}", **init)(x)
            x = act(nn.LayerNorm()(x) if self.layer_norm else x)
        return jnp.reshape(x, (*batch, -1))


class MLP(nn.Module):
    """The torso every network shares: ``x -> act(W x + b)`` per width in ``hidden_sizes`` (with ``layer_norm``,
    ``act(LayerNorm(W x + b))``), after the convolutional front of ``conv`` when it is set."""

    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"
    layer_norm: bool = False
    conv: ConvSpec | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        if self.conv is not None:
            x = CNN(self.conv, self.activation, self.layer_norm)(x)
        for h in self.hidden_sizes:
            x = _dense(h, np.sqrt(2.0))(x)
            x = act(nn.LayerNorm()(x) if self.layer_norm else x)
        return x


def torso_args(cfg: Any, obs_shape: tuple[int, ...]) -> dict:
    """The torso fields every network takes, from a config (``hidden_sizes``, ``activation``, ``layer_norm``,
    ``torso`` and its ``cnn_*`` fields) and the env's :attr:`~purerl.envs.base.VecEnv.obs_shape`."""
    conv = None
    if getattr(cfg, "torso", "mlp") == "cnn":
        from purerl.compiling import backend_default

        conv = ConvSpec(tuple(obs_shape), tuple(cfg.cnn_channels), int(cfg.cnn_kernel), backend_default("conv"))
    return {"hidden_sizes": tuple(cfg.hidden_sizes), "activation": cfg.activation,
            "layer_norm": bool(getattr(cfg, "layer_norm", False)), "conv": conv}


class CategoricalHead(nn.Module):
    num_actions: int

    @nn.compact
    def __call__(self, x: jax.Array) -> distrax.Distribution:
        return distrax.Categorical(logits=_dense(self.num_actions, 0.01)(x))


class GaussianHead(nn.Module):
    """Diagonal Gaussian; ``log_std`` is a free parameter (state-independent) or a second output."""

    action_dim: int
    state_dependent_std: bool = False
    init_log_std: float = 0.0

    @nn.compact
    def __call__(self, x: jax.Array) -> distrax.Distribution:
        mean = _dense(self.action_dim, 0.01)(x)
        if self.state_dependent_std:
            log_std = _dense(self.action_dim, 0.01)(x) + self.init_log_std
        else:
            log_std = self.param("log_std", nn.initializers.constant(self.init_log_std), (self.action_dim,))
            log_std = jnp.broadcast_to(log_std, mean.shape)
        return distrax.MultivariateNormalDiag(mean, jnp.exp(jnp.clip(log_std, -20.0, 2.0)))


class ValueHead(nn.Module):
    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return jnp.squeeze(_dense(1, 1.0)(x), -1)


def policy_noise(key: jax.Array, batch_shape: tuple[int, ...], discrete: bool, action_dim: int) -> jax.Array:
    """Noise for :func:`sample_with`, drawn ahead for a whole rollout (``batch_shape``, e.g. ``(T, N)``):
    standard Gumbel for categorical policies, standard normal for Gaussian ones."""
    shape = tuple(batch_shape) + (action_dim,)
    return jax.random.gumbel(key, shape) if discrete else jax.random.normal(key, shape)


def sample_with(pi: distrax.Distribution, noise: jax.Array) -> jax.Array:
    """A sample of ``pi`` from noise drawn by :func:`policy_noise`: ``argmax(logits + g)`` (the Gumbel-max
    construction ``jax.random.categorical`` uses) or ``mean + std * eps``."""
    if isinstance(pi, distrax.Categorical):
        return jnp.argmax(pi.logits + noise, axis=-1)
    if isinstance(pi, distrax.MultivariateNormalDiag):
        return pi.loc + pi.scale_diag * noise
    raise TypeError(f"no noise-driven sampler for {type(pi).__name__}")


class ActorCritic(nn.Module):
    """Policy distribution and state value. Separate actor and critic MLPs, or one shared torso."""

    action_dim: int
    discrete: bool
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"
    shared: bool = False
    state_dependent_std: bool = False
    layer_norm: bool = False
    conv: ConvSpec | None = None

    def setup(self):
        torso = (self.hidden_sizes, self.activation, self.layer_norm, self.conv)
        self.actor_torso = MLP(*torso)
        self.critic_torso = self.actor_torso if self.shared else MLP(*torso)
        if self.discrete:
            self.policy_head = CategoricalHead(self.action_dim)
        else:
            self.policy_head = GaussianHead(self.action_dim, self.state_dependent_std)
        self.value_head = ValueHead()

    def __call__(self, obs: jax.Array) -> tuple[distrax.Distribution, jax.Array]:
        h = self.actor_torso(obs)
        v = self.value_head(h if self.shared else self.critic_torso(obs))
        return self.policy_head(h), v

    def policy(self, obs: jax.Array) -> distrax.Distribution:
        return self.policy_head(self.actor_torso(obs))

    def value(self, obs: jax.Array) -> jax.Array:
        return self.value_head(self.critic_torso(obs))

    @staticmethod
    def split_params(params: Any) -> tuple[dict, dict]:
        """``(policy, value)``: the parameters :meth:`policy` reads (its torso and head) and those only
        :meth:`value` reads, of separate networks' ``params`` (``shared=False``); :meth:`join_params` puts them
        back together (TRPO steps the policy's apart from the value's)."""
        inner = params["params"]
        policy = {k: v for k, v in inner.items() if k in _POLICY_MODULES}
        return policy, {k: v for k, v in inner.items() if k not in _POLICY_MODULES}

    @staticmethod
    def join_params(policy: dict, value: dict) -> dict:
        """The network's parameters from the two parts :meth:`split_params` gives."""
        return {"params": {**policy, **value}}


_POLICY_MODULES = ("actor_torso", "policy_head")  # the submodules of ActorCritic.setup that ActorCritic.policy calls


class RecurrentActorCritic(nn.Module):
    """A GRU actor-critic: an MLP embedding (``hidden_sizes``), a GRU cell as wide as the last hidden layer, and
    policy and value heads on its output (one recurrent torso for both). One call is one time step for a batch:
    ``(hidden, pi, v) = apply(params, hidden, obs)``; :meth:`initial_hidden` is the zero memory an episode
    starts from (the rollout and evaluation zero it where an episode ended)."""

    action_dim: int
    discrete: bool
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"
    state_dependent_std: bool = False
    layer_norm: bool = False
    conv: ConvSpec | None = None

    def setup(self):
        self.embed = MLP(self.hidden_sizes, self.activation, self.layer_norm, self.conv)
        self.cell = nn.GRUCell(features=self.hidden_sizes[-1])
        if self.discrete:
            self.policy_head = CategoricalHead(self.action_dim)
        else:
            self.policy_head = GaussianHead(self.action_dim, self.state_dependent_std)
        self.value_head = ValueHead()

    def initial_hidden(self, batch_shape: tuple[int, ...]) -> jax.Array:
        return jnp.zeros(tuple(batch_shape) + (self.hidden_sizes[-1],), jnp.float32)

    def __call__(self, hidden: jax.Array, obs: jax.Array) -> tuple[jax.Array, distrax.Distribution, jax.Array]:
        hidden, y = self.cell(hidden, self.embed(obs))
        return hidden, self.policy_head(y), self.value_head(y)


def unroll_recurrent(network: RecurrentActorCritic, params, hidden0: jax.Array, obs: jax.Array,
                     first: jax.Array) -> tuple[jax.Array, distrax.Distribution, jax.Array]:
    """Run a recurrent actor-critic over a time-major sequence ``obs`` ``[T, N, ...]`` from ``hidden0`` ``[N, H]``,
    zeroing the memory before every step that starts an episode (``first`` ``[T, N]``). Returns the memory
    after every step ``[T, N, H]``, the policies ``[T, N]`` and the values ``[T, N]``."""

    def step(h, inp):
        o, f = inp
        h, pi, v = network.apply(params, jnp.where(f[:, None], 0.0, h), o)
        return h, (h, pi, v)

    _, (hiddens, pis, values) = jax.lax.scan(step, hidden0, (obs, first))
    return hiddens, pis, values


class CategoricalActor(nn.Module):
    """``pi(.|s)``: a torso and a categorical head (discrete SAC's actor)."""

    num_actions: int
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "relu"
    layer_norm: bool = False
    conv: ConvSpec | None = None

    @nn.compact
    def __call__(self, obs: jax.Array) -> distrax.Distribution:
        return CategoricalHead(self.num_actions)(MLP(self.hidden_sizes, self.activation, self.layer_norm,
                                                     self.conv)(obs))


class DiscreteQNetwork(nn.Module):
    """``Q(s, .)``: one value per discrete action, ``[..., num_actions]``, from a torso and a linear head. With
    ``dueling`` (Wang et al., 2016) the torso feeds two linear heads, a state value ``V(s)`` and advantages
    ``A(s, a)``, combined as ``V(s) + A(s, a) - mean_a A(s, a)``."""

    num_actions: int
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "relu"
    layer_norm: bool = False
    conv: ConvSpec | None = None
    dueling: bool = False

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        h = MLP(self.hidden_sizes, self.activation, self.layer_norm, self.conv)(obs)
        if not self.dueling:
            return _dense(self.num_actions, 1.0)(h)
        value = _dense(1, 1.0, name="value")(h)
        advantage = _dense(self.num_actions, 1.0, name="advantage")(h)
        return value + advantage - jnp.mean(advantage, axis=-1, keepdims=True)


# --- off-policy actor-critics (DDPG, TD3, SAC): actions live in [-1, 1], rescaled to the env's bounds ---

class DeterministicActor(nn.Module):
    """``a = tanh(f(s))``: a deterministic policy in ``[-1, 1]^A`` (DDPG, TD3)."""

    action_dim: int
    hidden_sizes: Sequence[int] = (256, 256)
    activation: str = "relu"
    layer_norm: bool = False
    conv: ConvSpec | None = None

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        h = MLP(self.hidden_sizes, self.activation, self.layer_norm, self.conv)(obs)
        return jnp.tanh(_dense(self.action_dim, 0.01)(h))


def tanh_gaussian(mean: jax.Array, log_std: jax.Array) -> distrax.Distribution:
    """A diagonal Gaussian pushed through tanh, with the exact log-det correction
    ``log p(a) = log N(u; mean, std) - sum_i log(1 - tanh(u_i)^2)`` (distrax's numerically stable Tanh)."""
    base = distrax.MultivariateNormalDiag(mean, jnp.exp(log_std))
    return distrax.Transformed(base, distrax.Block(distrax.Tanh(), ndims=1))


class TanhGaussianActor(nn.Module):
    """SAC's stochastic policy: state-dependent mean and log-std (clipped to ``log_std_range``) of a
    Gaussian squashed by tanh. Returns ``(mean, log_std)``; :func:`tanh_gaussian` builds the distribution
    and ``tanh(mean)`` is the deterministic (evaluation) action."""

    action_dim: int
    hidden_sizes: Sequence[int] = (256, 256)
    activation: str = "relu"
    log_std_range: tuple[float, float] = (-5.0, 2.0)
    layer_norm: bool = False
    conv: ConvSpec | None = None

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = MLP(self.hidden_sizes, self.activation, self.layer_norm, self.conv)(obs)
        mean = _dense(self.action_dim, 0.01)(h)
        lo, hi = self.log_std_range
        log_std = jnp.clip(_dense(self.action_dim, 0.01)(h), lo, hi)
        return mean, log_std


class QNetwork(nn.Module):
    """``Q(s, a)`` on the concatenation of observation (its convolutional features with ``conv``) and action."""

    hidden_sizes: Sequence[int] = (256, 256)
    activation: str = "relu"
    layer_norm: bool = False
    conv: ConvSpec | None = None

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        if self.conv is not None:
            obs = CNN(self.conv, self.activation, self.layer_norm)(obs)
        x = jnp.concatenate([obs, action], axis=-1)
        return jnp.squeeze(_dense(1, 1.0)(MLP(self.hidden_sizes, self.activation, self.layer_norm)(x)), -1)


class QEnsemble(nn.Module):
    """``num_critics`` independent Q networks evaluated as one batched network: output ``[num_critics, ...]``.
    One vmapped set of weights means one batched matmul per layer instead of one per critic."""

    num_critics: int = 2
    hidden_sizes: Sequence[int] = (256, 256)
    activation: str = "relu"
    layer_norm: bool = False
    conv: ConvSpec | None = None

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        ensemble = nn.vmap(QNetwork, variable_axes={"params": 0}, split_rngs={"params": True},
                           in_axes=None, out_axes=0, axis_size=self.num_critics)
        return ensemble(self.hidden_sizes, self.activation, self.layer_norm, self.conv)(obs, action)
