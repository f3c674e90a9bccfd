"""purerl against rejax, timed side by side in one run, with PureJaxRL's published figures for reference.

    bash ../shared/peers/setup.sh              # once: .peers-venv with rejax 0.1.3 (gymnax's old API)
    python benchmarks/peers.py --small         # every row on a CPU (about 20 minutes on 2 cores)
    python benchmarks/peers.py --rows ppo1,sac --rounds 5

Each system runs in its own worker process (rejax from --peers-python), fresh for every round so that
compilation is never served from memory; the persistent compilation cache is off. purerl compiles as its
README shows (``purerl.jit``: XLA options chosen for its programs, see ``purerl/compiling.py``); a third
worker compiles the same program with plain ``jax.jit`` (compile time only), reported on its own line. Within a round the
systems take turns: A compiles, B compiles, then A, B run their compiled program once to warm up and
--runs more times each, alternated (A B A B). "compile" is ``jax.jit(f).lower(x).compile()``, "run" a later
call of the compiled program; the table reports medians over rounds and runs, and purerl / fastest peer.

Rows (identical work for both systems: env steps, envs, rollout and minibatch shapes, networks, gradient
steps; each library keeps its own defaults for the rest):
* ppo1  PPO CartPole-v1, 4 envs x 128 steps, 4 epochs x 4 minibatches, 64x64 tanh, 5e5 steps, 1 seed;
* ppo16 the same, 16 seeds vmapped in one program;
* sac   SAC Pendulum-v1, 20k steps, 1 env, batch 256, one gradient step per env step after 2048 random
        steps, 64x64 ReLU networks, twin critics, 4 evaluations;
* cli   `purerl train ppo --env CartPole-v1` with an empty compilation cache (whole command, wall clock)
        against the API's compile + run of the same config (ppo1 above); then the same command again with
        the cache it filled.
PureJaxRL is a script rather than a package; its column quotes the figures measured on this kind of machine
(2-core CPU, jax 0.9.2) that the speed issue gives.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PUREJAXRL = {"ppo1": {"run_s": 3.66, "compile_s": 7.4}, "ppo16": {"run_s": 42.2}}

TOTAL_PPO, TOTAL_SAC, SAC_WARMUP = 500_000, 20_000, 2_048


# ----------------------------------------------------------------------------- workers (one per system)

def _purerl_program(row: str):
    import jax
    import numpy as np

    from purerl import ppo, sac

    if row.startswith("ppo"):
        seeds = 16 if row == "ppo16" else 1
        train = ppo.make_train(ppo.Config(env="CartPole-v1", total_timesteps=TOTAL_PPO))

        def final(res):
            ret = np.asarray(res.metrics["episode_return"]).reshape(seeds, -1)
            return float(np.mean(ret[:, -max(1, ret.shape[1] // 20):]))
    else:
        seeds = 1
        train = sac.make_train(sac.Config(env="Pendulum-v1", total_timesteps=TOTAL_SAC, hidden_sizes=(64, 64),
                                          learning_starts=SAC_WARMUP, num_evals=4))

        def final(res):
            return float(np.mean(np.asarray(res.metrics["eval_return"])[..., -1]))
    keys = jax.random.split(jax.random.key(0), seeds)
    return (jax.vmap(train) if seeds > 1 else (lambda k: train(k[0]))), keys, final


def _rejax_program(row: str):
    import jax
    import numpy as np
    import rejax

    if row.startswith("ppo"):
        seeds = 16 if row == "ppo16" else 1
        algo = rejax.PPO.create(env="CartPole-v1", num_envs=4, num_steps=128, num_epochs=4, num_minibatches=4,
                                learning_rate=2.5e-4, total_timesteps=TOTAL_PPO, eval_freq=TOTAL_PPO,
                                skip_initial_evaluation=True, ent_coef=0.01, max_grad_norm=0.5, gamma=0.99,
                                gae_lambda=0.95, clip_eps=0.2, vf_coef=0.5,
                                agent_kwargs={"activation": "tanh", "hidden_layer_sizes": (64, 64)})
    else:
        seeds = 1
        algo = rejax.SAC.create(env="Pendulum-v1", total_timesteps=TOTAL_SAC, eval_freq=TOTAL_SAC // 4,
                                skip_initial_evaluation=True, fill_buffer=SAC_WARMUP, batch_size=256, num_envs=1)

    def final(res):
        returns = np.asarray(res[1][1])  # [(seeds,) evaluations, episodes]
        return float(np.mean(returns.reshape(seeds, returns.shape[-2], -1)[:, -1]))

    keys = jax.random.split(jax.random.key(0), seeds)
    return (jax.vmap(algo.train) if seeds > 1 else (lambda k: algo.train(k[0]))), keys, final


def worker(system: str, row: str) -> None:
    """Answer ``compile`` / ``run`` / ``quit`` lines on stdin with one JSON line each on stdout. purerl
    compiles with ``purerl.jit``'s options (its documented way), "purerl-jax.jit" with plain ``jax.jit``."""
    import jax

    fn, keys, final = (_rejax_program if system == "rejax" else _purerl_program)(row)
    options = {}
    if system == "purerl":
        from purerl.compiling import compile_options

        options = compile_options()
    compiled = None
    out = sys.stdout
    sys.stdout = sys.stderr  # libraries' prints must not break the protocol
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "compile":
            t0 = time.perf_counter()
            compiled = jax.jit(fn).lower(keys).compile(compiler_options=options)
            reply = {"compile_s": time.perf_counter() - t0}
        elif cmd == "run":
            t0 = time.perf_counter()
            res = jax.block_until_ready(compiled(keys))
            reply = {"run_s": time.perf_counter() - t0, "return": final(res)}
        else:
            break
        out.write(json.dumps(reply) + "\n")
        out.flush()


