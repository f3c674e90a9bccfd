"""Brax's own trainers beside purerl's Brax presets: ``brax.training.agents.ppo.train`` and ``.sac.train`` on the
same machine, at the same budget and with the settings of the preset, cell by cell, alternating with purerl.

    python benchmarks/brax_trainers.py                         # every Brax cell: Brax's trainer, then purerl's run
    python benchmarks/brax_trainers.py --cells ppo-brax-hopper/brax/hopper --brax-seeds 3 --seeds 6
    python benchmarks/brax_trainers.py --full                  # the presets' budgets (Brax's notebook budgets; a GPU)
    python benchmarks/brax_trainers.py --trainer-only --cells ...   # Brax's trainer alone (one process, one cell)
    python benchmarks/brax_trainers.py --link                  # set the Brax files as the purerl files' references

The cells are benchmarks/results.py's ``brax`` suite. Per cell, Brax's trainer runs first in a process of its own
(the only process that imports ``brax.training``; purerl never does), its seeds one after another as Brax runs
them; then purerl's run of the same cell (``benchmarks/results.py --cells CELL``, its seeds one vmapped program),
which takes Brax's file as its reference. The two alternate cell by cell (Brax, purerl, Brax, purerl, ...), so
both see the same load on a shared machine; each writes its own results file the moment it ends.

The settings of Brax's trainer come from the cell's purerl config, mapped as the preset's description says:
PPO's ``num_envs x num_steps`` env steps per update become Brax's ``num_envs`` envs with ``batch_size x
num_minibatches`` unrolls of ``unroll_length`` steps (the minibatches have the same number of env steps as
purerl's), ``num_epochs`` is ``num_updates_per_batch``, discount, GAE lambda, learning rate, entropy cost, clip and
observation normalisation are the config's, and ``reward_scaling`` is Brax's own (its published config; purerl
normalises rewards instead). SAC's envs, batch, gradient steps per env step (``grad_updates_per_step``), discount,
learning rate, reward scale, warm-up (``min_replay_size``), replay capacity, tau and observation normalisation are
the config's. The networks have the config's sizes and activation (``hidden_sizes``, ``activation``; PPO's
``state_dependent_std``), for the policy and the value network alike, so that both libraries run programs of the
same size (Brax's own PPO default, policy (32,)*4 and value (256,)*5, spends most of a CPU's time in the value
network); initialisation, distributions, optimiser details and the rest are Brax's own.

What each file holds (``docs/results/cells/brax-ALGO__ENV__STEPS.json``, results.py's format, ``library`` set):

* ``final``: Brax's own final evaluation, as its trainer reports it (``eval/episode_reward``: ``num_eval_envs``
  = 128 envs, one episode each of up to ``episode_length`` steps, actions sampled since ``deterministic_eval`` is
  False by default, raw rewards), one value per seed;
* ``eval``: each seed's final policy evaluated afresh with purerl's protocol (``eval_episodes`` episodes of up
  to ``episode_length`` steps, the deterministic policy, raw rewards; Brax's ``acting.Evaluator``): the number a
  purerl cell is compared with;
* ``curve``: Brax's own evaluation at each of its ``num_evals`` points;
* times: per seed the wall time of the whole ``train`` call (env creation, compilation, its evaluations), Brax's
  training time (``training/walltime``, the first epoch with its compilation) and evaluation time; ``compile_s``
  estimates the compilation as what the first two epochs take beyond the median of the later ones (epochs are
  the same size; Brax's training epoch compiles on its first call and again on its second), summed over the seeds
  (Brax's ``train`` compiles anew for each seed); ``run_s`` is the training time less that, summed over the seeds
  (evaluations left out).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402

import results  # noqa: E402  (this folder's; standard library only at import)

BRAX_EVALS = 6           # Brax's evaluations over a run at most (its num_evals - 1); each is 128 episodes


def brax_cells() -> list[results.Cell]:
    return [c for c in results.CELLS if c.suite == "brax"]


def _compile_estimate(epochs) -> float:  # noqa: ANN001
    """Compilation within Brax's training epochs (equal in work): what the first two take beyond the median of
    the others. Brax's ``training_epoch`` compiles on its first call and again on its second (the second call's
    arguments differ from the first's in a way that retraces), and runs from the cache after that."""
    if len(epochs) < 3:
        return float("nan")
    steady = float(np.median(epochs[2:]))
    return float(sum(max(0.0, e - steady) for e in epochs[:2]))


def _divisor_at_most(n: int, most: int) -> int:
    return max(d for d in range(1, min(n, most) + 1) if n % d == 0)


