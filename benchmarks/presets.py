"""What each shipped preset (``purerl/presets/*.toml``) reaches: seeds vmapped in one program, then evaluated.

    python benchmarks/presets.py                       # every classic-control preset, 4 seeds each
    python benchmarks/presets.py --only ppo-cartpole sac-pendulum --seeds 8
    python benchmarks/presets.py --brax                # the Brax presets too (sized for a GPU)
    python benchmarks/presets.py --write               # also rewrite each measured preset's `reaches` line

For each preset: the config is ``purerl.presets.load(name).apply(module.Config)``; ``--seeds`` seeds train as
one jitted ``jax.vmap`` of ``train`` (compile time taken apart from run time, see ``purerl.run.bench.measure``), then each
seed's final policy is evaluated deterministically for ``--eval-episodes`` episodes (raw rewards, the run's
observation statistics). Columns: env steps per seed, compile s, run s (all seeds together), final training
return (per seed the mean episode return over the last 5% of log points; mean +- std over seeds) and eval
return (per seed the mean over its evaluation episodes; mean +- std over seeds).

``--write`` replaces only the ``reaches = "..."`` line of each measured preset's TOML file (the rest of the
file stays byte-identical) with the measured numbers, the machine and the date. Results also go to
benchmarks/results/presets.json. Run one measurement at a time on a shared CPU: timings are wall-clock.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import sys
from pathlib import Path

import jax
import numpy as np

from purerl import algorithms, presets
from purerl.run.bench import measure

REACHES = re.compile(r'^reaches[ \t]*=.*$', re.MULTILINE)


def is_brax(preset: presets.Preset) -> bool:
    return str(preset.config.get("env", "")).startswith("brax/")


def machine() -> str:
    """``CPU 2 cores`` or the accelerator's kind, and the jax version."""
    dev = jax.devices()[0]
    if dev.platform == "cpu":
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        where = f"CPU {cores} cores"
    else:
        where = f"{jax.device_count()}x {dev.device_kind}"
    return f"{where}, jax {jax.__version__}"


