"""Where one PPO update and one SAC iteration spend their time: the yardstick for every speed change.

    python benchmarks/profile_phases.py                 # PPO CartPole-v1 (defaults) and SAC Pendulum-v1 (64x64), 1 seed
    python benchmarks/profile_phases.py --seeds 16      # the same programs vmapped over 16 seeds
    python benchmarks/profile_phases.py --only ppo

For each program it prints
* the wall time of one update (PPO) / one env step + gradient step (SAC), median of --repeats chunks;
* the time per phase (kernels credited to the algorithms' named scopes by :mod:`purerl.run.profiling`),
  with the number of kernels each phase executes: on a CPU each kernel costs a dispatch, on a GPU a launch;
* every loop with its trip count, and the sequential loop iterations per update;
* compile time and size (HLO instructions, fusions) of the whole ``train`` program.
Results also go to benchmarks/results/profile.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp

from purerl import ppo, sac
from purerl.core.loop import run_chunk
from purerl.run import profiling

PPO_PHASES = ("rollout", "policy", "env_step", "advantage", "minibatch_updates")
SAC_PHASES = ("act", "env_step", "replay_add", "replay_sample", "critic", "actor", "temperature", "optimizer",
              "targets", "evaluation")


def _programs(seeds: int):
    return {
        "ppo": ("PPO CartPole-v1, 4 envs x 128 steps, 4 epochs x 4 minibatches", ppo,
                ppo.Config(env="CartPole-v1", total_timesteps=500_000), PPO_PHASES, 20),
        "sac": ("SAC Pendulum-v1, 64x64 networks, 20k steps", sac,
                sac.Config(env="Pendulum-v1", total_timesteps=20_000, hidden_sizes=(64, 64)), SAC_PHASES, 1),
    }


def profile(name: str, label: str, mod, cfg, phases, chunk: int, seeds: int, repeats: int) -> dict:
    trainer = mod.make(cfg)
    keys = jax.random.split(jax.random.key(0), seeds)
    vm = (lambda f: jax.vmap(f)) if seeds > 1 else (lambda f: lambda x: jax.tree.map(lambda a: a[None], f(
        jax.tree.map(lambda a: a[0], x))))
    state = jax.jit(vm(trainer.init))(keys)
    state = jax.jit(vm(lambda s: run_chunk(trainer.update, s, 2)[0]))(state)  # past the first updates

    # inner unit: PPO one update; SAC one iteration (env step + gradient step), a log point being
    # iterations_per_log_point of them followed by one evaluation
    per = chunk if name == "ppo" else cfg.iterations_per_log_point * chunk
    unit = "update" if name == "ppo" else "iteration"
    step = vm(lambda s: run_chunk(trainer.update, s, chunk)[0])
    compiled, _ = profiling.compile_timed(step, state)
    jax.block_until_ready(compiled(state))
    walls = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(state))
        walls.append(time.perf_counter() - t0)
    wall = statistics.median(walls) / per
    prof = profiling.phase_profile(compiled, (state,), phases).per(per)

    one = jax.tree.map(lambda a: a[0], state)
    loops = profiling.loop_structure(trainer.update, one)
    seq = profiling.sequential_iterations(loops)

    train_compiled, compile_s = profiling.compile_timed(vm(trainer.train) if seeds > 1 else trainer.train,
                                                       keys if seeds > 1 else keys[0])
    size = profiling.program_size(train_compiled)

    print(f"\n=== {label}, {seeds} seed{'s' if seeds > 1 else ''}")
    print(f"wall per {unit}: {wall * 1e6:,.0f} us   (median of {repeats} chunks of {per} {unit}s; "
          f"kernel times below come from one profiled chunk, whose wall was {prof.wall_s * 1e6:,.0f} us per {unit})")
    total = sum(prof.micros.values())
    print(f"{'phase':<22}{'us/' + unit:>14}{'share':>8}{'kernels/' + unit:>18}")
    order = [p for p in phases if p in prof.micros] + [p for p in prof.micros if p not in phases]
    for p in order:
        print(f"{p:<22}{prof.micros[p]:>14,.1f}{prof.micros[p] / total:>8.1%}{prof.kernels.get(p, 0):>18,.1f}")
    print(f"{'total':<22}{total:>14,.1f}{'':>8}{sum(prof.kernels.values()):>18,.1f}")
    print(f"loops in one {'update' if name == 'ppo' else 'log point'} "
          f"({seq:,.0f} sequential iterations):")
    print(profiling.format_loops(loops))
    if name == "sac":
        print(f"  (a log point is {cfg.iterations_per_log_point} iterations and one evaluation)")
    print(f"train program: compile {compile_s:.2f} s, {size['instructions']} HLO instructions, "
          f"{size['fusions']} fusions, {size['dots']} dots/custom calls")
    return {"label": label, "seeds": seeds, "unit": unit, "wall_us": wall * 1e6, "phase_us": prof.micros,
            "phase_kernels": prof.kernels, "sequential_iterations": seq, "compile_s": compile_s, "size": size,
            "loops": [(lp.kind, lp.scope, lp.length, lp.unroll, lp.executions) for lp in profiling._flatten(loops)]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=1, help="vmap the programs over this many seeds")
    ap.add_argument("--only", default="ppo,sac", help="comma-separated: ppo, sac")
    ap.add_argument("--repeats", type=int, default=5, help="timed chunks per program (median reported)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "profile.json"))
    args = ap.parse_args()
    dev = jax.devices()[0]
    print(f"device: {dev.platform} ({dev.device_kind}), {os.cpu_count()} CPU cores, jax {jax.__version__}, "
          f"python {platform.python_version()}")
    progs = _programs(args.seeds)
    results = {}
    for name in args.only.split(","):
        label, mod, cfg, phases, chunk = progs[name]
        results[name] = profile(name, label, mod, cfg, phases, chunk, args.seeds, args.repeats)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"device": str(dev), "jax": jax.__version__, "results": results}, indent=2,
                              default=float))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    jnp.zeros(())  # initialise the backend before timing
    main()
