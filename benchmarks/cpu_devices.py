"""Seeds over a CPU's cores: the same vmapped training program on one CPU device and split over one device per
core (``purerl.run.devices``), alternated in fresh processes, compile apart from run.

    python benchmarks/cpu_devices.py                    # PPO CartPole-v1, 16 seeds x 1e5 steps, 3 rounds
    python benchmarks/cpu_devices.py --algo sac --env Pendulum-v1 --seeds 8 --steps 10000 --rounds 5

Each measurement is ``purerl bench ALGO --seeds S --cpu-devices N`` in a process of its own (compile time is the
first compile, the run time the second call of the compiled program); within a round the two settings take turns
(one device, then all cores; the next round the other way round), so a machine's other jobs weigh on both alike.
Writes ``docs/results/cpu-devices.json`` (``--out``) with every timing, the medians, their ratio and the
provenance; docs/benchmarks.md shows its table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from provenance import cores, describe, provenance  # noqa: E402


def bench_once(algo: str, env: str, seeds: int, steps: int, devices: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        cmd = [sys.executable, "-m", "purerl.cli", "bench", algo, "--env", env, "--seeds", str(seeds), "--steps",
               str(steps), "--cpu-devices", str(devices), "--out", str(out)]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp)
        if done.returncode != 0:
            raise SystemExit(f"bench failed ({' '.join(cmd[2:])}): {done.stderr.strip().splitlines()[-1:]}")
        row = json.loads(out.read_text())["rows"][0]
        return {"devices": devices, "compile_s": row["compile_s"], "run_s": row["run_s"]}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--algo", default="ppo")
    ap.add_argument("--env", default="CartPole-v1")
    ap.add_argument("--seeds", type=int, default=16)
    ap.add_argument("--steps", type=int, default=100_000, help="env steps per seed")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "docs" / "results" / "cpu-devices.json"))
    args = ap.parse_args(argv)
    n = cores()
    if n < 2:
        raise SystemExit("this machine has one core: nothing to split over")
    prov = provenance(argv if argv is None else [str(Path(__file__).relative_to(ROOT)), *argv])
    print(describe(prov), flush=True)
    timings = []
    for r in range(args.rounds):
        for devices in ((1, n) if r % 2 == 0 else (n, 1)):
            t = bench_once(args.algo, args.env, args.seeds, args.steps, devices)
            timings.append({"round": r, **t})
            print(f"  round {r + 1}: {devices} device(s): compile {t['compile_s']:.2f} s, run {t['run_s']:.2f} s",
                  flush=True)
    med = {d: {k: statistics.median(t[k] for t in timings if t["devices"] == d) for k in ("compile_s", "run_s")}
           for d in (1, n)}
    spread = {d: {k: (min(t[k] for t in timings if t["devices"] == d), max(t[k] for t in timings if t["devices"] == d))
                  for k in ("compile_s", "run_s")} for d in (1, n)}
    ratio = med[n]["run_s"] / med[1]["run_s"]
    what = f"{args.algo.upper()} {args.env}, {args.seeds} seeds x {args.steps:,} env steps"
    markdown = [f"Measured by `python benchmarks/cpu_devices.py` ({describe(prov)}), {args.rounds} rounds, "
                f"alternated: {what}.", "",
                "| devices | run s, median [min, max] | compile s, median [min, max] |", "|---|---|---|"]
    for d in (1, n):
        markdown.append(f"| {d} {'(one per core)' if d == n else '(jax default)'} | {med[d]['run_s']:.2f} "
                        f"[{spread[d]['run_s'][0]:.2f}, {spread[d]['run_s'][1]:.2f}] | {med[d]['compile_s']:.2f} "
                        f"[{spread[d]['compile_s'][0]:.2f}, {spread[d]['compile_s'][1]:.2f}] |")
    markdown += ["", f"Run time over all cores / one device: **{ratio:.2f}**."]
    record = {"provenance": prov, "algo": args.algo, "env": args.env, "seeds": args.seeds, "steps": args.steps,
              "rounds": args.rounds, "cores": n, "timings": timings, "median": {str(k): v for k, v in med.items()},
              "run_ratio": ratio, "markdown": markdown}
    Path(args.out).write_text(json.dumps(record, indent=1) + "\n")
    print("\n".join(markdown))


if __name__ == "__main__":
    main()