def brax_settings(cell: results.Cell, cfg, algo: str) -> dict:  # noqa: ANN001
    """The keyword arguments of Brax's ``train`` for the cell's purerl config ``cfg`` (see the module docstring)."""
    extra = dict(cell.brax)
    if algo == "ppo":
        unroll = extra.pop("unroll_length")
        per_update = cfg.num_envs * cfg.num_steps
        batch = per_update // (unroll * cfg.num_minibatches)
        if batch * unroll * cfg.num_minibatches != per_update:
            raise ValueError(f"{cell.name}: {per_update} env steps per update are not {cfg.num_minibatches} "
                             f"minibatches of unrolls of {unroll}")
        updates = cfg.total_timesteps // per_update
        return {"num_timesteps": updates * per_update, "num_envs": cfg.num_envs, "episode_length": cfg.episode_length,
                "unroll_length": unroll, "batch_size": batch, "num_minibatches": cfg.num_minibatches,
                "num_updates_per_batch": cfg.num_epochs, "discounting": float(cfg.gamma),
                "gae_lambda": float(cfg.gae_lambda), "learning_rate": float(cfg.learning_rate),
                "entropy_cost": float(cfg.ent_coef), "clipping_epsilon": float(cfg.clip_eps),
                "normalize_observations": bool(cfg.normalize_obs),
                "num_evals": 1 + _divisor_at_most(updates, BRAX_EVALS), **extra}
    if algo == "sac":
        lrs = {float(cfg.actor_lr), float(cfg.critic_lr), float(cfg.alpha_lr)}
        if len(lrs) != 1:
            raise ValueError(f"{cell.name}: Brax's SAC has one learning rate; the config has {sorted(lrs)}")
        return {"num_timesteps": cfg.iterations * cfg.num_envs, "num_envs": cfg.num_envs,
                "episode_length": cfg.episode_length, "batch_size": cfg.batch_size,
                "grad_updates_per_step": cfg.gradient_steps, "discounting": float(cfg.gamma),
                "learning_rate": lrs.pop(), "reward_scaling": float(cfg.reward_scale),
                "min_replay_size": cfg.learning_starts, "max_replay_size": cfg.capacity, "tau": float(cfg.tau),
                "normalize_observations": bool(cfg.normalize_obs), "num_evals": cfg.num_log_points + 1, **extra}
    raise ValueError(f"{cell.name}: no Brax trainer for {algo}")


