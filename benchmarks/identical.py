"""Are the results of a refactor bit-identical to a revision's? Every registered algorithm, trained on a small
config in this tree and in a git worktree of REV, compared array by array.

    python benchmarks/identical.py --against HEAD~3          # every case
    python benchmarks/identical.py --against main --only sac,dqn_n_step

Each tree runs every case in a subprocess of its own (``PYTHONPATH`` set to the tree, JAX on the CPU): the
jitted ``train(key)`` of the case's config, then ``evaluate(final_state, key, 2)``. The table compares, with
``np.array_equal`` (NaNs equal where both are NaN), every logged metric, every leaf of the final parameters
(``Result.params``) and the evaluation's returns, and gives the largest absolute difference. A metric, a
parameter or a case present on one side only is a difference (named). REV's outputs are kept under
``--cache`` by its commit hash, so a second comparison against the same revision only runs this tree.

This tree is the working tree as it is (uncommitted changes included), or with ``--tree DIR`` a copy of it
(e.g. a snapshot taken while the working tree is being edited). A field renamed between the two trees
is given under whichever name the tree's Config declares (:data:`SAME_FIELD`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

# (case, algorithm module, config fields): the feed-forward and recurrent actor-critics, every baseline of
# REINFORCE, A3C's staleness, the normalisers of both families, DQN's n-step/Double targets.
CASES = [
    ("ppo", "ppo", dict(env="CartPole-v1", num_envs=4, num_steps=32, total_timesteps=4 * 32 * 3, num_epochs=2,
                        num_minibatches=2, hidden_sizes=(16, 16))),
    ("ppo_recurrent", "ppo", dict(env="CartPole-v1", num_envs=4, num_steps=16, total_timesteps=4 * 16 * 3,
                                  num_epochs=2, num_minibatches=2, hidden_sizes=(16,), recurrent=True)),
    ("ppo_pendulum_normalised", "ppo", dict(env="Pendulum-v1", num_envs=4, num_steps=32, total_timesteps=4 * 32 * 3,
                                            num_epochs=2, num_minibatches=2, hidden_sizes=(16, 16),
                                            normalize_obs=True, normalize_reward=True, target_kl=0.01)),
    ("a2c", "a2c", dict(env="CartPole-v1", num_envs=4, total_timesteps=4 * 5 * 6, hidden_sizes=(16, 16),
                        anneal_lr=True)),
    ("a2c_recurrent", "a2c", dict(env="CartPole-v1", num_envs=4, total_timesteps=4 * 5 * 6, hidden_sizes=(16,),
                                  recurrent=True, gae_lambda=0.9)),
    ("a3c", "a3c", dict(env="CartPole-v1", num_envs=2, num_workers=3, max_staleness=2, total_timesteps=3 * 2 * 5 * 4,
                        hidden_sizes=(16, 16), anneal_lr=True)),
    ("a3c_pendulum_normalised", "a3c", dict(env="Pendulum-v1", num_envs=2, num_workers=2, max_staleness=1,
                                            random_staleness=False, total_timesteps=2 * 2 * 5 * 4,
                                            hidden_sizes=(16, 16), normalize_obs=True)),
    ("trpo", "trpo", dict(env="CartPole-v1", num_envs=4, num_steps=32, total_timesteps=4 * 32 * 3, vf_minibatches=2,
                          vf_epochs=2, hidden_sizes=(16, 16))),
    ("trpo_pendulum", "trpo", dict(env="Pendulum-v1", num_envs=4, num_steps=32, total_timesteps=4 * 32 * 2,
                                   vf_minibatches=2, vf_epochs=2, hidden_sizes=(16, 16), anneal_lr=True)),
    ("reinforce_none", "reinforce", dict(env="CartPole-v1", num_envs=2, total_timesteps=2 * 500 * 2,
                                         hidden_sizes=(16, 16), baseline="none")),
    ("reinforce_mean", "reinforce", dict(env="CartPole-v1", num_envs=2, total_timesteps=2 * 500 * 2,
                                         hidden_sizes=(16, 16), baseline="mean")),
    ("reinforce_value", "reinforce", dict(env="CartPole-v1", num_envs=2, total_timesteps=2 * 500 * 2,
                                          hidden_sizes=(16, 16), baseline="value")),
    ("pqn", "pqn", dict(env="CartPole-v1", num_envs=4, num_steps=16, total_timesteps=4 * 16 * 4, num_minibatches=2,
                        num_epochs=2, hidden_sizes=(16,))),
    ("ddpg_ou", "ddpg", dict(env="Pendulum-v1", total_timesteps=400, learning_starts=100, num_log_points=2,
                             eval_episodes=2, hidden_sizes=(16, 16), batch_size=32, exploration_noise="ou")),
    ("td3", "td3", dict(env="Pendulum-v1", total_timesteps=400, learning_starts=100, num_log_points=2,
                        eval_episodes=2, hidden_sizes=(16, 16), batch_size=32, num_envs=2)),
    ("sac", "sac", dict(env="Pendulum-v1", total_timesteps=400, learning_starts=100, num_log_points=2,
                        eval_episodes=2, hidden_sizes=(16, 16), batch_size=32, gradient_steps=2)),
    ("sac_normalize_obs", "sac", dict(env="Pendulum-v1", total_timesteps=400, learning_starts=100, num_log_points=2,
                                      eval_episodes=2, hidden_sizes=(16, 16), batch_size=32, num_envs=2,
                                      normalize_obs=True)),
    ("sac_discrete", "sac_discrete", dict(env="CartPole-v1", total_timesteps=400, learning_starts=100,
                                          num_log_points=2, eval_episodes=2, hidden_sizes=(16, 16), batch_size=32,
                                          autotune_alpha=True)),
    ("dqn", "dqn", dict(env="CartPole-v1", total_timesteps=600, learning_starts=100, num_log_points=2,
                        eval_episodes=2, hidden_sizes=(16, 16), batch_size=32, num_envs=2)),
    ("dqn_n_step", "dqn", dict(env="CartPole-v1", total_timesteps=600, learning_starts=100, num_log_points=2,
                               eval_episodes=2, hidden_sizes=(16, 16), batch_size=32, num_envs=2, n_step=3,
                               double=True, td_loss="huber", target_update_period=5, tau=0.5)),
]

# A field that has had another name: every name it has had (a tree is given the one its Config declares).
SAME_FIELD = {"num_log_points": ("num_evals",)}

WORKER = r"""
import dataclasses, importlib, json, os, sys
import jax, numpy as np
import purerl
root, cases, out = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
assert os.path.realpath(purerl.__file__).startswith(os.path.realpath(root) + os.sep), purerl.__file__
same = json.loads(sys.argv[4])
for name, algo, fields in cases:
    mod = importlib.import_module(f"purerl.{algo}")
    declared = {f.name for f in dataclasses.fields(mod.Config)}
    kw = {}
    for k, v in fields.items():
        k = k if k in declared else next((o for o in same.get(k, ()) if o in declared), k)
        kw[k] = tuple(v) if isinstance(v, list) else v
    trainer = mod.make(mod.Config(**kw))
    result = jax.jit(trainer.train)(jax.random.key(0))
    ev = jax.jit(lambda s, k: trainer.evaluate(s, k, 2))(result.state, jax.random.key(1))
    arrays = {f"metrics/{k}": np.asarray(v) for k, v in result.metrics.items()}
    for path, leaf in jax.tree_util.tree_flatten_with_path(result.params)[0]:
        arrays[f"params/{jax.tree_util.keystr(path)}"] = np.asarray(leaf)
    arrays["eval/returns"] = np.asarray(ev["returns"])
    np.savez(os.path.join(out, name + ".npz"), **arrays)
    print(f"  {name}: done", file=sys.stderr, flush=True)
