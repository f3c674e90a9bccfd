"""One sweep on the same 4 CPU devices, run as 1 process x 4 devices and as 2 processes x 2 devices
(``jax.distributed`` on 127.0.0.1, gloo collectives): what the second process costs. The total device count
is the same, so this measures what the multi-process runtime costs (starting and connecting the processes,
each process compiling the program itself, feeding its shards, gathering the metrics), not a speed-up: more
hosts bring more devices, which this machine cannot show.

    python benchmarks/multihost.py                   # PPO CartPole, 8 learning rates x 2 seeds, 3 rounds
    python benchmarks/multihost.py --rounds 1 --out /tmp/multihost.json

Each round runs both layouts one after the other (in alternating order); every process is a fresh
interpreter with the compilation cache off. Per layout the table gives the median over rounds of: the
wall time from starting the processes to the last one ending (imports, connecting, compiling, running,
gathering, shutting down), the sweep's compile time and its run time (``SweepResult.compile_s`` and
``run_s`` of process 0: the run includes gathering the metrics to every process). Writes
docs/results/multihost.json (its ``markdown`` lines are the README's table) with the date, machine and
versions (benchmarks/provenance.py).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from provenance import describe, provenance  # noqa: E402  (this folder's)

RESULTS = ROOT / "docs" / "results" / "multihost.json"
LAYOUTS = {"1 process x 4 devices": (1, 4), "2 processes x 2 devices": (2, 2)}


def worker(process_id: int, processes: int, port: int, out: str, configs: int, seeds: int, steps: int) -> None:
    import jax

    if processes > 1:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=processes,
                                   process_id=process_id, initialization_timeout=120, heartbeat_timeout_seconds=60)
    import numpy as np

    from purerl import ppo, sweep

    cfg = ppo.Config(env="CartPole-v1", num_envs=8, num_steps=32, total_timesteps=steps, num_minibatches=2,
                     num_epochs=2, hidden_sizes=(32, 32))
    lrs = np.geomspace(1e-4, 1e-2, configs).tolist()
    res = sweep.run(ppo, cfg, grid={"learning_rate": lrs}, seeds=seeds, log=None)
    if process_id == 0:
        Path(out).write_text(json.dumps({"compile_s": res.compile_s, "run_s": res.run_s, "devices": res.devices,
                                         "processes": jax.process_count(),
                                         "final_return_mean": float(np.mean(res.final_returns()))}))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(processes: int, devices: int, args: argparse.Namespace, out: Path) -> dict:
    """Start the layout's processes, wait for all (``--timeout`` each round), kill any left; process 0's
    numbers and the wall time."""
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
               JAX_ENABLE_COMPILATION_CACHE="false")
    port = _free_port()
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", str(i), str(processes), str(port), str(out),
                               "--configs", str(args.configs), "--seeds", str(args.seeds), "--steps", str(args.steps)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
             for i in range(processes)]
    try:
        errs = [p.communicate(timeout=args.timeout)[1] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    wall = time.perf_counter() - t0
    for i, p in enumerate(procs):
        if p.returncode != 0:
            raise SystemExit(f"process {i} of {processes} failed ({p.returncode}): "
                             f"{errs[i].decode(errors='replace')[-2000:]}")
    return {**json.loads(out.read_text()), "wall_s": wall}


def table(rows: dict) -> list[str]:
    base = rows["1 process x 4 devices"]["wall_s"]
    lines = ["| layout (4 CPU devices in all) | wall s | compile s | run s | wall vs 1 process |",
             "|---|---|---|---|---|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['wall_s']:.1f} | {r['compile_s']:.1f} | {r['run_s']:.2f} | "
                     f"{r['wall_s'] / base:.2f}x |")
    return lines


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", type=int, default=8, help="learning rates swept (default %(default)s)")
    ap.add_argument("--seeds", type=int, default=2, help="seeds per learning rate (default %(default)s)")
    ap.add_argument("--steps", type=int, default=8 * 32 * 600, help="env steps per run (default %(default)s)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of both layouts; medians reported (default "
                    "%(default)s)")
    ap.add_argument("--timeout", type=float, default=900, help="seconds a layout may take in one round")
    ap.add_argument("--out", default=str(RESULTS), help="results JSON (default docs/results/multihost.json)")
    ap.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        i, n, port, out = args.worker
        worker(int(i), int(n), int(port), out, args.configs, args.seeds, args.steps)
        return
    record = {"provenance": provenance(), "sweep": {"algo": "ppo", "env": "CartPole-v1", "configs": args.configs,
              "seeds": args.seeds, "env_steps_per_run": args.steps, "num_envs": 8, "num_steps": 32,
              "hidden_sizes": [32, 32]}, "rounds": args.rounds}
    tmp = Path(args.out).with_suffix(".part.json")
    runs: dict[str, list[dict]] = {name: [] for name in LAYOUTS}
    for r in range(args.rounds):
        order = list(LAYOUTS) if r % 2 == 0 else list(reversed(LAYOUTS))
        for name in order:
            res = launch(*LAYOUTS[name], args, tmp)
            runs[name].append(res)
            print(f"round {r + 1}/{args.rounds}  {name:<24} wall {res['wall_s']:6.1f} s  compile "
                  f"{res['compile_s']:6.1f} s  run {res['run_s']:6.2f} s", flush=True)
    tmp.unlink(missing_ok=True)
    rows = {name: {k: statistics.median(x[k] for x in rs) for k in ("wall_s", "compile_s", "run_s")}
            for name, rs in runs.items()}
    lines = table(rows)
    record.update({"runs": runs, "median": rows, "markdown": lines})
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print()
    print(f"{args.configs} configs x {args.seeds} seeds of PPO on CartPole-v1, {args.steps} env steps each; "
          f"medians of {args.rounds} round(s); {describe(record['provenance'])}")
    print("\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
