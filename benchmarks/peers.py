r"""purerl against rejax and PureJaxRL, timed side by side in one run.

    bash benchmarks/peers_env.sh                                       # once: the peers, pinned (see there)
    python benchmarks/peers.py --small --pjr .peers/purejaxrl          # the CPU rows, 3 rounds
    python benchmarks/peers.py --tiny --pjr .peers/purejaxrl --rows ppo1,sac,dqn,pqn,cli  # plumbing only
    python benchmarks/peers.py --rows ppo1,sac --rounds 5              # chosen rows; PureJaxRL not run

Each system runs in its own worker process, fresh for every round so that compilation is never served from
memory; the persistent compilation cache is off. purerl compiles as its README shows (``purerl.jit``: XLA
options chosen for its programs, see ``purerl/compiling.py``); a second purerl worker compiles the same program
with plain ``jax.jit`` (compile time only), reported on its own line. Within a round every worker first loads
(imports, builds its program) and reports ready; then the systems take turns: A, B, C compile, A, B, C run
their compiled program once to warm up, then --runs more times each, alternated (A B C A B C); the next round
goes in the reverse order. "compile" is ``jax.jit(f).lower(x).compile()``, "run" a later call of the compiled
program. The table reports medians over rounds and runs with the range (min-max) of the single timings in
brackets, and purerl / the fastest peer measured in this run with the range of the ratios of timings taken side
by side (the i-th timing of each system). A results file under docs/results/ needs 3 rounds or more (fewer
are refused there: a spread needs them); ``--rebuild FILE`` rewrites a results file's table from the timings it
holds, timing nothing.
"final return": rejax's last evaluation (128 episodes; its run time includes it, once at the end of every row
but sac); purerl's and PureJaxRL's mean return of the training episodes that ended in the last 5% of updates
(DQN: of iterations; PureJaxRL's DQN logs, per vector step, the mean over envs of each env's latest finished
episode, averaged over the last 5% of steps), except in the sac row, where purerl's is its last evaluation
(10 deterministic episodes; 4 evaluations in the run, as rejax's). A worker that fails is reported as failed (its stderr is in the .log beside
--out); the other systems go on. --tiny (hidden) cuts every budget to a few thousand steps per seed, 1 round
of 1 run: a dry run of the plumbing, not a measurement. The JSON (--out) is rewritten after every row, so a
run cut short keeps the rows it finished.

Rows (identical work for every system: env steps, envs, rollout and minibatch shapes, networks, gradient
steps, exploration and target-network schedules; each library keeps its own defaults for the rest; PPO and
PQN budgets are rounded down to whole updates, so that every library runs the same number of them; the
functions purerl_config, rejax_config and pjr_config build each system's config from the same row_spec):
* ppo1    PPO CartPole-v1, 4 envs x 128 steps, 4 epochs x 4 minibatches, 64x64 tanh, 5e5 steps, 1 seed;
* ppo16   the same, 16 seeds vmapped in one program;
* ppo256  the same, 256 seeds vmapped in one program;
* ppo2048 PPO CartPole-v1, 2048 envs x 32 steps, 4 epochs x 8 minibatches, 64x64 tanh, 2e7 steps, 1 seed;
* sac     SAC Pendulum-v1, 20k steps, 1 env, batch 256, one gradient step per env step after 2048 random
          steps, 64x64 ReLU networks, twin critics, 4 evaluations (rejax and purerl; PureJaxRL has no SAC);
* dqn     DQN CartPole-v1 with PureJaxRL's settings (purejaxrl/dqn.py; purerl's dqn-cartpole preset): 10 envs,
          5e5 steps, replay 1e4 filled with 1e4 steps, batch 128, one gradient step per vector step (49,000),
          Adam 2.5e-4 without clipping, squared TD error, a hard target copy every 50 gradient steps (500 env
          steps), epsilon 1 -> 0.05 over the first half of the steps, 120x84 ReLU, 1 seed;
* pqn     PQN CartPole-v1 with purerl's pqn-cartpole settings at a constant step size (rejax's PQN has no
          decay): 32 envs x 64 steps, 4 epochs x 16 minibatches, 128x128 ReLU with LayerNorm, Adam 5e-4,
          gradient clip 10, lambda 0.65, epsilon 1 -> 0.05 over the first 20% of the steps, 5e5 steps rounded
          down to 244 updates, 1 seed (purerl and rejax: PureJaxRL has no PQN);
* cli     `purerl train ppo --env CartPole-v1` with an empty compilation cache (whole command, wall clock)
          against the API's compile + run of the same config (ppo1 above); then the same command again with
          the cache it filled.
Default rows: ppo1, ppo16, sac, dqn, pqn, cli (the CPU set: with --small, or on any backend but a GPU); all rows when
purerl's jax runs on a GPU; --rows chooses.

Peers. ``bash benchmarks/peers_env.sh`` makes both, pinned: rejax 0.1.3 in the virtual environment
.peers-venv (with gymnax 0.0.9, the step API it was written for, and the same jax as purerl's environment),
and PureJaxRL's files in .peers/purejaxrl, cloned with git at a pinned commit. rejax runs from
--peers-python (default .peers-venv/bin/python) or, with --peers-pythonpath PATHS, from this interpreter with
PYTHONPATH=PATHS. PureJaxRL is a set of scripts, not a package: --pjr DIR names a folder with its ``ppo.py``
saved as ``pjr_ppo.py``, its ``dqn.py`` as ``pjr_dqn.py`` (wandb's import commented out, ``jax.tree_map``,
which jax 0.6 removed, written ``jax.tree.map``) and its ``wrappers.py`` with navix's import commented out and
the two brax imports in ``try/except ImportError``; ``--prepare-pjr DIR SRC`` writes that folder from SRC, a
checkout of luchris429/purejaxrl or its bare git directory (peers_env.sh calls it). Its worker runs in the
peers' environment (with flashbax, which its DQN imports) and builds ``make_train(config)`` from the
upper-case dict of the script's main with each row's numbers. Without --pjr the PureJaxRL column reads "not
run" in the PPO and DQN rows.

rejax 0.1.3's DQN and PQN build their Q-network at 64x64 whatever ``agent_kwargs`` says (a second
``hidden_layer_sizes`` is a TypeError): its worker rebuilds the network with rejax's own class, activation and
head at the row's widths. Its ``max_grad_norm`` clips each gradient element (``optax.clip``), purerl's the
global norm (the pqn row's 10; the dqn row clips nowhere: rejax's default is infinity).

On an NVIDIA GPU of your own, every row (results in docs/results/peers-gpu.json):

    pip install -e ".[cuda12]"        # or ".[cuda13]" for a CUDA 13 driver: purerl on jax's GPU build
    PEERS_JAX=$(python -c "import jax; print(jax.__version__)") PEERS_CUDA=cuda12 bash benchmarks/peers_env.sh
    python benchmarks/peers.py --pjr .peers/purejaxrl

Workers on a GPU share it: each gets XLA_PYTHON_CLIENT_MEM_FRACTION = 0.9 / (workers alive at once) unless the
variable is set. Worker stderr goes to the .log beside --out.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from provenance import command, cores, cpu_name, load_average  # noqa: E402  (this folder's; imports no jax)

RESULTS = ROOT / "docs" / "results"   # peers-cpu.json, peers-gpu.json: the tables the docs show

CPU_ROWS = ("ppo1", "ppo16", "sac", "dqn", "pqn", "cli")
MIN_ROUNDS = 3   # the docs' tables show the spread over rounds: fewer than 3 would not show one
ALL_ROWS = ("ppo1", "ppo16", "ppo256", "ppo2048", "sac", "dqn", "pqn", "cli")
PEERS = ("purejaxrl", "rejax")
PJR_ALGOS = ("ppo", "dqn")   # the algorithms PureJaxRL has of those the rows run
PJR_FILES = {"ppo": "pjr_ppo.py", "dqn": "pjr_dqn.py"}   # its scripts as --prepare-pjr saves them


# ----------------------------------------------------------------------------- rows

def row_spec(row: str, tiny: bool = False) -> dict:
    """The work of one row, the same for every system. ``tiny``: a few thousand env steps per seed (the
    plumbing's dry run; PPO keeps 2 updates at least, 65,536 steps in the 2048-env row)."""
    if row == "ppo2048":
        spec = dict(algo="ppo", seeds=1, num_envs=2048, num_steps=32, num_epochs=4, num_minibatches=8,
                    total_timesteps=20_000_000)
    elif row in ("ppo1", "ppo16", "ppo256"):
        spec = dict(algo="ppo", seeds=int(row[3:]), num_envs=4, num_steps=128, num_epochs=4, num_minibatches=4,
                    total_timesteps=500_000)
    elif row == "sac":
        spec = dict(algo="sac", seeds=1, total_timesteps=20_000, learning_starts=2_048, num_evals=4)
    elif row == "dqn":
        # PureJaxRL's purejaxrl/dqn.py settings (its main's config; purerl's dqn-cartpole preset): one gradient
        # step per vector step of 10 envs, a hard target copy every 50 gradient steps (500 env steps), no
        # gradient clipping (PureJaxRL has none)
        spec = dict(algo="dqn", seeds=1, num_envs=10, total_timesteps=500_000, buffer_size=10_000, batch_size=128,
                    learning_starts=10_000, gradient_steps=1, target_update_period=50, hidden_sizes=(120, 84),
                    learning_rate=2.5e-4, gamma=0.99, epsilon_start=1.0, epsilon_finish=0.05,
                    epsilon_anneal_fraction=0.5)
    elif row == "pqn":
        # purerl's pqn-cartpole preset with a constant step size (rejax's PQN has no decay)
        spec = dict(algo="pqn", seeds=1, num_envs=32, num_steps=64, num_epochs=4, num_minibatches=16,
                    total_timesteps=500_000, hidden_sizes=(128, 128), learning_rate=5e-4, max_grad_norm=10.0,
                    gamma=0.99, q_lambda=0.65, epsilon_start=1.0, epsilon_finish=0.05, epsilon_anneal_fraction=0.2)
    else:
        raise ValueError(f"row must be one of {', '.join(ALL_ROWS)}; got {row!r}")
    spec["nominal_timesteps"] = spec["total_timesteps"]
    if spec["algo"] in ("ppo", "pqn"):
        batch = spec["num_envs"] * spec["num_steps"]
        if tiny:
            spec["total_timesteps"] = max(2_048, 2 * batch)
        # whole updates: purerl and PureJaxRL round down, rejax rounds up; the same count for all three
        spec["num_updates"] = spec["total_timesteps"] // batch
        spec["total_timesteps"] = spec["num_updates"] * batch
    elif spec["algo"] == "dqn" and tiny:
        spec.update(total_timesteps=4_000, learning_starts=1_000)
    elif tiny:
        spec.update(total_timesteps=2_048, learning_starts=512)
    if tiny:
        spec["nominal_timesteps"] = spec["total_timesteps"]
    return spec


def _steps(n: int) -> str:
    """5e5, 2e7, 20k, 4,096: a step count as the labels write it."""
    if n >= 100_000 and float(f"{n:.0e}") == n:
        mant, exp = f"{n:.0e}".split("e")
        return f"{mant}e{int(exp)}"
    return f"{n // 1000}k" if n >= 10_000 and n % 1000 == 0 else f"{n:,}"


def row_label(row: str, tiny: bool = False) -> str:
    s = row_spec(row, tiny)
    steps = _steps(s["nominal_timesteps"])
    if s["algo"] == "sac":
        return f"SAC Pendulum-v1, {steps} steps, 64x64 networks"
    if s["algo"] == "dqn":
        return (f"DQN CartPole-v1, {s['num_envs']} envs, replay {_steps(s['buffer_size'])}, batch {s['batch_size']}, "
                f"{'x'.join(map(str, s['hidden_sizes']))} ReLU, {steps} steps, 1 seed")
    if s["algo"] == "pqn":
        return (f"PQN CartPole-v1, {s['num_envs']} envs x {s['num_steps']} steps, {s['num_epochs']}x"
                f"{s['num_minibatches']} minibatches, {'x'.join(map(str, s['hidden_sizes']))} LayerNorm ReLU, "
                f"{steps} steps, 1 seed")
    seeds = "1 seed" if s["seeds"] == 1 else f"{s['seeds']} seeds vmapped"
    return (f"PPO CartPole-v1, {s['num_envs']} envs x {s['num_steps']} steps, {s['num_epochs']}x"
            f"{s['num_minibatches']} minibatches, {steps} steps, {seeds}")


def pjr_config(spec: dict) -> dict:
    """PureJaxRL's config dict for a PPO row (the fields of ppo.py's ``__main__``) or the DQN row (dqn.py's
    ``main``)."""
    if spec["algo"] == "dqn":
        return {"NUM_ENVS": spec["num_envs"], "BUFFER_SIZE": spec["buffer_size"],
                "BUFFER_BATCH_SIZE": spec["batch_size"], "TOTAL_TIMESTEPS": spec["total_timesteps"],
                "EPSILON_START": spec["epsilon_start"], "EPSILON_FINISH": spec["epsilon_finish"],
                "EPSILON_ANNEAL_TIME": int(spec["epsilon_anneal_fraction"] * spec["total_timesteps"]),
                # env steps: a gradient step every vector step, a target copy every target_update_period of them
                "TARGET_UPDATE_INTERVAL": spec["target_update_period"] * spec["num_envs"] // spec["gradient_steps"],
                "TRAINING_INTERVAL": spec["num_envs"], "LR": spec["learning_rate"],
                "LEARNING_STARTS": spec["learning_starts"], "LR_LINEAR_DECAY": False, "GAMMA": spec["gamma"],
                "TAU": 1.0, "ENV_NAME": "CartPole-v1", "WANDB_MODE": "disabled"}
    if spec["algo"] != "ppo":
        raise ValueError(f"PureJaxRL has no {spec['algo']}: it runs the PPO and DQN rows only")
    return {"LR": 2.5e-4, "NUM_ENVS": spec["num_envs"], "NUM_STEPS": spec["num_steps"],
            "TOTAL_TIMESTEPS": spec["total_timesteps"], "UPDATE_EPOCHS": spec["num_epochs"],
            "NUM_MINIBATCHES": spec["num_minibatches"], "GAMMA": 0.99, "GAE_LAMBDA": 0.95, "CLIP_EPS": 0.2,
            "ENT_COEF": 0.01, "VF_COEF": 0.5, "MAX_GRAD_NORM": 0.5, "ACTIVATION": "tanh", "ENV_NAME": "CartPole-v1",
            "ANNEAL_LR": True, "DEBUG": False}


def purerl_config(spec: dict):
    """purerl's Config for a row."""
    from purerl import dqn, ppo, pqn, sac

    if spec["algo"] == "ppo":
        return ppo.Config(env="CartPole-v1", num_envs=spec["num_envs"], num_steps=spec["num_steps"],
                          num_epochs=spec["num_epochs"], num_minibatches=spec["num_minibatches"],
                          total_timesteps=spec["total_timesteps"])
    if spec["algo"] == "sac":
        return sac.Config(env="Pendulum-v1", total_timesteps=spec["total_timesteps"], hidden_sizes=(64, 64),
                          learning_starts=spec["learning_starts"], num_log_points=spec["num_evals"])
    if spec["algo"] == "dqn":
        return dqn.Config(env="CartPole-v1", total_timesteps=spec["total_timesteps"], num_envs=spec["num_envs"],
                          buffer_size=spec["buffer_size"], batch_size=spec["batch_size"],
                          learning_starts=spec["learning_starts"], gradient_steps=spec["gradient_steps"],
                          hidden_sizes=tuple(spec["hidden_sizes"]), activation="relu", td_loss="squared",
                          double=False, dueling=False, n_step=1, target_update_period=spec["target_update_period"],
                          tau=1.0, learning_rate=spec["learning_rate"], max_grad_norm=None, gamma=spec["gamma"],
                          epsilon_start=spec["epsilon_start"], epsilon_finish=spec["epsilon_finish"],
                          epsilon_anneal_fraction=spec["epsilon_anneal_fraction"],
                          # no evaluation inside the run, as PureJaxRL's; 20 log points: the last one's training
                          # episodes are those of the last 5% of the learning iterations
                          num_log_points=20, eval_episodes=0)
    return pqn.Config(env="CartPole-v1", total_timesteps=spec["total_timesteps"], num_envs=spec["num_envs"],
                      num_steps=spec["num_steps"], num_epochs=spec["num_epochs"],
                      num_minibatches=spec["num_minibatches"], hidden_sizes=tuple(spec["hidden_sizes"]),
                      activation="relu", layer_norm=True, td_loss="squared", optimizer="adam", anneal_lr=False,
                      learning_rate=spec["learning_rate"], max_grad_norm=spec["max_grad_norm"], gamma=spec["gamma"],
                      q_lambda=spec["q_lambda"], epsilon_start=spec["epsilon_start"],
                      epsilon_finish=spec["epsilon_finish"], epsilon_anneal_fraction=spec["epsilon_anneal_fraction"])


def rejax_config(spec: dict) -> tuple[str, dict, tuple | None]:
    """(algorithm, ``create`` keyword arguments, Q-network widths or None) of rejax for a row. rejax 0.1.3's DQN
    and PQN build their Q-network with ``hidden_layer_sizes=(64, 64)`` and refuse another through
    ``agent_kwargs``: the worker rebuilds the network with rejax's own classes at the widths named here."""
    total = spec["total_timesteps"]
    once = {"total_timesteps": total, "eval_freq": total, "skip_initial_evaluation": True}  # one final evaluation
    if spec["algo"] == "ppo":
        return "ppo", dict(env="CartPole-v1", num_envs=spec["num_envs"], num_steps=spec["num_steps"],
                           num_epochs=spec["num_epochs"], num_minibatches=spec["num_minibatches"],
                           learning_rate=2.5e-4, **once, ent_coef=0.01, max_grad_norm=0.5, gamma=0.99,
                           gae_lambda=0.95, clip_eps=0.2, vf_coef=0.5,
                           agent_kwargs={"activation": "tanh", "hidden_layer_sizes": (64, 64)}), None
    if spec["algo"] == "sac":
        return "sac", dict(env="Pendulum-v1", total_timesteps=total, eval_freq=total // spec["num_evals"],
                           skip_initial_evaluation=True, fill_buffer=spec["learning_starts"], batch_size=256,
                           num_envs=1), None
    eps = dict(eps_start=spec["epsilon_start"], eps_end=spec["epsilon_finish"],
               exploration_fraction=spec["epsilon_anneal_fraction"], gamma=spec["gamma"],
               learning_rate=spec["learning_rate"])
    if spec["algo"] == "dqn":
        # target_update_freq counts env steps (a hard copy: polyak 0); num_epochs is gradient steps per vector
        # step; max_grad_norm stays at its default, inf (PureJaxRL does not clip)
        return "dqn", dict(env="CartPole-v1", num_envs=spec["num_envs"], **once, **eps,
                           buffer_size=spec["buffer_size"], fill_buffer=spec["learning_starts"],
                           batch_size=spec["batch_size"], num_epochs=spec["gradient_steps"],
                           target_update_freq=spec["target_update_period"] * spec["num_envs"]
                           // spec["gradient_steps"], polyak=0.0, ddqn=False,
                           agent_kwargs={"activation": "relu"}), tuple(spec["hidden_sizes"])
    # PQN: rejax applies LayerNorm before every hidden ReLU itself; its max_grad_norm clips each gradient element
    # (optax.clip), purerl's the global norm
    return "pqn", dict(env="CartPole-v1", num_envs=spec["num_envs"], num_steps=spec["num_steps"],
                       num_epochs=spec["num_epochs"], num_minibatches=spec["num_minibatches"], **once, **eps,
                       td_lambda=spec["q_lambda"], max_grad_norm=spec["max_grad_norm"]), tuple(spec["hidden_sizes"])


def default_rows(rows: str | None, backend: str) -> list[str]:
    """--rows if given, all rows on a GPU, else the CPU set."""
    if rows:
        out = [r.strip() for r in rows.split(",") if r.strip()]
        for r in out:
            if r not in ALL_ROWS:
                raise SystemExit(f"peers.py: --rows: unknown row {r!r}; rows: {', '.join(ALL_ROWS)}")
        return out
    return list(ALL_ROWS if backend == "gpu" else CPU_ROWS)


# ----------------------------------------------------------------------------- workers (one per system)

def _nan_none(x: float) -> float | None:
    return None if x is None or math.isnan(x) else float(x)


def _purerl_program(spec: dict):
    import jax
    import numpy as np

    from purerl import dqn, ppo, pqn, sac

    seeds = spec["seeds"]
    cfg = purerl_config(spec)
    train = {"ppo": ppo, "sac": sac, "dqn": dqn, "pqn": pqn}[spec["algo"]].make_train(cfg)
    if spec["algo"] in ("ppo", "pqn", "dqn"):   # training episodes that ended in the last 5% of the run
        def final(res):
            ret = np.asarray(res.metrics["episode_return"]).reshape(seeds, -1)
            return _nan_none(np.nanmean(ret[:, -max(1, ret.shape[1] // 20):]))
    else:
        def final(res):
            return _nan_none(np.mean(np.asarray(res.metrics["eval_return"])[..., -1]))
    keys = jax.random.split(jax.random.key(0), seeds)
    return (jax.vmap(train) if seeds > 1 else (lambda k: train(k[0]))), keys, final


def _rejax_program(spec: dict):
    import jax
    import numpy as np
    import rejax

    seeds = spec["seeds"]
    name, kwargs, widths = rejax_config(spec)
    algo = rejax.get_algo(name).create(**kwargs)
    if widths is not None:   # the same network class, activation and head, at the row's widths
        agent = algo.agent
        algo = algo.replace(agent=type(agent)(hidden_layer_sizes=widths, activation=agent.activation,
                                              action_dim=agent.action_dim))

    def final(res):
        returns = np.asarray(res[1][1])  # [(seeds,) evaluations, episodes]
        return _nan_none(np.mean(returns.reshape(seeds, returns.shape[-2], -1)[:, -1]))

    keys = jax.random.split(jax.random.key(0), seeds)
    return (jax.vmap(algo.train) if seeds > 1 else (lambda k: algo.train(k[0]))), keys, final


def _pjr_program(spec: dict, pjr_dir: str):
    import jax
    import numpy as np

    sys.path.insert(0, pjr_dir)
    seeds = spec["seeds"]
    if spec["algo"] == "dqn":
        import pjr_dqn  # PureJaxRL's dqn.py, as --prepare-pjr saves it

        train = pjr_dqn.make_train(pjr_config(spec))

        def final(res):
            # its logged "returns": per vector step, the mean over envs of each env's latest finished episode
            ret = np.asarray(res["metrics"]["returns"]).reshape(seeds, -1)
            return _nan_none(ret[:, -max(1, ret.shape[1] // 20):].mean())
    else:
        import pjr_ppo  # PureJaxRL's ppo.py, as --prepare-pjr saves it

        updates = spec["num_updates"]
        train = pjr_ppo.make_train(pjr_config(spec))

        def final(res):
            info = res["metrics"]  # [(seeds,) updates, steps, envs]
            ret = np.asarray(info["returned_episode_returns"]).reshape(seeds, updates, -1)
            done = np.asarray(info["returned_episode"]).reshape(seeds, updates, -1)
            last = slice(-max(1, updates // 20), None)
            ended = ret[:, last][done[:, last]]
            return _nan_none(ended.mean()) if ended.size else None

    keys = jax.random.split(jax.random.PRNGKey(0), seeds)  # PureJaxRL's own key kind
    return (jax.vmap(train) if seeds > 1 else (lambda k: train(k[0]))), keys, final


def _library_version(system: str, pjr_dir: str | None) -> str:
    if system == "purejaxrl":
        src = Path(pjr_dir or ".") / "SOURCE.txt"
        commit = next((ln.split()[-1] for ln in src.read_text().splitlines() if ln.startswith("commit")), None) \
            if src.exists() else None
        return f"commit {commit[:7]}" if commit else "unknown commit"
    from importlib import metadata

    try:
        return metadata.version("purerl" if system.startswith("purerl") else system)
    except metadata.PackageNotFoundError:
        if system.startswith("purerl"):
            import purerl

            return getattr(purerl, "__version__", "?")
        return "?"


def worker(system: str, row: str, tiny: bool = False, pjr_dir: str | None = None) -> None:
    """Load, then answer ``info`` / ``compile`` / ``run`` / ``quit`` lines on stdin with one JSON line each on
    stdout. purerl compiles with ``purerl.jit``'s options (its documented way), "purerl-jax.jit" with plain
    ``jax.jit``; the peers with plain ``jax.jit``."""
    import jax

    out = sys.stdout
    sys.stdout = sys.stderr  # libraries' prints must not break the protocol
    fn = None
    if row != "info":
        spec = row_spec(row, tiny)
        if system == "rejax":
            fn, keys, final = _rejax_program(spec)
        elif system == "purejaxrl":
            fn, keys, final = _pjr_program(spec, pjr_dir)
        else:
            fn, keys, final = _purerl_program(spec)
    options = {}
    if system == "purerl" and fn is not None:
        from purerl.compiling import compile_options

        options = compile_options()
    compiled = None
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "info":
            dev = jax.devices()[0]
            reply = {"backend": jax.default_backend(), "device": dev.device_kind, "jax": jax.__version__,
                     "python": platform.python_version(), "cpu": cpu_name(), "cores": cores(),
                     "version": _library_version(system, pjr_dir)}
        elif cmd == "compile":
            t0 = time.perf_counter()
            compiled = jax.jit(fn).lower(keys).compile(compiler_options=options)
            reply = {"compile_s": time.perf_counter() - t0}
        elif cmd == "run":
            t0 = time.perf_counter()
            res = jax.block_until_ready(compiled(keys))
            reply = {"run_s": time.perf_counter() - t0, "return": final(res)}
        else:
            break
        out.write(json.dumps(reply) + "\n")
        out.flush()


class WorkerDied(RuntimeError):
    pass


def _abs_paths(paths: str) -> str:
    """Every entry of a PYTHONPATH-style list made absolute (workers run in a temporary directory)."""
    return os.pathsep.join(os.path.abspath(p) for p in paths.split(os.pathsep) if p)


def launches(args: argparse.Namespace) -> dict[str, tuple[str, str | None]]:
    """(interpreter, PYTHONPATH or None to inherit) for the purerl and the peers' workers."""
    purerl_path = (_abs_paths(args.purerl_pythonpath) if args.purerl_pythonpath
                   else os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
    if args.peers_pythonpath:
        peers = (args.peers_python or sys.executable, _abs_paths(args.peers_pythonpath))
    else:
        peers = (args.peers_python or str(ROOT / ".peers-venv" / "bin" / "python"), None)
    return {"purerl": (sys.executable, purerl_path), "peers": peers}


class Worker:
    def __init__(self, launch: tuple[str, str | None], system: str, row: str, extra: list[str] = (),
                 log: Path | None = None, mem_fraction: float | None = None):
        python, pythonpath = launch
        env = dict(os.environ, JAX_ENABLE_COMPILATION_CACHE="false", TF_CPP_MIN_LOG_LEVEL="3",
                   PYTHONWARNINGS="ignore")
        if pythonpath is not None:
            env["PYTHONPATH"] = pythonpath
        if mem_fraction is not None and "XLA_PYTHON_CLIENT_MEM_FRACTION" not in os.environ:
            env["XLA_PYTHON_CLIENT_MEM_FRACTION"] = f"{mem_fraction:.2f}"  # several workers share one GPU
        self.system, self.row, self.log = system, row, log
        self.err = tempfile.TemporaryFile(mode="w+")
        self.p = subprocess.Popen([python, str(Path(__file__).resolve()), "--worker", system, row, *extra],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err,
                                  text=True, env=env, cwd=tempfile.gettempdir())

    def _stderr(self) -> str:
        self.err.flush()
        self.err.seek(0)
        return self.err.read()

    def ask(self, cmd: str) -> dict:
        try:
            self.p.stdin.write(cmd + "\n")
            self.p.stdin.flush()
            line = self.p.stdout.readline()
        except (BrokenPipeError, OSError):
            line = ""
        if not line:
            self.p.wait(timeout=60)
            tail = " | ".join(self._stderr().strip().splitlines()[-6:])
            raise WorkerDied(f"{self.system} worker died answering {cmd!r} (exit {self.p.returncode}): {tail}")
        return json.loads(line)

    def close(self) -> None:
        try:
            self.p.stdin.write("quit\n")
            self.p.stdin.flush()
        except (BrokenPipeError, OSError):
            pass
        try:
            self.p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        if self.log is not None:
            text = self._stderr()
            if text.strip():
                with open(self.log, "a") as f:
                    f.write(f"===== {self.system} {self.row} (exit {self.p.returncode})\n{text}\n")
        self.err.close()


def probe(who: dict[str, tuple[str, str | None]], extra: list[str] = (), log: Path | None = None) -> dict:
    """Backend, device and versions as a worker of each system (``{system: launch}``) sees them; the workers
    load side by side."""
    workers = {s: Worker(launch, s, "info", extra, log, 0.9 / len(who)) for s, launch in who.items()}
    try:
        return {s: w.ask("info") for s, w in workers.items()}
    finally:
        for w in workers.values():
            w.close()


# ----------------------------------------------------------------------------- the side-by-side runs

def compare(row: str, systems: dict[str, tuple[str, str | None]], rounds: int, runs: int,
            compile_only: tuple = (), extra: list[str] = (), log: Path | None = None) -> dict:
    """Medians of compile and run time per system, alternating the systems within every round (the systems
    in ``compile_only`` are only compiled). A system whose worker dies is reported with its error."""
    got = {s: {"compile_s": [], "run_s": [], "return": []} for s in systems}
    errors: dict[str, str] = {}
    fraction = 0.9 / len(systems)
    for r in range(rounds):
        live = [s for s in systems if s not in errors]
        order = live if r % 2 == 0 else live[::-1]
        workers = {s: Worker(systems[s], s, row, extra, log, fraction) for s in order}

        def ask(s: str, cmd: str) -> dict | None:
            if s in errors:
                return None
            try:
                return workers[s].ask(cmd)
            except WorkerDied as e:
                errors[s] = str(e)
                print(f"  {row}: {e}", flush=True)
                return None

        try:
            for s in order:
                ask(s, "info")  # every worker has imported and built its program before anything is timed
            for s in order:
                if (rep := ask(s, "compile")) is not None:
                    got[s]["compile_s"].append(rep["compile_s"])
            timed = [s for s in order if s not in compile_only]
            for s in timed:
                ask(s, "run")  # the first call of a compiled program is not timed
            for _ in range(runs):
                for s in timed:
                    if (rep := ask(s, "run")) is not None:
                        got[s]["run_s"].append(rep["run_s"])
                        got[s]["return"].append(rep["return"])
        finally:
            for w in workers.values():
                w.close()
        print(f"  {row} round {r + 1}/{rounds}: " + ", ".join(
            f"{s} " + ("failed" if s in errors else f"compile {got[s]['compile_s'][-1]:.2f}s" + (
                f" run {got[s]['run_s'][-1]:.2f}s" if got[s]["run_s"] else "")) for s in order), flush=True)
    med = lambda v: statistics.median(v) if v else None  # noqa: E731
    out = {}
    for s, v in got.items():
        rets = [x for x in v["return"] if x is not None]
        out[s] = {"compile_s": med(v["compile_s"]), "run_s": med(v["run_s"]), "return": med(rets),
                  "all_run_s": v["run_s"], "all_compile_s": v["compile_s"]}
        if s in errors:
            out[s]["error"] = errors[s]
    return out


def cli_row(rounds: int, launch: tuple[str, str | None], tiny: bool = False) -> dict:
    """Wall clock of the command line's default first run (empty cache) and of a repeated run."""
    python, pythonpath = launch
    budget = ["--total-timesteps", str(row_spec("ppo1", tiny)["total_timesteps"])] if tiny else []
    first, repeat = [], []
    for r in range(rounds):
        with tempfile.TemporaryDirectory() as d:
            # the `purerl` command of this checkout (its entry point is purerl.cli:main)
            env = dict(os.environ, PURERL_CACHE_DIR=str(Path(d) / "cache"))
            if pythonpath is not None:
                env["PYTHONPATH"] = pythonpath
            for runs in (first, repeat):
                out = Path(d) / f"run{len(runs)}-{len(first)}"
                t0 = time.perf_counter()
                subprocess.run([python, "-m", "purerl.cli", "train", "ppo", "--env", "CartPole-v1", *budget,
                                "--out", str(out), "--no-progress"],
                               check=True, env=env, cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                runs.append(time.perf_counter() - t0)
        print(f"  cli round {r + 1}/{rounds}: first {first[-1]:.2f}s, repeated {repeat[-1]:.2f}s", flush=True)
    return {"first_s": statistics.median(first), "repeat_s": statistics.median(repeat), "all_first_s": first,
            "all_repeat_s": repeat}


# ----------------------------------------------------------------------------- the table

def _cell(v: float | None, unit: str = " s", fmt: str = ".2f") -> str:
    return "-" if v is None else f"{v:{fmt}}{unit}"


def _range(values: list[float] | None) -> tuple[float, float] | None:
    """(min, max) of two or more timings, else None."""
    return (min(values), max(values)) if values and len(values) > 1 else None


def _timed(v: float | None, spread: tuple[float, float] | None, unit: str = " s") -> str:
    """A median with the range of the timings behind it: ``3.27 s (3.10-3.40)``."""
    if v is None:
        return "-"
    return f"{v:.2f}{unit}" + (f" ({spread[0]:.2f}-{spread[1]:.2f})" if spread else "")


def ratio_range(mine: list[float] | None, theirs: list[float] | None) -> tuple[float, float] | None:
    """The range of purerl / peer over timings taken side by side (the i-th of each system came from the same
    round, in alternation), or None when there are fewer than two pairs or the lists do not pair up."""
    if not mine or not theirs or len(mine) != len(theirs) or len(mine) < 2:
        return None
    ratios = [m / t for m, t in zip(mine, theirs, strict=True)]
    return min(ratios), max(ratios)


def build_table(res: dict, meta: dict) -> tuple[list[str], list[dict]]:
    """Markdown lines and one JSON record per row from ``compare``'s results. ``meta``: ``backend``, ``tiny``,
    ``pjr_live`` (PureJaxRL measured in this run; without it its PPO cells read "not run"), ``header``,
    ``rejax`` (its column title). Every time is the median over rounds and runs with the range of the
    single timings in brackets (min-max), every ratio purerl's median over the fastest peer's with the range
    of the ratios of timings taken side by side."""
    pjr_live = bool(meta.get("pjr_live"))
    lines = [meta.get("header", ""), "",
             f"| workload | PureJaxRL | {meta.get('rejax', 'rejax 0.1.3')} | purerl | purerl / fastest peer |",
             "|---|---|---|---|---|"]
    table = []
    for row in ALL_ROWS:
        if row == "cli" or row not in res or "purerl" not in res[row]:
            continue
        r = res[row]
        label = row_label(row, meta.get("tiny", False))
        short = f"`{row}`"
        rec = {"row": row, "label": label, "spec": row_spec(row, meta.get("tiny", False)), "systems": {}}
        for s in ("purerl", *PEERS):
            if s in r:
                rec["systems"][s] = {k: r[s].get(k) for k in ("compile_s", "run_s", "return")}
                for k in ("compile_s", "run_s"):
                    rec["systems"][s][f"{k}_range"] = _range(r[s].get(f"all_{k}"))
                if "error" in r[s]:
                    rec["systems"][s]["error"] = r[s]["error"]
        # PureJaxRL has PPO and DQN only; without --pjr their cells say that it was not run
        not_run = {"purejaxrl"} if not pjr_live and rec["spec"]["algo"] in PJR_ALGOS else set()
        jit = r.get("purerl-jax.jit", {})
        plain = jit.get("compile_s")
        rec["purerl_compile_s_jax_jit"] = plain
        rec["purerl_compile_s_jax_jit_range"] = _range(jit.get("all_compile_s"))

        def cells(what: str) -> list[str]:
            out = []
            for s in PEERS:
                v = rec["systems"].get(s)
                out.append("not run" if s in not_run and v is None
                           else "failed" if v and "error" in v and v.get(what) is None
                           else _timed(v.get(what), v.get(f"{what}_range")) if v else "-")
            return out

        for key, what, title, mine, mine_all in (
                ("run", "run_s", "run", rec["systems"]["purerl"]["run_s"], r["purerl"].get("all_run_s")),
                ("compile", "compile_s", "compile (`purerl.jit`)", rec["systems"]["purerl"]["compile_s"],
                 r["purerl"].get("all_compile_s")),
                ("compile_jax_jit", "compile_s", "compile with plain `jax.jit`", plain, jit.get("all_compile_s"))):
            measured = {s: v[what] for s, v in rec["systems"].items() if s in PEERS and v.get(what) is not None}
            fastest = min(measured, key=measured.get) if measured else None
            ratio = mine / measured[fastest] if fastest and mine is not None else None
            spread = ratio_range(mine_all, r[fastest].get(f"all_{what}")) if ratio is not None else None
            rec[f"ratio_{key}"], rec[f"fastest_peer_{key}"], rec[f"ratio_{key}_range"] = ratio, fastest, spread
            pj, rj = cells(what) if key != "compile_jax_jit" else ("", "")
            name = f"{label} ({short})" if key == "run" else short
            mine_range = (rec["systems"]["purerl"][f"{what}_range"] if key != "compile_jax_jit"
                          else rec["purerl_compile_s_jax_jit_range"])
            lines.append(f"| {name}: {title} | {pj} | {rj} | {_timed(mine, mine_range)} | "
                         + ("-" if ratio is None else f"{ratio:.2f} ({fastest}"
                            + (f"; {spread[0]:.2f}-{spread[1]:.2f}" if spread else "") + ")") + " |")
        rets = ["not run" if s in not_run else _cell(rec["systems"].get(s, {}).get("return"), "", ".0f")
                for s in (*PEERS, "purerl")]
        lines.append(f"| {short}: final return | {rets[0]} | {rets[1]} | {rets[2]} | |")
        table.append(rec)
    if "cli" in res and "ppo1" in res:
        api = res["ppo1"]["purerl"]["compile_s"] + res["ppo1"]["purerl"]["run_s"]
        c = res["cli"]
        first, repeat = _range(c.get("all_first_s")), _range(c.get("all_repeat_s"))
        lines.append(f"| `purerl train ppo --env CartPole-v1`, empty cache: whole command | | | "
                     f"{_timed(c['first_s'], first)} | {c['first_s'] / api:.2f} x the API's compile + run, "
                     f"{api:.2f} s |")
        lines.append(f"| the same command again (cache filled) | | | {_timed(c['repeat_s'], repeat)} | "
                     f"{c['repeat_s'] / api:.2f} x the API |")
        table.append({"row": "cli", "api_s": api, **c, "first_s_range": first, "repeat_s_range": repeat})
    return lines, table


NAMES = {"purejaxrl": "PureJaxRL", "rejax": "rejax"}
README_ROWS = {"ppo1": "PPO CartPole-v1, 1 seed", "ppo16": "PPO CartPole-v1, 16 seeds vmapped",
               "sac": "SAC Pendulum-v1, 1 seed", "dqn": "DQN CartPole-v1, 1 seed", "pqn": "PQN CartPole-v1, 1 seed"}


def fill(text: str, width: int = 110) -> str:
    """A paragraph wrapped as the README's text is, never inside a `code span`."""
    protected = re.sub(r"`[^`]*`", lambda m: m.group(0).replace(" ", "\0"), text)
    return textwrap.fill(protected, width, break_long_words=False, break_on_hyphens=False).replace("\0", " ")


def readme_table(results: dict) -> str:
    """The README's speed table from a CPU results file (the JSON this script writes): tests/
    test_results_files.py checks that the README holds exactly this, so a rerun that changes the numbers says
    what to paste (``main`` prints it)."""
    recs = {r["row"]: r for r in results["table"]}
    me = results["systems"]["purerl"]

    def x(row: str, key: str) -> str:
        rec = recs[row]
        spread = rec.get(f"ratio_{key}_range")
        return (f"{NAMES[rec[f'fastest_peer_{key}']]}: {rec[f'ratio_{key}']:.2f}x"
                + (f" ({spread[0]:.2f}-{spread[1]:.2f})" if spread else ""))

    rounds = results["rounds"]
    intro = (f"Speed against the fastest peer measured (purerl's time over the peer's: below 1 is faster), by "
             f"`python benchmarks/peers.py --small` on {results['date']} on a {me['cores']}-core {me['cpu']} CPU "
             f"(jax {me['jax']}; {rounds} round{'s' if rounds != 1 else ''}"
             + (", the range over them in brackets" if rounds > 1 else "")
             + "; `docs/results/peers-cpu.json`, the figure above):")
    lines = [fill(intro), "",
             "| workload | run | compile |", "|---|---|---|"]
    lines += [f"| {title} | {x(row, 'run')} | {x(row, 'compile')} |" for row, title in README_ROWS.items()
              if row in recs]
    return "\n".join(lines) + "\n"


def header(meta: dict) -> str:
    me = meta["systems"].get("purerl", {})
    device = (f"{me.get('cpu')}, {me.get('cores')} cores" if me.get("backend") == "cpu"
              else f"{me.get('device')} ({me.get('backend')}; host {me.get('cpu')}, {me.get('cores')} cores)")
    peers = "; ".join(f"{s} {i.get('version')} on jax {i.get('jax')}, Python {i.get('python')}"
                      for s, i in meta["systems"].items() if s in PEERS)
    rounds, runs = meta["rounds"], meta["runs"]
    load = meta.get("load_average")
    loaded = (f"; load average {load:.1f} at the start (shared: longer times than on an idle machine)"
              if load is not None and me.get("cores") and load > me["cores"] else
              f"; load average {load:.1f} at the start" if load is not None else "")
    return (f"{meta['date']}: {device}; purerl on jax {me.get('jax')}, Python {me.get('python')}"
            + (f"; {peers}" if peers else "")
            + f"; {rounds} round{'s' if rounds != 1 else ''} x {runs} timed run{'s' if runs != 1 else ''}: "
            + ("medians, the range of the single timings in brackets" if rounds * runs > 1
               else "single timings, no spread")
            + (f" (fewer rounds than the {MIN_ROUNDS} that the documentation's tables need)"
               if rounds < MIN_ROUNDS and not meta.get("tiny") else "") + loaded
            + (" (TINY budgets: plumbing only)" if meta.get("tiny") else ""))


# ----------------------------------------------------------------------------- PureJaxRL's files

WRAPPER_EDITS = {
    "import navix as nx": "# import navix as nx  # peers.py: navix is not needed here",
    "from brax import envs": "try:  # peers.py: brax is needed for Brax envs only\n    from brax import envs",
    "from brax.envs.wrappers.training import EpisodeWrapper, AutoResetWrapper":
        "    from brax.envs.wrappers.training import EpisodeWrapper, AutoResetWrapper\nexcept ImportError:\n    pass",
}


DQN_EDITS = {"import wandb": "# import wandb  # peers.py: wandb is not needed here (it logs only with WANDB_MODE online)"}
PJR_SOURCES = ("ppo.py", "dqn.py", "wrappers.py")   # PureJaxRL's files that peers.py reads, under purejaxrl/


def _edit_lines(text: str, edits: dict[str, str], name: str) -> str:
    """``text`` with each top-level line ``old`` of ``edits`` (exactly one each) replaced by ``new``."""
    lines = text.splitlines()
    for old, new in edits.items():
        at = [i for i, ln in enumerate(lines) if ln.strip() == old and not ln.startswith((" ", "\t"))]
        if len(at) != 1:
            raise SystemExit(f"peers.py --prepare-pjr: expected one top-level line {old!r} in {name}, "
                             f"found {len(at)}; PureJaxRL changed, edit it by hand")
        lines[at[0]] = new
    return "\n".join(lines) + "\n"


def patch_wrappers(text: str) -> str:
    """PureJaxRL's wrappers.py with navix's import commented out and the two brax imports in try/except."""
    return _edit_lines(text, WRAPPER_EDITS, "wrappers.py")


def patch_dqn(text: str) -> str:
    """PureJaxRL's dqn.py with wandb's import commented out (its ``main`` alone logs to wandb) and
    ``jax.tree_map``, which jax 0.6 removed, written ``jax.tree.map`` (the same function)."""
    return _edit_lines(text, DQN_EDITS, "dqn.py").replace("jax.tree_map(", "jax.tree.map(")


def _read_pjr(src: Path) -> tuple[dict[str, str], str]:
    """({name: text} of PJR_SOURCES, commit) from a checkout, its purejaxrl/ folder or a bare git directory."""
    for d in (src / "purejaxrl", src):
        if all((d / f).exists() for f in PJR_SOURCES):
            commit = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True,
                                    text=True).stdout.strip()
            return {f: (d / f).read_text() for f in PJR_SOURCES}, commit or "unknown"
    if (src / "HEAD").exists() and (src / "objects").is_dir():
        git = ["git", "--git-dir", str(src)]
        show = lambda p: subprocess.run([*git, "show", f"HEAD:{p}"], check=True, capture_output=True,  # noqa: E731
                                        text=True).stdout
        commit = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout
        return {f: show(f"purejaxrl/{f}") for f in PJR_SOURCES}, commit.strip()
    raise SystemExit(f"peers.py --prepare-pjr: {src} is neither a PureJaxRL checkout (purejaxrl/"
                     f"{', purejaxrl/'.join(PJR_SOURCES)}) nor its git directory")


def prepare_pjr(dest: Path, src: Path) -> None:
    """Write DEST/pjr_ppo.py (PureJaxRL's ppo.py as is), DEST/pjr_dqn.py and DEST/wrappers.py (patched) and
    DEST/SOURCE.txt."""
    texts, commit = _read_pjr(Path(src))
    out = {"pjr_ppo.py": texts["ppo.py"], "pjr_dqn.py": patch_dqn(texts["dqn.py"]),
           "wrappers.py": patch_wrappers(texts["wrappers.py"])}
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name, text in out.items():
        (dest / name).write_text(text)
    (dest / "SOURCE.txt").write_text(f"luchris429/purejaxrl purejaxrl/{', purejaxrl/'.join(PJR_SOURCES)}\n"
                                     f"from {Path(src).resolve()}\ncommit {commit}\n"
                                     f"ppo.py saved as pjr_ppo.py, as it is\n"
                                     f"dqn.py saved as pjr_dqn.py: wandb import commented out, jax.tree_map "
                                     f"written jax.tree.map\n"
                                     f"wrappers.py: navix import commented out, brax imports in try/except\n")


# ----------------------------------------------------------------------------- main

def default_out(backend: str, tiny: bool) -> Path:
    """Where the results go without --out: the docs' results folder, one file per backend (``gpu`` for
    CUDA and ROCm), or benchmarks/results/ for a --tiny dry run, whose times measure nothing."""
    if tiny:
        return HERE / "results" / "peers-tiny.json"
    return RESULTS / f"peers-{'cpu' if backend == 'cpu' else 'tpu' if backend == 'tpu' else 'gpu'}.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", action="store_true", help="CPU-sized: the CPU rows, 3 rounds of 1 timed run")
    ap.add_argument("--rows", default=None, help=f"comma-separated rows from {','.join(ALL_ROWS)} (default: "
                                                 f"{','.join(CPU_ROWS)}; every row on a GPU)")
    ap.add_argument("--rounds", type=int, default=None, help="fresh workers per row (default 3 with --small, else 5)")
    ap.add_argument("--runs", type=int, default=None, help="timed runs per system and round (default 1 with --small, "
                                                             "else 2)")
    ap.add_argument("--peers-python", default=None,
                    help="interpreter of the peers (default: .peers-venv/bin/python, made by benchmarks/peers_env.sh; "
                         "this interpreter with --peers-pythonpath)")
    ap.add_argument("--peers-pythonpath", default=None, metavar="PATHS",
                    help="run rejax and PureJaxRL with PYTHONPATH=PATHS (folders that pip install --target filled), "
                         "no venv")
    ap.add_argument("--purerl-pythonpath", default=None, metavar="PATHS",
                    help="run purerl with PYTHONPATH=PATHS (default: this checkout in front of the inherited "
                         "PYTHONPATH)")
    ap.add_argument("--pjr", default=None, metavar="DIR",
                    help="time PureJaxRL live from DIR (pjr_ppo.py, pjr_dqn.py, wrappers.py; see --prepare-pjr)")
    ap.add_argument("--prepare-pjr", nargs=2, default=None, metavar=("DIR", "SRC"),
                    help="write DIR from SRC (a purejaxrl checkout or its bare git directory) and exit")
    ap.add_argument("--out", default=None, help="results file (default docs/results/peers-BACKEND.json, e.g. "
                                                "peers-cpu.json, from which docs/benchmarks.md's table and the "
                                                "README's speed table come; --tiny: benchmarks/results/"
                                                "peers-tiny.json)")
    ap.add_argument("--rebuild", default=None, metavar="FILE",
                    help="rewrite the header, table and Markdown of a results file from the timings it holds (after "
                         "a change to how they are shown), time nothing")
    ap.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # plumbing dry run: tiny budgets, 1x1
    ap.add_argument("--worker", nargs=2, metavar=("SYSTEM", "ROW"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.pjr:
        args.pjr = os.path.abspath(args.pjr)
    return args


def rebuild(path: Path) -> dict:
    """Rewrite a results file's header, ``table`` and ``markdown`` from the timings it holds (its ``results``),
    as this version of the script shows them; every measured value stays as it is."""
    data = json.loads(Path(path).read_text())
    meta = {k: v for k, v in data.items() if k not in ("results", "table", "markdown")}
    meta["header"] = header(meta)
    lines, table = build_table(data["results"], meta)
    data = {**meta, "results": data["results"], "table": table, "markdown": lines}
    Path(path).write_text(json.dumps(data, indent=2))
    return data


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        # a worker imports only the systems it times: none of this folder's scripts may shadow a module that
        # they import (this folder had a profile.py, which shadowed the standard library's, that cProfile imports)
        sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
        worker(*args.worker, tiny=args.tiny, pjr_dir=args.pjr)
        return
    if args.prepare_pjr:
        prepare_pjr(Path(args.prepare_pjr[0]), Path(args.prepare_pjr[1]))
        print(f"wrote {args.prepare_pjr[0]}: pjr_ppo.py, pjr_dqn.py, wrappers.py, SOURCE.txt")
        return
    if args.rebuild:
        path = Path(args.rebuild)
        rebuild(path)
        print("\n".join(json.loads(path.read_text())["markdown"]) + f"\n\nrewrote {path}")
        return
    rounds = args.rounds or (1 if args.tiny else 3 if args.small else 5)
    runs = args.runs or (1 if args.tiny or args.small else 2)
    if rounds < 1 or runs < 1:
        sys.exit(f"peers.py: --rounds and --runs must be at least 1, got {rounds} and {runs}")
    if rounds < MIN_ROUNDS and not args.tiny and (args.out is None or Path(args.out).resolve().parent == RESULTS):
        sys.exit(f"peers.py: the tables in docs/results/ need --rounds {MIN_ROUNDS} or more (their spread is "
                 f"part of the result); pass --out elsewhere for fewer rounds")
    missing = [f for f in PJR_FILES.values() if args.pjr and not (Path(args.pjr) / f).exists()]
    if missing:
        sys.exit(f"peers.py: no {' or '.join(missing)} in {args.pjr}: run `bash benchmarks/peers_env.sh` (or "
                 f"--prepare-pjr {args.pjr} SRC) first")
    launch = launches(args)
    if not args.peers_pythonpath and not Path(launch["peers"][0]).exists():
        sys.exit(f"peers.py: no rejax environment at {launch['peers'][0]}: run `bash benchmarks/peers_env.sh`, "
                 f"or pass --peers-python or --peers-pythonpath")
    extra = (["--tiny"] if args.tiny else []) + (["--pjr", args.pjr] if args.pjr else [])
    log = Path(args.out).with_suffix(".log") if args.out else HERE / "results" / "peers.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")

    try:
        info = probe({"purerl": launch["purerl"], "rejax": launch["peers"],
                      **({"purejaxrl": launch["peers"]} if args.pjr else {})}, extra, log)
    except WorkerDied as e:
        sys.exit(f"peers.py: {e}")
    rows = default_rows(args.rows or (",".join(CPU_ROWS) if args.small else None), info["purerl"]["backend"])
    out = Path(args.out) if args.out else default_out(info["purerl"]["backend"], args.tiny)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"date": datetime.date.today().isoformat(), "backend": info["purerl"]["backend"],
            "device": info["purerl"]["device"], "jax": info["purerl"]["jax"], "python": info["purerl"]["python"],
            "systems": info, "rounds": rounds, "runs": runs, "tiny": args.tiny, "pjr_live": bool(args.pjr),
            "rows": rows, "rejax": f"rejax {info['rejax']['version']}", "command": command(None if argv is None else [__file__, *argv]),
            "load_average": load_average()}
    meta["header"] = header(meta)
    me = info["purerl"]  # the one-line machine of earlier versions' JSON (benchmarks/figures.py shows it)
    meta["machine"] = (f"{me['cpu']}, {me['cores']} cores, {me['device'] if me['backend'] != 'cpu' else 'cpu'}, "
                       f"jax {me['jax']}, python {me['python']}")
    print(meta["header"], flush=True)

    res: dict = {}

    def write() -> list[str]:
        lines, table = build_table(res, meta)
        out.write_text(json.dumps({**meta, "results": res, "table": table, "markdown": lines}, indent=2))
        return lines

    for row in rows:
        if row == "cli":
            continue
        systems = {"purerl": launch["purerl"], "purerl-jax.jit": launch["purerl"], "rejax": launch["peers"]}
        if args.pjr and row_spec(row)["algo"] in PJR_ALGOS:
            systems["purejaxrl"] = launch["peers"]
        res[row] = compare(row, systems, rounds, runs, compile_only=("purerl-jax.jit",), extra=extra, log=log)
        write()
    if "cli" in rows:
        res["cli"] = cli_row(rounds, launch["purerl"], args.tiny)
        if "ppo1" not in res:
            res["ppo1"] = compare("ppo1", {"purerl": launch["purerl"]}, rounds, runs, extra=extra, log=log)
    lines = write()
    print("\n" + "\n".join(lines))
    if meta["backend"] == "cpu" and not args.tiny and set(README_ROWS) <= set(res):
        print("\nThe README's speed table (tests/test_results_files.py checks it against this file):\n\n"
              + readme_table(json.loads(out.read_text())))
    print(f"\nwrote {out} (worker stderr: {log})")


if __name__ == "__main__":
    main()