"""


def run_tree(root: Path, cases: list, out: Path) -> None:
    """Run ``cases`` with the purerl of ``root``, writing one ``<case>.npz`` each into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(root), "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)
    subprocess.run([sys.executable, "-c", WORKER, str(root), json.dumps(cases), str(out), json.dumps(SAME_FIELD)],
                   cwd=root, env=env, check=True)


def compare(a: dict, b: dict) -> tuple[bool, float, list[str]]:
    """``(identical, max abs diff, names that differ)`` of two cases' arrays."""
    names, diff = [], 0.0
    for k in sorted(set(a) | set(b)):
        if k not in a or k not in b:
            names.append(f"{k} ({'new' if k in b else 'gone'})")
            continue
        x, y = a[k], b[k]
        if x.shape != y.shape:
            names.append(f"{k} (shape {x.shape} -> {y.shape})")
            continue
        if np.array_equal(x, y, equal_nan=x.dtype.kind == "f"):
            continue
        names.append(k)
        with np.errstate(invalid="ignore"):
            d = np.abs(x.astype(np.float64) - y.astype(np.float64))
        diff = max(diff, float(np.nanmax(d)) if np.isfinite(d).any() else float("inf"))
    return not names, diff, names


def _rev_hash(rev: str) -> str:
    return subprocess.run(["git", "rev-parse", "--verify", f"{rev}^{{commit}}"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout.strip()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--against", required=True, help="the git revision to compare this working tree with")
    p.add_argument("--only", default="", help="comma-separated case names (default: every case)")
    p.add_argument("--tree", default=str(ROOT), help="the tree to check (default: this working tree)")
    p.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "purerl-identical"),
                   help="where the revision's outputs are kept, by commit hash")
    args = p.parse_args(argv)
    names = [c[0] for c in CASES]
    only = [n for n in args.only.split(",") if n]
    unknown = [n for n in only if n not in names]
    if unknown:
        p.error(f"unknown case(s) {', '.join(unknown)}; the cases are {', '.join(names)}")
    cases = [c for c in CASES if not only or c[0] in only]
    sha = _rev_hash(args.against)
    theirs = Path(args.cache) / sha
    missing = [c for c in cases if not (theirs / f"{c[0]}.npz").exists()]
    if missing:
        with tempfile.TemporaryDirectory() as tmp:
            tree = Path(tmp) / "tree"
            subprocess.run(["git", "worktree", "add", "--detach", str(tree), sha], cwd=ROOT, check=True,
                           capture_output=True)
            try:
                print(f"{args.against} ({sha[:10]}): {len(missing)} case(s)", file=sys.stderr)
                run_tree(tree, missing, theirs)
            finally:
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False,
                               capture_output=True)
    with tempfile.TemporaryDirectory() as ours:
        print(f"{args.tree}: {len(cases)} case(s)", file=sys.stderr)
        run_tree(Path(args.tree).resolve(), cases, Path(ours))
        rows = []
        for name, algo, _ in cases:
            with np.load(theirs / f"{name}.npz") as f:
                a = dict(f)
            with np.load(Path(ours) / f"{name}.npz") as f:
                b = dict(f)
            rows.append((name, algo, *compare(a, b)))
    width = max(len(r[0]) for r in rows)
    print(f"against {args.against} ({sha[:10]})")
    print(f"{'case':<{width}}  {'algorithm':<12}  identical  max abs diff  differs")
    for name, algo, same, diff, which in rows:
        print(f"{name:<{width}}  {algo:<12}  {'yes' if same else 'NO':<9}  {diff:<12.3g}  {', '.join(which)[:80]}")
    return 0 if all(r[2] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
