"""One agent (PPO, A2C, REINFORCE, TRPO, PQN) with its env batch split over 4 CPU devices equals the
single-device run."""

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