class Worker:
    def __init__(self, python: str, system: str, row: str):
        env = dict(os.environ, JAX_ENABLE_COMPILATION_CACHE="false", TF_CPP_MIN_LOG_LEVEL="3",
                   PYTHONWARNINGS="ignore")
        if system.startswith("purerl"):
            env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        self.p = subprocess.Popen([python, str(Path(__file__).resolve()), "--worker", system, row],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  text=True, env=env, cwd=tempfile.gettempdir())

    def ask(self, cmd: str) -> dict:
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError(f"worker died while answering {cmd!r} (run it with --worker to see why)")
        return json.loads(line)

    def close(self) -> None:
        try:
            self.p.stdin.write("quit\n")
            self.p.stdin.flush()
        except BrokenPipeError:
            pass
        self.p.wait(timeout=60)


# ----------------------------------------------------------------------------- the side-by-side runs

def compare(row: str, systems: dict[str, str], rounds: int, runs: int, compile_only: tuple = ()) -> dict:
    """Medians of compile and run time per system, alternating the systems within every round (the systems
    in ``compile_only`` are only compiled)."""
    got = {s: {"compile_s": [], "run_s": [], "return": []} for s in systems}
    for r in range(rounds):
        order = list(systems) if r % 2 == 0 else list(reversed(systems))
        workers = {s: Worker(systems[s], s, row) for s in order}
        try:
            for s in order:
                got[s]["compile_s"].append(workers[s].ask("compile")["compile_s"])
            timed = [s for s in order if s not in compile_only]
            for s in timed:
                workers[s].ask("run")  # the first call of a compiled program is not timed
            for _ in range(runs):
                for s in timed:
                    rep = workers[s].ask("run")
                    got[s]["run_s"].append(rep["run_s"])
                    got[s]["return"].append(rep["return"])
        finally:
            for w in workers.values():
                w.close()
        print(f"  {row} round {r + 1}/{rounds}: " + ", ".join(
            f"{s} compile {got[s]['compile_s'][-1]:.2f}s" + (f" run {got[s]['run_s'][-1]:.2f}s" if got[s]["run_s"]
                                                             else "") for s in order), flush=True)
    med = lambda v: statistics.median(v) if v else None  # noqa: E731
    return {s: {"compile_s": med(v["compile_s"]), "run_s": med(v["run_s"]), "return": med(v["return"]),
                "all_run_s": v["run_s"], "all_compile_s": v["compile_s"]} for s, v in got.items()}