def measure_preset(name: str, seeds: int, eval_episodes: int, repeats: int) -> dict:
    preset = presets.load(name)
    algo = algorithms.module(preset.algo)      # the registry: ValueError naming the choices
    cfg = preset.apply(algo.Config)
    trainer = algo.make(cfg)
    keys = jax.random.split(jax.random.key(0), seeds)
    compile_s, run_s, res = measure(jax.vmap(trainer.train), keys, repeats)

    evaluate = jax.jit(jax.vmap(lambda s, k: trainer.evaluate(s, k, eval_episodes)))
    ev = evaluate(res.state, jax.random.split(jax.random.key(1), seeds))
    eval_per_seed = np.asarray(ev["returns"], dtype=np.float64).mean(axis=1)     # [seeds]

    ret = np.asarray(res.metrics["episode_return"], dtype=np.float64)             # [seeds, log points]
    tail = max(1, ret.shape[1] // 20)
    with np.errstate(all="ignore"):
        train_per_seed = np.nanmean(ret[:, -tail:], axis=1)
    steps = int(np.asarray(res.metrics["env_steps"])[0, -1])
    return {"preset": name, "algo": preset.algo, "env": cfg.env, "seeds": seeds, "env_steps": steps,
            "compile_s": compile_s, "run_s": run_s,
            "train_mean": float(np.nanmean(train_per_seed)), "train_std": float(np.nanstd(train_per_seed)),
            "eval_mean": float(eval_per_seed.mean()), "eval_std": float(eval_per_seed.std()),
            "eval_per_seed": eval_per_seed.tolist(), "train_per_seed": train_per_seed.tolist(),
            "eval_episodes": eval_episodes}


def reaches_text(r: dict, where: str, date: str) -> str:
    return (f"eval return {r['eval_mean']:.1f} +- {r['eval_std']:.1f} (final training return "
            f"{r['train_mean']:.1f} +- {r['train_std']:.1f}), mean +- std over {r['seeds']} "
            f"seed{'s' if r['seeds'] != 1 else ''} at "
            f"{r['env_steps']:,} env steps; {r['run_s']:.0f} s for all seeds in one program plus "
            f"{r['compile_s']:.0f} s compile (benchmarks/presets.py, {where}, {date})")


def write_reaches(name: str, text: str) -> None:
    """Replace the preset file's ``reaches`` line (or add one before the first table), nothing else."""
    path = presets.HERE / f"{name}.toml"
    body = path.read_text()
    line = "reaches = " + json.dumps(text, ensure_ascii=False)    # a JSON string is a TOML basic string
    if REACHES.search(body):
        new = REACHES.sub(lambda _: line, body, count=1)
    else:
        at = body.find("\n[")
        new = body + "\n" + line + "\n" if at < 0 else body[:at + 1] + line + "\n" + body[at + 1:]
    path.write_text(new)
    if presets.load(name).reaches != text:
        raise RuntimeError(f"{path}: the rewritten reaches line does not read back")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="+", metavar="NAME", help="these presets only (any, Brax ones included)")
    ap.add_argument("--brax", action="store_true", help="add the Brax presets (sized for an accelerator)")
    ap.add_argument("--seeds", type=int, default=4, help="seeds per preset, vmapped in one program")
    ap.add_argument("--eval-episodes", type=int, default=10, help="deterministic evaluation episodes per seed")
    ap.add_argument("--repeats", type=int, default=1, help="timed runs per preset (median reported)")
    ap.add_argument("--write", action="store_true", help="rewrite each measured preset's `reaches` line")
    ap.add_argument("--machine", default=None, help="machine text for --write (default: detected)")
    ap.add_argument("--date", default=datetime.date.today().isoformat(), help="date text for --write")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "presets.json"))
    args = ap.parse_args()

    available = presets.names()
    if args.only:
        unknown = [n for n in args.only if n not in available]
        if unknown:
            sys.exit(f"unknown preset(s) {', '.join(unknown)}; available: {', '.join(available)}")
        names = args.only
    else:
        names = [n for n in available if args.brax or not is_brax(presets.load(n))]
    where = args.machine or machine()
    device = jax.devices()[0]
    print(f"device: {device.platform} ({device.device_kind}), {where}; {len(names)} preset(s) x {args.seeds} "
          f"seed(s), {args.eval_episodes} eval episodes each", flush=True)

    results = []
    for name in names:
        r = measure_preset(name, args.seeds, args.eval_episodes, args.repeats)
        results.append(r)
        print(f"  {name}: compile {r['compile_s']:.1f}s run {r['run_s']:.1f}s "
              f"eval {r['eval_mean']:.1f} +- {r['eval_std']:.1f}", flush=True)
        if args.write:
            write_reaches(name, reaches_text(r, where, args.date))

    hdr = (f"{'preset':<28}{'algo':<14}{'env':<24}{'env steps':>11}{'compile s':>10}{'run s':>8}"
           f"{'final train return':>22}{'eval return':>20}")
    print("\n" + hdr + "\n" + "-" * len(hdr))
    for r in results:
        train = f"{r['train_mean']:.1f} +- {r['train_std']:.1f}"
        ev = f"{r['eval_mean']:.1f} +- {r['eval_std']:.1f}"
        print(f"{r['preset']:<28}{r['algo']:<14}{r['env']:<24}{r['env_steps']:>11,}{r['compile_s']:>10.1f}"
              f"{r['run_s']:>8.1f}{train:>22}{ev:>20}")
    print(f"(mean +- std over {args.seeds} seed(s); run s is all seeds together in one program)")
    if args.write:
        print(f"rewrote the reaches line of {len(results)} preset file(s) in {presets.HERE}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"device": str(device), "machine": where, "jax": jax.__version__,
                               "platform": platform.platform(), "date": args.date, "seeds": args.seeds,
                               "results": results}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