def run_brax(cell: results.Cell, steps: int, seeds: int, full: bool, eval_episodes: int | None = None) -> dict:
    """Brax's trainer on the cell, ``seeds`` seeds one after another (this process imports brax.training)."""
    import functools

    import brax
    import jax
    import numpy as np
    from brax import envs as brax_envs
    from brax.training import acting

    from algorithms import _floats, subsample
    from purerl import algorithms, presets
    from purerl.run import stats

    algo = presets.load(cell.preset).algo
    module = algorithms.module(algo)
    cfg = cell.config(module, steps, full).validate()
    settings = brax_settings(cell, cfg, algo)
    if algo == "ppo":
        from brax.training.agents.ppo import train as trainer
    else:
        from brax.training.agents.sac import train as trainer
    settings["network_factory"] = _networks(algo, cfg)
    name = cell.env.split("/", 1)[1]
    backend = cfg.env_backend or "positional"
    episodes = eval_episodes or cell.eval_episodes

    per_seed = []
    for seed in range(seeds):
        env = brax_envs.get_environment(name, backend=backend)
        points: list[tuple[int, dict, float]] = []
        t0 = time.perf_counter()
        make_policy, params, _ = trainer.train(
            environment=env, seed=seed, progress_fn=lambda step, m: points.append(
                (int(step), {k: float(np.asarray(v)) for k, v in m.items() if np.ndim(v) == 0}, time.perf_counter())),
            **settings)
        wall = time.perf_counter() - t0
        # the final policy afresh, deterministic, as purerl's cells evaluate theirs
        evaluator = acting.Evaluator(
            brax_envs.training.wrap(env, episode_length=cfg.episode_length),
            functools.partial(make_policy, deterministic=True), num_eval_envs=episodes,
            episode_length=cfg.episode_length, action_repeat=1, key=jax.random.PRNGKey(10_000 + seed))
        ev = evaluator.run_evaluation(params, {}, aggregate_episodes=False)
        train_times = [m["training/walltime"] for _, m, _ in points if "training/walltime" in m]
        compile_est = _compile_estimate(np.diff([0.0, *train_times]))
        per_seed.append({
            "seed": seed, "wall_s": wall, "train_s": train_times[-1], "eval_s": points[-1][1].get("eval/walltime"),
            "compile_est_s": compile_est, "steps": points[-1][0],
            "curve_steps": [p[0] for p in points], "curve": [p[1].get("eval/episode_reward", np.nan) for p in points],
            "final": points[-1][1]["eval/episode_reward"],
            "eval": float(np.mean(np.asarray(ev["eval/episode_reward"], dtype=np.float64))),
        })
        print(f"    Brax seed {seed}: {per_seed[-1]['steps']:,} steps, own eval {per_seed[-1]['final']:.1f}, "
              f"deterministic eval {per_seed[-1]['eval']:.1f}; {wall:.0f} s (training {train_times[-1]:.0f} s, "
              f"compile about {compile_est:.0f} s)", flush=True)

    final = np.asarray([s["final"] for s in per_seed], dtype=np.float64)
    evals = np.asarray([s["eval"] for s in per_seed], dtype=np.float64)
    curves = np.asarray([s["curve"] for s in per_seed], dtype=np.float64)
    x = np.asarray(per_seed[0]["curve_steps"], dtype=np.float64)
    idx = subsample(curves.shape[1])
    curve = stats.iqm_ci(curves[:, None, idx], reps=stats.CURVE_REPS)
    final_ci, eval_ci = stats.iqm_ci(final), stats.iqm_ci(evals)
    compile_s = sum(s["compile_est_s"] for s in per_seed)
    run_s = sum(s["train_s"] - s["compile_est_s"] for s in per_seed)
    total = per_seed[-1]["steps"]
    return {
        "cell": f"{cell.name} (Brax's trainer)", "preset": cell.preset, "algo": algo, "library": "brax.training",
        "trainer": f"brax.training.agents.{algo}.train", "brax_version": brax.__version__, "env": cell.env,
        "suite": cell.suite, "metric": "eval/episode_reward", "steps": total, "asked_steps": steps,
        "seeds": seeds, "devices": jax.local_device_count(),
        "settings": {**settings, "network_factory": _networks(algo, cfg, describe=True)},
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in results._config_dict(cfg).items()},
        "compile_s": compile_s, "run_s": run_s, "env_steps_per_s": seeds * total / run_s,
        "wall_s": sum(s["wall_s"] for s in per_seed), "per_seed_times": [
            {k: s[k] for k in ("seed", "wall_s", "train_s", "eval_s", "compile_est_s")} for s in per_seed],
        "final": {"per_seed": _floats(final), "iqm": final_ci.point, "low": final_ci.low, "high": final_ci.high,
                  "rule": ("per seed: Brax's own final evaluation (eval/episode_reward: 128 envs, one episode each "
                           "of up to episode_length steps, actions sampled as deterministic_eval is False by "
                           "default, raw rewards)")},
        "eval": {"episodes": episodes, "deterministic": True, "per_seed": _floats(evals), "iqm": eval_ci.point,
                 "low": eval_ci.low, "high": eval_ci.high},
        "curve": {"env_steps": _floats(x[idx]), "iqm": _floats(curve.point), "low": _floats(curve.low),
                  "high": _floats(curve.high), "per_seed": [_floats(v) for v in curves[:, idx]]},
        "references": [], "differs": DIFFERS[algo], "tiny": False,
    }


def _networks(algo: str, cfg, describe: bool = False):  # noqa: ANN001
    """Brax's network factory with the config's sizes (or, with ``describe``, its arguments as JSON)."""
    sizes = tuple(cfg.hidden_sizes)
    if algo == "ppo":
        kwargs = {"policy_hidden_layer_sizes": sizes, "value_hidden_layer_sizes": sizes,
                  "state_dependent_std": bool(cfg.state_dependent_std)}
    else:
        kwargs = {"hidden_layer_sizes": sizes}
    if describe:
        return {"make": f"brax.training.agents.{algo}.networks.make_{algo}_networks", **kwargs,
                "activation": cfg.activation}
    import functools

    from flax import linen

    activation = {"silu": linen.swish, "relu": linen.relu, "tanh": linen.tanh, "elu": linen.elu,
                  "gelu": linen.gelu}[cfg.activation]
    if algo == "ppo":
        from brax.training.agents.ppo import networks
    else:
        from brax.training.agents.sac import networks
    return functools.partial(getattr(networks, f"make_{algo}_networks"), activation=activation, **kwargs)


DIFFERS = {
    "ppo": ("Brax's PPO computes GAE over unrolls of unroll_length steps and leaves truncated steps out of it "
            "(purerl: over the whole num_steps rollout, bootstrapping at truncations), scales rewards by "
            "reward_scaling (purerl: normalize_reward, a running std of the discounted return), squashes its "
            "Gaussian with tanh (purerl: clips the actions) and clips no gradients (purerl: 0.5); the networks "
            "have the preset's sizes on both sides"),
    "sac": ("the same settings and network sizes; Brax splits its envs and its replay over the CPU's devices "
            "(one buffer per device, the batch split too), purerl splits its seeds. Brax fills its replay's "
            "min_replay_size with its initial policy (purerl: uniform random actions), parameterises the std as softplus + 0.001 (purerl: a clipped log-std, about 1 at the "
            "start against Brax's 0.69), steps its temperature on alpha * (entropy - target) (purerl: on "
            "entropy - target, both through Adam on log alpha), leaves truncated steps out of the critic loss "
            "(purerl: bootstraps them) and initialises its layers lecun-uniform (purerl: orthogonal)"),
}


