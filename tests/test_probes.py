"""Probe environments (purerl.envs.probes): their rewards as documented, and every algorithm learning their
values and policies in a few thousand env steps.

Each algorithm's probes run as one program, 4 seeds vmapped, compiled at XLA:CPU -O0 (purerl.jit kind="once";
the runs are tiny, compiling dominates). PPO (on-policy) and SAC (off-policy) run in the default suite, the
other algorithms with ``-m slow``.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import purerl
from purerl import a2c, a3c, algorithms, ddpg, dqn, envs, pqn, ppo, reinforce, sac, sac_discrete, td3, trpo
from purerl.core import onpolicy
from purerl.networks import ActorCritic, DiscreteQNetwork, torso_args

SEEDS = 4
ON = dict(num_envs=8, num_steps=16, total_timesteps=8 * 16 * 40, hidden_sizes=(16, 16), anneal_lr=False,
          learning_rate=3e-3)
OFF = dict(num_envs=4, total_timesteps=1600, hidden_sizes=(16, 16), learning_starts=64, batch_size=32,
           num_log_points=2, eval_episodes=4)
# One gradient step per update (A2C, A3C, REINFORCE) needs more updates than PPO's 16 to move a Gaussian's mean
ON_POLICY = {"ppo": (ppo, {}), "a2c": (a2c, {"total_timesteps": 8 * 16 * 200}),
             "a3c": (a3c, {"total_timesteps": 8 * 16 * 200}), "trpo": (trpo, {}),
             "reinforce": (reinforce, {"baseline": "value", "total_timesteps": 8 * 16 * 400}), "pqn": (pqn, {})}
OFF_POLICY = {"ddpg": (ddpg, {"total_timesteps": 8000}), "td3": (td3, {"total_timesteps": 8000}), "sac": (sac, {}),
              "sac_discrete": (sac_discrete, {}), "dqn": (dqn, {"learning_rate": 1e-3})}
# The best return is 1; an action that ignores the observation earns 0 (discrete) or at most 0.75 (continuous:
# a = 0 against targets +-0.5)
PASS = {"ObservedAction": 0.9, "ObservedAction-Continuous": 0.85}
FAST = {"ppo", "sac"}


def _mark(algo):
    return pytest.param(algo, marks=() if algo in FAST else pytest.mark.slow)


# --- the environments, stepped by hand ------------------------------------------------------------------------

def _step(env_id, action, steps=1, n=64):
    env = envs.make_base(env_id, n)
    state, obs = env.reset(jax.random.key(0))
    out = []
    for t in range(steps):
        a = action(obs)
        state, ts = env.step(jax.random.key(t + 1), state, a)
        out.append((np.asarray(obs), np.asarray(ts.reward), np.asarray(ts.terminated), np.asarray(ts.truncated)))
        obs = ts.obs
    return env, out


def test_probe_ids_spaces_and_rewards_are_as_documented():
    probes = [i for i in envs.list_envs() if i.startswith("probe/")]
    assert len(probes) == 12 and envs.suite_of("probe/BestAction").prefix == "probe/"
    ones = lambda o: jnp.ones(o.shape[0], jnp.int32)                    # noqa: E731
    zeros = lambda o: jnp.zeros(o.shape[0], jnp.int32)                  # noqa: E731
    # value probes: reward 1 at the end of the episode, whatever the action
    env, [(obs, r, term, trunc)] = _step("probe/ConstantValue", zeros)
    assert env.is_discrete and env.action_dim == 2 and (obs == 1).all() and (r == 1).all() and term.all()
    assert not trunc.any()
    _, [(obs, r, term, _)] = _step("probe/ObservedValue", zeros)
    assert set(obs.ravel()) == {-1.0, 1.0} and (r == obs.ravel()).all() and term.all()
    _, steps = _step("probe/DelayedValue", zeros, steps=4)
    assert [s[0].ravel()[0] for s in steps] == [0, 1, 0, 1] and [s[1][0] for s in steps] == [0, 1, 0, 1]
    assert [bool(s[2].all()) for s in steps] == [False, True, False, True]
    # action probes: +1 for the right action, -1 for the other
    assert (_step("probe/BestAction", ones)[1][0][1] == 1).all()
    assert (_step("probe/BestAction", zeros)[1][0][1] == -1).all()
    right = lambda o: (o[:, 0] > 0).astype(jnp.int32)                   # noqa: E731
    assert (_step("probe/ObservedAction", right)[1][0][1] == 1).all()
    assert (_step("probe/ObservedAction", lambda o: 1 - right(o))[1][0][1] == -1).all()
    # continuous: 1 - (a - target)^2, target 0.5 (0.5 x under ObservedAction)
    env, [(obs, r, _, _)] = _step("probe/ObservedAction-Continuous", lambda o: 0.5 * o)
    assert not env.is_discrete and env.action_space.shape == (1,) and np.allclose(r, 1.0)
    _, [(obs, r, _, _)] = _step("probe/BestAction-Continuous", lambda o: jnp.full((o.shape[0], 1), -0.5))
    assert np.allclose(r, 0.0)
    # NoisyReward: 8 actions, rewards N(0, 1) whatever the action, 10 steps, then a truncation (not termination)
    env, steps = _step("probe/NoisyReward", lambda o: jnp.arange(o.shape[0]) % 8, steps=11, n=256)
    assert env.is_discrete and env.action_dim == 8 and all((s[0] == 1).all() for s in steps)
    rewards = np.stack([s[1] for s in steps])
    assert abs(rewards.mean()) < 0.1 and abs(rewards.std() - 1) < 0.05 and np.unique(rewards).size > 2000
    assert [bool(s[3].all()) for s in steps] == [False] * 9 + [True, False] and not any(s[2].any() for s in steps)


def test_unknown_probe_suggests_the_probes():
    with pytest.raises(ValueError, match="unknown env id 'probe/BestActions'.*probe/BestAction"):
        envs.make("probe/BestActions")


# --- learning --------------------------------------------------------------------------------------------------

def _program(runs):
    """One compiled program: ``runs`` maps a name to ``fn(key) -> outputs``; each runs on SEEDS vmapped keys."""
    def everything(keys):
        return {name: jax.vmap(fn)(keys) for name, fn in runs.items()}

    return purerl.jit(everything, kind="once")(jax.random.split(jax.random.key(0), SEEDS))


def _train_and_evaluate(trainer, probe_obs=None, value_of=None):
    def run(key):
        result = trainer.train(key)
        out = {"eval": trainer.evaluate(result.state, jax.random.fold_in(key, 1), 8)["mean"],
               "metrics": jax.tree.map(lambda x: x[-1], result.metrics)}
        if value_of is not None:
            out["values"] = value_of(result.state, probe_obs)
        return out

    return run


def _on_policy_value(module, cfg):
    """``V(obs)`` of a train state: the critic's, or for PQN ``max_a Q(obs, a)``."""
    env = envs.make(cfg.env, cfg.num_envs)
    if module is pqn:
        q_network = pqn.make_network(cfg, env)
        return lambda state, obs: jnp.max(q_network.apply(state.params, obs), axis=-1)
    network = onpolicy.make_network(cfg, env)

    def value_of(state, obs):
        return network.apply(state.params, obs, method=ActorCritic.value)

    return value_of


