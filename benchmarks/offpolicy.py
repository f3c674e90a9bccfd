"""SAC, TD3 and DDPG: compile time, run time, env steps/s and final return.

    python benchmarks/offpolicy.py            # full rows (meant for a GPU): 64 seeds, Brax hopper 524k steps
    python benchmarks/offpolicy.py --small    # CPU-sized: 4 seeds for the vmapped rows, a short Brax row

Rows: each algorithm with its Config defaults on Pendulum-v1 for 20k env steps, 1 seed and N seeds vmapped
(N = 64, or 4 with --small); SAC once more with (64, 64) networks (the size of the small-network
implementations); SAC on brax/hopper. "final return" is the deterministic evaluation at the last log point
(mean over seeds); "solved" is the fraction of seeds whose last evaluation is >= -250 (Pendulum rows).
Compile time (trace + XLA) is reported separately from run time (median of --repeats runs).
Results are printed as a table and written to benchmarks/results/offpolicy.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import jax
import numpy as np

from purerl import ddpg, sac, td3
from purerl.run.bench import measure

def rows(small: bool, brax_steps: int) -> dict:
    seeds = 4 if small else 64
    pend = dict(env="Pendulum-v1")
    # Brax's published SAC settings for hopper: 128 envs, 64 gradient steps of 512 per env step (a replay
    # ratio of 0.5), discount 0.997, reward scale 30, learning rate 6e-4, 8192 warm-up steps.
    brax_cfg = sac.Config(env="brax/hopper", total_timesteps=brax_steps, num_envs=128, gradient_steps=64,
                          batch_size=512, learning_starts=8_192, num_log_points=8, eval_episodes=16, gamma=0.997,
                          reward_scale=30.0, actor_lr=6e-4, critic_lr=6e-4, alpha_lr=6e-4)
    return {
        "sac": ("SAC Pendulum 20k", sac, sac.Config(**pend, total_timesteps=20_000), 1),
        "sac-seeds": (f"SAC Pendulum 20k x{seeds}", sac, sac.Config(**pend, total_timesteps=20_000), seeds),
        "sac-64net": ("SAC (64,64) Pendulum 20k", sac,
                      sac.Config(**pend, total_timesteps=20_000, hidden_sizes=(64, 64)), 1),
        "td3": ("TD3 Pendulum 20k", td3, td3.Config(**pend, total_timesteps=20_000), 1),
        "td3-seeds": (f"TD3 Pendulum 20k x{seeds}", td3, td3.Config(**pend, total_timesteps=20_000), seeds),
        "ddpg": ("DDPG Pendulum 20k", ddpg, ddpg.Config(**pend, total_timesteps=20_000), 1),
        "ddpg-seeds": (f"DDPG Pendulum 20k x{seeds}", ddpg, ddpg.Config(**pend, total_timesteps=20_000), seeds),
        "brax": (f"SAC brax/hopper {brax_steps // 1000}k", sac, brax_cfg, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", action="store_true", help="CPU-sized: 4 seeds for the vmapped rows")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per row (median reported)")
    ap.add_argument("--rows", default="sac,sac-seeds,sac-64net,td3,td3-seeds,ddpg,ddpg-seeds,brax",
                    help="comma-separated subset of the rows")
    ap.add_argument("--brax-steps", type=int, default=None, help="env steps of the Brax row (524288; 32768 small)")
    ap.add_argument("--unroll", type=int, default=None, help="override the Config's unroll on every row")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "offpolicy.json"))
    args = ap.parse_args()
    brax_steps = args.brax_steps or (32_768 if args.small else 524_288)
    table = rows(args.small, brax_steps)

    device = jax.devices()[0]
    print(f"device: {device.platform} ({device.device_kind}), jax {jax.__version__}, repeats {args.repeats}")
    results = []
    for name in args.rows.split(","):
        label, algo, cfg, seeds = table[name]
        if args.unroll is not None:
            cfg = cfg.replace(unroll=args.unroll)
            label += f" u{args.unroll}"
        keys = jax.random.split(jax.random.key(0), seeds)
        train = algo.make_train(cfg)
        fn = jax.vmap(train) if seeds > 1 else (lambda k, train=train: train(k[0]))
        repeats = 1 if name == "brax" else args.repeats
        c_s, r_s, res = measure(fn, keys, repeats)
        ev = np.asarray(res.metrics["eval_return"]).reshape(seeds, -1)
        steps = int(np.asarray(res.metrics["env_steps"]).reshape(seeds, -1)[0, -1])
        row = {"row": label, "name": name, "seeds": seeds, "env_steps": steps * seeds, "compile_s": c_s,
               "run_s": r_s, "steps_per_s": steps * seeds / r_s, "final_return": float(ev[:, -1].mean()),
               "solved": float(np.mean(ev[:, -1] >= -250)) if "Pendulum" in label else None,
               "eval_curve": ev.mean(0).tolist()}
        results.append(row)
        print(f"  done {label}: compile {c_s:.1f}s run {r_s:.1f}s return {row['final_return']:.0f}", flush=True)

    hdr = f"{'config':<30}{'compile s':>10}{'run s':>9}{'steps/s':>12}{'return':>9}{'solved':>8}"
    print("\n" + hdr + "\n" + "-" * len(hdr))
    for r in results:
        solved = "" if r["solved"] is None else f"{100 * r['solved']:.0f}%"
        print(f"{r['row']:<30}{r['compile_s']:>10.2f}{r['run_s']:>9.2f}{r['steps_per_s']:>12,.0f}"
              f"{r['final_return']:>9.1f}{solved:>8}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"device": str(device), "jax": jax.__version__, "small": args.small,
                               "results": results}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
