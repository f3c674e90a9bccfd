"""All on-policy algorithms on CartPole-v1 at one shared budget, in one table.

    python benchmarks/onpolicy.py                    # 1e6 env steps, 1 seed, median of 3 runs
    python benchmarks/onpolicy.py --seeds 8          # the same programs vmapped over 8 seeds
    python benchmarks/onpolicy.py --steps 500000 --algos ppo,a2c

Each algorithm runs with its Config defaults except ``total_timesteps`` (the shared budget). Columns:
compile s (trace + XLA), run s (median of --repeats), env steps/s, updates (parameter updates in the run),
final return (mean episode return over the last 5% of log points, mean over seeds) and the env steps at
which the mean return first reached 475. Results go to benchmarks/results/onpolicy.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import jax
import numpy as np

from purerl import a2c, a3c, ppo, reinforce, trpo
from purerl.run.bench import measure

ALGOS = {"ppo": ppo, "reinforce": reinforce, "a2c": a2c, "a3c": a3c, "trpo": trpo}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=1_000_000, help="shared env-step budget per seed")
    ap.add_argument("--seeds", type=int, default=1, help="seeds, vmapped in one program")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per row (median reported)")
    ap.add_argument("--algos", default=",".join(ALGOS), help="comma-separated subset")
    ap.add_argument("--env", default="CartPole-v1")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "onpolicy.json"))
    args = ap.parse_args()

    device = jax.devices()[0]
    print(f"device: {device.platform} ({device.device_kind}), jax {jax.__version__}, {args.env}, "
          f"{args.steps:,} steps x {args.seeds} seed(s), repeats {args.repeats}")
    results = []
    for name in args.algos.split(","):
        algo = ALGOS[name]
        cfg = algo.Config(env=args.env, total_timesteps=args.steps)
        trainer = algo.make(cfg)
        keys = jax.random.split(jax.random.key(0), args.seeds)
        compile_s, run_s, res = measure(jax.vmap(trainer.train), keys, args.repeats)
        ret = np.asarray(res.metrics["episode_return"])
        steps = np.asarray(res.metrics["env_steps"])[0]
        tail = max(1, ret.shape[1] // 20)
        mean_curve = np.nanmean(ret, axis=0)
        hit = np.flatnonzero(mean_curve >= 475)
        updates = trainer.num_log_points * (getattr(cfg, "num_workers", 1))
        row = {"algo": name, "compile_s": compile_s, "run_s": run_s,
               "steps_per_s": trainer.num_log_points * trainer.steps_per_log_point * args.seeds / run_s,
               "updates": int(updates), "final_return": float(np.nanmean(ret[:, -tail:])),
               "steps_to_475": int(steps[hit[0]]) if hit.size else None}
        results.append(row)
        print(f"  done {name}: run {run_s:.2f}s", flush=True)

    hdr = f"{'algo':<11}{'compile s':>10}{'run s':>9}{'env steps/s':>13}{'updates':>9}{'return':>9}{'steps to 475':>14}"
    print("\n" + hdr + "\n" + "-" * len(hdr))
    for r in results:
        s475 = "-" if r["steps_to_475"] is None else f"{r['steps_to_475']:,}"
        print(f"{r['algo']:<11}{r['compile_s']:>10.2f}{r['run_s']:>9.2f}{r['steps_per_s']:>13,.0f}"
              f"{r['updates']:>9,}{r['final_return']:>9.1f}{s475:>14}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"device": str(device), "jax": jax.__version__, "env": args.env, "steps": args.steps,
                               "seeds": args.seeds, "results": results}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
