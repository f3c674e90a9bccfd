"""One agent with its env batch split over 4 CPU devices equals the single-device run: the on-policy
algorithms (PPO, A2C, REINFORCE, TRPO, PQN) and the off-policy ones (SAC with normalised observations, DQN with
its sequence replay)."""

import json
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import os
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    os.environ["JAX_PLATFORMS"] = "cpu"
    import json, jax, numpy as np
    from jax.sharding import NamedSharding
    from purerl import a2c, pqn, ppo, reinforce, trpo
    from purerl.core.sharding import env_mesh
    cfg = ppo.Config(env="CartPole-v1", num_envs=8, num_steps=32, total_timesteps=8 * 32 * 10, num_minibatches=4,
                     hidden_sizes=(16, 16))
    others = [a2c.Config(env="CartPole-v1", num_envs=8, total_timesteps=8 * 5 * 20, hidden_sizes=(16, 16)),
              reinforce.Config(env="CartPole-v1", num_envs=8, total_timesteps=8 * 500 * 2, hidden_sizes=(16, 16)),
              trpo.Config(env="CartPole-v1", num_envs=8, num_steps=32, total_timesteps=8 * 32 * 4,
                          hidden_sizes=(16, 16)),
              pqn.Config(env="CartPole-v1", num_envs=8, num_steps=16, total_timesteps=8 * 16 * 6, hidden_sizes=(16,),
                         num_minibatches=4)]
    diff = pdiff = 0.0
    for algo, c in [(ppo, cfg), (a2c, others[0]), (reinforce, others[1]), (trpo, others[2]), (pqn, others[3])]:
        single = jax.jit(algo.make_train(c))(jax.random.key(0))
        split = jax.jit(algo.make(c, mesh=env_mesh()).train)(jax.random.key(0))
        diff = max([diff] + [float(np.max(np.abs(np.asarray(split.metrics[k]) - np.asarray(single.metrics[k]))))
                             for k in single.metrics])
        pdiff = max([pdiff] + [float(np.max(np.abs(a - b))) for a, b in zip(jax.tree.leaves(split.state.params),
                                                                            jax.tree.leaves(single.state.params))])
        sh = split.state.obs.sharding
    try:
        ppo.make(cfg.replace(num_envs=6), mesh=env_mesh())
        err = ""
    except ValueError as e:
        err = str(e)
    print(json.dumps({"metrics_diff": diff, "params_diff": pdiff, "devices": len(sh.device_set),
                      "named": isinstance(sh, NamedSharding), "spec": str(sh.spec), "err": err}))
""")


def test_env_batch_split_over_devices_equals_one_device():
    p = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, JAX_PLATFORMS="cpu"))
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["named"] and out["devices"] == 4 and "envs" in out["spec"]   # the env batch really is split
    assert out["metrics_diff"] < 1e-4 and out["params_diff"] < 1e-4
    assert "`num_envs`" in out["err"] and "multiple" in out["err"]


OFF_POLICY_SCRIPT = textwrap.dedent("""
    import os
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    os.environ["JAX_PLATFORMS"] = "cpu"
    import json, jax, numpy as np
    from jax.sharding import NamedSharding
    from purerl import dqn, sac
    from purerl.core.sharding import env_mesh
    small = dict(num_envs=8, learning_starts=64, num_log_points=3, eval_episodes=2, hidden_sizes=(16, 16),
                 batch_size=32)
    runs = [(sac, sac.Config(env="Pendulum-v1", total_timesteps=64 + 8 * 24, normalize_obs=True, **small)),
            (dqn, dqn.Config(env="CartPole-v1", total_timesteps=64 + 8 * 24, n_step=3, **small))]
    out = {}
    for algo, c in runs:
        single = jax.jit(algo.make_train(c))(jax.random.key(0))
        split = jax.jit(algo.make(c, mesh=env_mesh()).train)(jax.random.key(0))
        diff = max(float(np.max(np.abs(np.asarray(split.metrics[k]) - np.asarray(single.metrics[k]))))
                   for k in single.metrics)
        pdiff = max(float(np.max(np.abs(a - b))) for a, b in zip(jax.tree.leaves(split.state.params),
                                                                  jax.tree.leaves(single.state.params)))
        split_leaves = [x.sharding for x in jax.tree.leaves((split.state.obs, split.state.env_state))]
        out[algo.__name__] = {"metrics_diff": diff, "params_diff": pdiff,
                              "split": all(isinstance(sh, NamedSharding) and "envs" in str(sh.spec)
                                           and len(sh.device_set) == 4 for sh in split_leaves if sh is not None),
                              "obs_spec": str(split.state.obs.sharding.spec),
                              "log_points": int(np.asarray(single.metrics["env_steps"]).shape[0])}
    try:
        sac.make(runs[0][1].replace(num_envs=6), mesh=env_mesh())
        out["err"] = ""
    except ValueError as e:
        out["err"] = str(e)
    print(json.dumps(out))
""")


def test_off_policy_env_batch_split_over_devices_equals_one_device():
    """SAC (normalize_obs: its statistics are a reduction over the split env axis) and DQN with n-step returns
    (a sequence replay whose rows are the envs) over 3 log points: the split run's metrics and parameters equal
    the single-device run's to float rounding, and its env states and observations are split over the 4
    devices along the env axis."""
    p = subprocess.run([sys.executable, "-c", OFF_POLICY_SCRIPT], capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, JAX_PLATFORMS="cpu"))
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    for name in ("purerl.sac", "purerl.dqn"):
        r = out[name]
        assert r["split"] and "envs" in r["obs_spec"] and r["log_points"] == 3, (name, r)
        assert r["metrics_diff"] < 1e-4 and r["params_diff"] < 1e-4, (name, r)
    assert "`num_envs`" in out["err"] and "multiple" in out["err"]