def cli_row(rounds: int) -> dict:
    """Wall clock of the command line's default first run (empty cache) and of a repeated run."""
    first, repeat = [], []
    for r in range(rounds):
        with tempfile.TemporaryDirectory() as d:
            # the `purerl` command of this checkout (its entry point is purerl.cli:main)
            env = dict(os.environ, PURERL_CACHE_DIR=str(Path(d) / "cache"),
                       PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
            for runs in (first, repeat):
                out = Path(d) / f"run{len(runs)}-{len(first)}"
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-m", "purerl.cli", "train", "ppo", "--env", "CartPole-v1",
                                "--out", str(out), "--no-progress"],
                               check=True, env=env, cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                runs.append(time.perf_counter() - t0)
        print(f"  cli round {r + 1}/{rounds}: first {first[-1]:.2f}s, repeated {repeat[-1]:.2f}s", flush=True)
    return {"first_s": statistics.median(first), "repeat_s": statistics.median(repeat), "all_first_s": first,
            "all_repeat_s": repeat}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", action="store_true", help="CPU-sized: 3 rounds of 1 timed run (the rows are the same)")
    ap.add_argument("--rows", default="ppo1,ppo16,sac,cli")
    ap.add_argument("--rounds", type=int, default=None, help="fresh worker pairs per row (default 3, 5 without --small)")
    ap.add_argument("--runs", type=int, default=None, help="timed runs per system and round (default 1 with --small, "
                                                             "else 2)")
    ap.add_argument("--peers-python", default=str(ROOT / ".peers-venv" / "bin" / "python"),
                    help="python of the environment made by ../shared/peers/setup.sh")
    ap.add_argument("--out", default=str(HERE / "results" / "peers.json"))
    ap.add_argument("--worker", nargs=2, metavar=("SYSTEM", "ROW"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    if not Path(args.peers_python).exists():
        sys.exit(f"peers.py: no rejax environment at {args.peers_python}: run `bash ../shared/peers/setup.sh` "
                 f"from the project root (or pass --peers-python)")
    rounds = args.rounds or (3 if args.small else 5)
    runs = args.runs or (1 if args.small else 2)
    import jax

    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
               f"{jax.devices()[0].platform}, jax {jax.__version__}, python {platform.python_version()}")
    print(f"{time.strftime('%Y-%m-%d')}: {machine}; {rounds} rounds x {runs} runs", flush=True)
    systems = {"purerl": sys.executable, "purerl-jax.jit": sys.executable, "rejax": args.peers_python}
    res = {}
    for row in args.rows.split(","):
        if row == "cli":
            continue
        res[row] = compare(row, systems, rounds, runs, compile_only=("purerl-jax.jit",))
    if "cli" in args.rows.split(","):
        res["cli"] = cli_row(rounds)
        if "ppo1" not in res:
            res["ppo1"] = compare("ppo1", {"purerl": sys.executable}, rounds, runs)

    labels = {"ppo1": "PPO CartPole 5e5, 1 seed", "ppo16": "PPO CartPole 5e5, 16 seeds", "sac": "SAC Pendulum 20k, 64x64"}
    lines = ["| workload | PureJaxRL (quoted) | rejax 0.1.3 | purerl | purerl / fastest peer |",
             "|---|---|---|---|---|"]
    table = []
    for row in ("ppo1", "ppo16", "sac"):
        if row not in res or "rejax" not in res[row]:
            continue
        for what in ("run_s", "compile_s"):
            pj = PUREJAXRL.get(row, {}).get(what)
            peers = [v for v in (pj, res[row]["rejax"][what]) if v is not None]
            ratio = res[row]["purerl"][what] / min(peers)
            table.append({"row": row, "what": what, "purejaxrl": pj, "rejax": res[row]["rejax"][what],
                          "purerl": res[row]["purerl"][what], "ratio": ratio})
            lines.append(f"| {labels[row]}: {what[:-2]} | {f'{pj:.2f} s' if pj else '-'} | "
                         f"{res[row]['rejax'][what]:.2f} s | {res[row]['purerl'][what]:.2f} s | {ratio:.2f} |")
            if what == "compile_s":
                plain = res[row]["purerl-jax.jit"]["compile_s"]
                lines.append(f"| {labels[row]}: compile with plain `jax.jit` | | | {plain:.2f} s | "
                             f"{plain / min(peers):.2f} |")
                table.append({"row": row, "what": "compile_s_jax_jit", "purerl": plain, "ratio": plain / min(peers)})
        lines.append(f"| {labels[row]}: final return | | {res[row]['rejax']['return']:.0f} | "
                     f"{res[row]['purerl']['return']:.0f} | |")
    if "cli" in res:
        api = res["ppo1"]["purerl"]["compile_s"] + res["ppo1"]["purerl"]["run_s"]
        c = res["cli"]
        lines.append(f"| `purerl train ppo --env CartPole-v1`, empty cache: whole command | API compile + run "
                     f"{api:.2f} s | | {c['first_s']:.2f} s | {c['first_s'] / api:.2f} x API |")
        lines.append(f"| the same command again (cache filled) | | | {c['repeat_s']:.2f} s | "
                     f"{c['repeat_s'] / api:.2f} x API |")
        table.append({"row": "cli", "api_s": api, **{k: v for k, v in c.items()}})
    print("\n" + machine)
    print("\n".join(lines))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "machine": machine, "rounds": rounds,
                               "runs": runs, "results": res, "table": table, "markdown": lines}, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
