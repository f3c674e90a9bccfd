"""The command line's persistent compilation cache: compile time of a first run against a repeated run.

    python benchmarks/compile_cache.py                       # PPO and SAC on classic control
    python benchmarks/compile_cache.py --algos ppo --runs 3

Each algorithm is trained three ways with ``purerl train`` in fresh processes: without the cache, then twice
with an empty cache directory (the first run fills it, the second reads it). The table gives the compile
time each run reports (trace + XLA, everything before the first update) and the whole process time; the
numbers, with the date, the machine and the jax version (benchmarks/provenance.py), go to ``--out``
(default benchmarks/results/compile_cache.json).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

CASES = {
    "ppo": ["ppo", "--env", "CartPole-v1", "--total-timesteps", "100000"],
    "sac": ["sac", "--env", "Pendulum-v1", "--total-timesteps", "2000", "--set", "learning_starts=500",
            "--set", "num_log_points=4"],
    "trpo": ["trpo", "--env", "CartPole-v1", "--total-timesteps", "50000"],
}


def run_once(case: list[str], out: Path, cache: str | None) -> dict:
    cmd = [sys.executable, "-m", "purerl.cli", "train", *case, "--no-progress", "--overwrite", "--out", str(out)]
    cmd += ["--no-cache"] if cache is None else ["--cache-dir", cache]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{p.stderr[-3000:]}")
    summary = json.loads((out / "summary.json").read_text())
    return {"compile_s": summary["compile_s"], "run_s": summary["run_s"], "process_s": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--algos", default="ppo,sac", help=f"comma-separated, from {', '.join(CASES)}")
    ap.add_argument("--out", default=str(HERE / "results" / "compile_cache.json"))
    args = ap.parse_args()
    sys.path.insert(0, str(HERE))
    from provenance import describe, provenance

    prov = provenance()
    print(describe(prov), flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for algo in args.algos.split(","):
            cache = os.path.join(tmp, f"cache-{algo}")
            out = Path(tmp) / algo
            no_cache = run_once(CASES[algo], out, None)
            first = run_once(CASES[algo], out, cache)
            repeat = run_once(CASES[algo], out, cache)
            rows.append((algo, no_cache, first, repeat))
            print(f"  done {algo}", flush=True)
    hdr = (f"{'algo':<6}{'no cache':>10}{'first':>10}{'repeat':>10}{'repeat/first':>14}"
           f"{'process: first':>16}{'repeat':>9}")
    print("\ncompile seconds (as `purerl train` reports them) and whole-process seconds")
    print(hdr + "\n" + "-" * len(hdr))
    for algo, nc, first, rep in rows:
        print(f"{algo:<6}{nc['compile_s']:>10.2f}{first['compile_s']:>10.2f}{rep['compile_s']:>10.2f}"
              f"{rep['compile_s'] / first['compile_s']:>14.2f}{first['process_s']:>16.1f}{rep['process_s']:>9.1f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"provenance": prov, "cases": {a: CASES[a] for a, *_ in rows},
                               "rows": [{"algo": a, "no_cache": nc, "first": f, "repeat": r} for a, nc, f, r in rows]},
                              indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