def test_every_registered_algorithm_runs_the_probes():
    assert sorted(ON_POLICY) == sorted(algorithms.ON_POLICY) and sorted(OFF_POLICY) == sorted(algorithms.OFF_POLICY)


@pytest.mark.parametrize("algo", [_mark(a) for a in ON_POLICY])
def test_on_policy_algorithms_learn_probe_values_and_policies(algo):
    module, extra = ON_POLICY[algo]
    runs, expect = {}, {}
    # values: V(x) = x where the observation carries the reward; V(0) = gamma, V(1) = 1 one step before it
    for probe, gamma, obs, values in (("ObservedValue", 0.99, [[-1.0], [1.0]], [-1.0, 1.0]),
                                      ("DelayedValue", 0.5, [[0.0], [1.0]], [0.5, 1.0])):
        cfg = module.Config(**{**ON, "env": f"probe/{probe}", "gamma": gamma, **extra})
        runs[probe] = _train_and_evaluate(module.make(cfg), jnp.array(obs), _on_policy_value(module, cfg))
        expect[probe] = values
    # policies: the best action for the observation, discrete and (where the algorithm takes them) continuous
    policy_probes = [p for p in ("ObservedAction", "ObservedAction-Continuous")
                     if "continuous" in algorithms.get(algo).actions or not p.endswith("-Continuous")]
    for probe in policy_probes:
        runs[probe] = _train_and_evaluate(module.make(module.Config(**{**ON, "env": f"probe/{probe}", **extra})))
    out = jax.device_get(_program(runs))
    for probe, values in expect.items():
        got = np.asarray(out[probe]["values"]).mean(0)
        np.testing.assert_allclose(got, values, atol=0.1, err_msg=f"{algo} {probe}: V = {got}, expected {values}")
    for probe in policy_probes:
        mean = float(np.mean(out[probe]["eval"]))
        assert mean >= PASS[probe], f"{algo} {probe}: deterministic return {mean:.3f} (best 1)"


