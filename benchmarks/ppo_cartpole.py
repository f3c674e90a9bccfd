"""PPO on CartPole-v1: compile time, run time, env steps/s and final return, against the env-only ceiling.

    python benchmarks/ppo_cartpole.py            # the full configs (meant for a GPU)
    python benchmarks/ppo_cartpole.py --small    # CPU-sized: fewer seeds, fewer steps for the big configs

Rows: (a) 4 envs x 128 steps, 5e5 steps, 1 seed; (b) the same vmapped over 1024 seeds; (c) 2048 envs,
2e7 steps. Each row is paired with the env-only ceiling for the same env count and seeds: the same
rollout loop (wrappers, auto-reset, episode statistics) with uniformly random actions and no learning.
Compile time (trace + XLA) is reported separately from run time (median of --repeats runs).
Results are printed as a table and written to benchmarks/results/ppo_cartpole.json.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import jax
import numpy as np

from purerl import ppo
from purerl.run.bench import env_ceiling_fn, interleaved, measure
from purerl.run.runner import ProgressBar

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", action="store_true", help="CPU-sized run: 8 seeds for (b), 2e6 steps for (c)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per row (median reported)")
    ap.add_argument("--rows", default="a,b,c", help="which rows to run, e.g. a or a,c")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "ppo_cartpole.json"))
    args = ap.parse_args()

    seeds_b = 8 if args.small else 1024
    steps_c = 2_000_000 if args.small else 20_000_000
    rows = {
        "a": ("a: 4x128, 5e5, 1 seed", ppo.Config(env="CartPole-v1", total_timesteps=500_000), 1),
        "b": (f"b: 4x128, 5e5, {seeds_b} seeds", ppo.Config(env="CartPole-v1", total_timesteps=500_000), seeds_b),
        "c": (f"c: 2048x128, {steps_c:.0e}, 1 seed",
              ppo.Config(env="CartPole-v1", total_timesteps=steps_c, num_envs=2048, num_steps=128), 1),
    }
    device = jax.devices()[0]
    print(f"device: {device.platform} ({device.device_kind}), jax {jax.__version__}, repeats {args.repeats}")
    results = []
    for name in args.rows.split(","):
        label, cfg, seeds = rows[name]
        keys = jax.random.split(jax.random.key(0), seeds)
        train = ppo.make_train(cfg)
        fn = jax.vmap(train) if seeds > 1 else (lambda k: train(k[0]))
        c_s, r_s, res = measure(fn, keys, args.repeats)
        ret = np.asarray(res.metrics["episode_return"]).reshape(seeds, -1)
        final = float(np.nanmean(ret[:, -max(1, ret.shape[1] // 20):]))
        ceil_fn, steps = env_ceiling_fn(ppo.make(cfg))
        cfn = jax.vmap(ceil_fn) if seeds > 1 else (lambda k: ceil_fn(k[0]))
        cc_s, cr_s, _ = measure(cfn, keys, args.repeats)
        row = {"row": label, "seeds": seeds, "env_steps": steps * seeds, "compile_s": c_s, "run_s": r_s,
               "steps_per_s": steps * seeds / r_s, "final_return": final, "ceiling_compile_s": cc_s,
               "ceiling_run_s": cr_s, "ceiling_steps_per_s": steps * seeds / cr_s,
               "train_over_ceiling": (steps * seeds / r_s) / (steps * seeds / cr_s)}
        if seeds == 1:  # the CLI's live progress bar: a host callback at most 50 times per run
            bar = ProgressBar(1, file=io.StringIO())
            ptrainer = ppo.make(cfg, progress=bar, progress_metrics=("episode_return",))
            bar.start(ptrainer.num_log_points, ptrainer.steps_per_log_point)
            t = interleaved({"plain": lambda k, f=train: f(k[0]), "bar": lambda k, f=ptrainer.train: f(k[0])},
                            keys, 2 * args.repeats + 1)
            bar.close()
            row["run_s_with_progress"] = t["bar"]
            row["progress_overhead"] = t["bar"] / t["plain"] - 1.0
        results.append(row)
        print(f"  done {label}: run {r_s:.2f}s", flush=True)

    hdr = f"{'config':<28}{'compile s':>10}{'run s':>9}{'steps/s':>13}{'return':>8}{'ceiling steps/s':>17}{'train/ceil':>11}"
    print("\n" + hdr + "\n" + "-" * len(hdr))
    for r in results:
        print(f"{r['row']:<28}{r['compile_s']:>10.2f}{r['run_s']:>9.2f}{r['steps_per_s']:>13,.0f}"
              f"{r['final_return']:>8.1f}{r['ceiling_steps_per_s']:>17,.0f}{r['train_over_ceiling']:>11.2f}")
    for r in results:
        if "progress_overhead" in r:
            print(f"  {r['row']}: run with the live progress bar {r['run_s_with_progress']:.2f}s "
                  f"({100 * r['progress_overhead']:+.1f}% vs without, medians of runs taken in alternation)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"device": str(device), "jax": jax.__version__, "small": args.small,
                               "results": results}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