def link(cells_dir: Path = results.CELLS_DIR) -> list[str]:
    """Set every purerl Brax cell file's references to Brax's file at the same budget (where both exist)."""
    done = []
    for cell in brax_cells():
        for path in sorted(cells_dir.glob(cell.file(0).name.replace("__0.json", "__*.json"))):
            record = json.loads(path.read_text())
            refs = [dataclasses.asdict(r) for r in cell.references]
            refs += results.brax_references(cell, record["asked_steps"], cells_dir)
            if refs != record.get("references"):
                record["references"] = refs
                results.write_atomic(path, record)
                done.append(path.name)
    return done


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cells = brax_cells()
    ap.add_argument("--cells", default=None, help="comma-separated cell names: " + ", ".join(c.name for c in cells))
    ap.add_argument("--full", action="store_true", help="the presets' budgets (Brax's notebook budgets)")
    ap.add_argument("--seeds", type=int, default=None, help="purerl's seeds per cell (default: the cell's)")
    ap.add_argument("--brax-seeds", type=int, default=3, help="Brax's seeds per cell, run one after another")
    ap.add_argument("--redo", action="store_true", help="run cells whose results files exist too")
    ap.add_argument("--trainer-only", action="store_true", help="run Brax's trainer alone, in this process")
    ap.add_argument("--link", action="store_true", help="only set the purerl files' references to Brax's files")
    ap.add_argument("--out-dir", default=None, help="write the cell files here instead of docs/results/cells")
    ap.add_argument("--steps", type=int, default=None, help="with --trainer-only: this budget instead (a trial)")
    args = ap.parse_args(argv)

    cells_dir = Path(args.out_dir) if args.out_dir else results.CELLS_DIR
    if args.cells:
        names = args.cells.split(",")
        unknown = [n for n in names if n not in {c.name for c in cells}]
        if unknown:
            ap.error(f"--cells: unknown cell(s) {', '.join(unknown)}; the Brax cells are "
                     f"{', '.join(c.name for c in cells)}")
        cells = [c for c in cells if c.name in names]
    if args.link:
        print("\n".join(link(cells_dir)) or "nothing to link")
        return

    if args.trainer_only:
        from purerl.run.devices import use_cpu_cores

        use_cpu_cores()                        # as purerl's runs: one CPU device per core, Brax's pmap spans them
        from provenance import describe, provenance

        prov = provenance(argv if argv is None else [str(Path(__file__).relative_to(ROOT)), *argv])
        print(describe(prov), flush=True)
        for c in cells:
            steps = args.steps or results.cell_steps(c, args.full)
            record = run_brax(c, steps, args.brax_seeds, args.full)
            record["provenance"] = {**prov, "date": provenance()["date"], "loadavg_end": list(os.getloadavg())}
            record["budget"] = "full" if args.full else "cpu"
            path = cells_dir / c.brax_file(steps).name
            results.write_atomic(path, record)
            print(f"  {record['cell']}: {record['steps']:,} steps x {record['seeds']} seeds: own eval IQM "
                  f"{record['final']['iqm']:.1f}, deterministic eval IQM {record['eval']['iqm']:.1f}; "
                  f"{record['wall_s']:.0f} s in all -> {path.name}", flush=True)
        return

    # Alternating, one process each: Brax's trainer, then purerl's run of the same cell, cell by cell.
    python = sys.executable
    for c in cells:
        steps = results.cell_steps(c, args.full)
        common = ["--cells", c.name] + (["--full"] if args.full else []) + (
            ["--out-dir", str(cells_dir)] if args.out_dir else [])
        brax_done = sorted(cells_dir.glob(c.brax_file(0).name.replace("__0.json", "__*.json")))
        if args.redo or not brax_done:
            _run([python, str(HERE / "brax_trainers.py"), "--trainer-only", "--brax-seeds", str(args.brax_seeds),
                  *common])
        _run([python, str(HERE / "results.py"), *common, *(["--redo"] if args.redo else []),
              *(["--seeds", str(args.seeds)] if args.seeds else [])])
        link(cells_dir)
        del steps


def _run(cmd: list[str]) -> None:
    """One process of the alternation; a failed one is said and the next one runs."""
    code = subprocess.run(cmd).returncode
    if code:
        print(f"  exit code {code}: {' '.join(cmd[1:])}", flush=True)


if __name__ == "__main__":
    main()