@pytest.mark.parametrize("algo", [_mark(a) for a in OFF_POLICY])
def test_off_policy_algorithms_learn_probe_values_and_policies(algo):
    module, extra = OFF_POLICY[algo]
    kind = "" if algorithms.get(algo).actions == ("discrete",) else "-Continuous"   # the probes it can take
    runs = {probe: _train_and_evaluate(module.make(module.Config(**{**OFF, "env": f"probe/{probe}{kind}",
                                                                     **extra})))
            for probe in ("ConstantValue", "ObservedAction")}
    out = jax.device_get(_program(runs))
    # Q of one-step episodes that always pay 1 is 1 (SAC's entropy term vanishes at a terminal step)
    q = float(np.mean(out["ConstantValue"]["metrics"]["q"]))
    assert abs(q - 1.0) < 0.1, f"{algo}: mean Q on ConstantValue {q:.3f}, expected 1"
    mean = float(np.mean(out["ObservedAction"]["eval"]))
    assert mean >= PASS[f"ObservedAction{kind}"], \
        f"{algo} ObservedAction{kind}: deterministic return {mean:.3f} (best 1)"


@pytest.mark.slow
def test_dqn_learns_delayed_values_with_one_and_n_step_targets():
    """DelayedValue (gamma 0.5): Q(0, .) = 0.5 and Q(1, .) = 1 whatever the action. One-step targets reach
    Q(0) only through the target network's Q(1); two-step targets reach it directly, and must stop at the
    episode's end: a sequence that ran on into the next episode would give Q(1) = 1 + 0.25 Q(1) = 1.33."""
    runs = {}
    for n_step in (1, 2):
        cfg = dqn.Config(**{**OFF, "env": "probe/DelayedValue", "gamma": 0.5, "n_step": n_step,
                            "target_update_period": 20, "total_timesteps": 3200, "learning_rate": 1e-3})
        qnet = DiscreteQNetwork(2, **torso_args(cfg, (1,)))
        runs[n_step] = _train_and_evaluate(dqn.make(cfg), jnp.array([[0.0], [1.0]]),
                                           lambda state, obs, qnet=qnet: qnet.apply(state.params, obs))
    out = jax.device_get(_program(runs))
    for n_step in (1, 2):
        q = np.asarray(out[n_step]["values"]).mean(0)            # [2 observations, 2 actions], seeds' mean
        np.testing.assert_allclose(q, [[0.5, 0.5], [1.0, 1.0]], atol=0.1, err_msg=f"n_step={n_step}: Q = {q}")
