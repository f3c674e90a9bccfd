"""How cost grows with seeds (vmapped) and with num_envs, for PPO on CartPole-v1 and SAC on Pendulum-v1.

    python benchmarks/scaling.py            # seeds 1, 16, 256, 1024; num_envs 4..4096 (meant for a GPU)
    python benchmarks/scaling.py --small    # seeds 1, 4, 16; num_envs 4, 16, 64; shorter runs (CPU)

For each point: compile s, run s (median of --repeats), aggregate env steps/s and the per-seed cost ratio
time(N seeds) / (N x time(1 seed)) — 1.0 means seeds cost as much as running them one after another,
1/N means they are free. Budgets: PPO 5e5 env steps per seed (1e5 with --small), SAC 20k (5k with
--small); the num_envs sweep keeps the per-seed budget, so more envs means fewer, larger updates (PPO) or
more transitions per gradient step (SAC, gradient_steps = num_envs keeps the replay ratio at 1).
Results go to benchmarks/results/scaling.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import jax

from purerl import ppo, sac
from purerl.run.bench import measure


def timed(train, seeds: int, repeats: int) -> tuple[float, float]:
    compile_s, run_s, _ = measure(jax.vmap(train), jax.random.split(jax.random.key(0), seeds), repeats)
    return compile_s, run_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", action="store_true", help="CPU-sized points and budgets")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--algos", default="ppo,sac")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "scaling.json"))
    args = ap.parse_args()
    seeds_list = [1, 4, 16] if args.small else [1, 16, 256, 1024]
    envs_list = [4, 16, 64] if args.small else [4, 64, 1024, 4096]
    base = {
        "ppo": ppo.Config(env="CartPole-v1", total_timesteps=100_000 if args.small else 500_000),
        "sac": sac.Config(env="Pendulum-v1", total_timesteps=5_000 if args.small else 20_000,
                          learning_starts=1_000, num_log_points=5, hidden_sizes=(64, 64) if args.small else (256, 256)),
    }
    mod = {"ppo": ppo, "sac": sac}
    device = jax.devices()[0]
    print(f"device: {device.platform} ({device.device_kind}), jax {jax.__version__}, repeats {args.repeats}")
    rows = []
    for name in args.algos.split(","):
        cfg = base[name]
        one = None
        for seeds in seeds_list:
            trainer = mod[name].make(cfg)
            c_s, r_s = timed(trainer.train, seeds, args.repeats)
            steps = trainer.num_log_points * trainer.steps_per_log_point
            one = r_s if seeds == 1 else one
            rows.append({"algo": name, "sweep": "seeds", "seeds": seeds, "num_envs": cfg.num_envs, "compile_s": c_s,
                         "run_s": r_s, "steps_per_s": steps * seeds / r_s, "per_seed_cost": r_s / (seeds * one)})
            print(f"  {name} seeds={seeds}: run {r_s:.2f}s", flush=True)
        for n in envs_list:
            c = cfg.replace(num_envs=n)
            if name == "ppo":
                c = c.replace(num_minibatches=4)
            else:
                c = c.replace(gradient_steps=n, learning_starts=max(1_000, n))
            trainer = mod[name].make(c)
            c_s, r_s = timed(trainer.train, 1, args.repeats)
            steps = trainer.num_log_points * trainer.steps_per_log_point
            rows.append({"algo": name, "sweep": "num_envs", "seeds": 1, "num_envs": n, "compile_s": c_s,
                         "run_s": r_s, "steps_per_s": steps / r_s, "per_seed_cost": None})
            print(f"  {name} num_envs={n}: run {r_s:.2f}s", flush=True)

    hdr = f"{'algo':<6}{'seeds':>7}{'num_envs':>10}{'compile s':>11}{'run s':>9}{'env steps/s':>14}{'per-seed cost':>15}"
    print("\n" + hdr + "\n" + "-" * len(hdr))
    for r in rows:
        ratio = "" if r["per_seed_cost"] is None else f"{r['per_seed_cost']:.3f}"
        print(f"{r['algo']:<6}{r['seeds']:>7}{r['num_envs']:>10}{r['compile_s']:>11.2f}{r['run_s']:>9.2f}"
              f"{r['steps_per_s']:>14,.0f}{ratio:>15}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"device": str(device), "jax": jax.__version__, "small": args.small, "rows": rows},
                              indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
