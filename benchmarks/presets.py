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
benchmarks/results/presets.json, with the machine's load average at the start (wall-clock times on a shared
machine run longer; the reaches line says so). Run one measurement at a time on a shared CPU.

One preset, one set of numbers: the presets that ``benchmarks/algorithms.py`` measures for the algorithm pages
(docs/results/algorithms.json, 8 seeds, IQM with a 95% CI) take their ``reaches`` line from that file:

    python benchmarks/presets.py --from-results        # rewrite those presets' reaches lines from the file

and this script leaves them out of its own measurements. So with the presets that ``benchmarks/results.py`` measures
as the cells of its tables (docs/results/cells/*.json: the Brax presets beside Brax's own trainer, MinAtar, ...):

    python benchmarks/presets.py --from-cells          # rewrite those presets' reaches lines from their cell files
    python benchmarks/presets.py --from-cells --only ppo-brax-hopper

``readme_tables()`` is the README's Presets tables: the ones from docs/results/algorithms.json, those from the
cell files and the others from the reaches lines (tests/test_results_files.py checks the README against it;
``--from-results`` and ``--from-cells`` print it).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from provenance import load_average  # noqa: E402  (this folder's)

from purerl import algorithms, presets  # noqa: E402
from purerl.run.bench import measure  # noqa: E402

REACHES = re.compile(r'^reaches[ \t]*=.*$', re.MULTILINE)
ALGORITHM_RESULTS = HERE.parent / "docs" / "results" / "algorithms.json"
CELLS_DIR = HERE.parent / "docs" / "results" / "cells"
# a reaches line this script wrote: "eval return M +- S (final training return ...), mean +- std over N seed(s) at
# STEPS env steps; R s for all seeds in one program plus C s compile (benchmarks/presets.py, MACHINE, DATE)"
MEASURED = re.compile(r"^eval return (-?[\d.]+) \+- ([\d.]+) .*?over (\d+) seeds? at ([\d,]+) env steps; (\d+) s for "
                      r"all seeds .*\(benchmarks/presets\.py, (.*), (\d{4}-\d{2}-\d{2})\)$")


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
    load, cores = load_average(), len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
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
            "eval_episodes": eval_episodes, "load_average": load, "cores": cores}


def cell_load(prov: dict) -> float | None:
    """A results cell's load for :func:`shared_text`: the load average at its start (other jobs only), or the
    15-minute one at its end less the cores the cell itself kept busy, whichever is larger (a job that started
    after the cell shows only in the second)."""
    cores = prov.get("cores") or 0
    end = (prov.get("loadavg_end") or [None] * 3)[2]
    loads = [x for x in (prov.get("load_average"), None if end is None else end - cores) if x is not None]
    return max(loads) if loads else None


def shared_text(load: float | None, cores: int) -> str:
    """`` on a shared machine (load average 7.8 on 2 cores)`` where other jobs loaded the machine (its load
    average above its cores: wall-clock times run longer than on an idle machine), else nothing."""
    return f" on a shared machine (load average {load:.1f} on {cores} cores)" if load and load > cores else ""


def reaches_text(r: dict, where: str, date: str) -> str:
    shared = shared_text(r.get("load_average"), r.get("cores", 0))
    return (f"eval return {r['eval_mean']:.1f} +- {r['eval_std']:.1f} (final training return "
            f"{r['train_mean']:.1f} +- {r['train_std']:.1f}), mean +- std over {r['seeds']} "
            f"seed{'s' if r['seeds'] != 1 else ''} at "
            f"{r['env_steps']:,} env steps; {r['run_s']:.0f} s for all seeds in one program plus "
            f"{r['compile_s']:.0f} s compile{shared} (benchmarks/presets.py, {where}, {date})")


# --- the presets measured for the algorithm pages: docs/results/algorithms.json ----------------------------

def algorithm_runs(path: Path = ALGORITHM_RESULTS) -> dict[str, dict]:
    """``{preset: run}`` of the runs in docs/results/algorithms.json (benchmarks/algorithms.py)."""
    data = json.loads(Path(path).read_text())
    return {r["preset"]: r for runs in data["runs"].values() for r in runs}


def _where(p: dict) -> str:
    return (f"CPU {p['cores']} cores" if p.get("backend", "cpu") == "cpu"
            else f"{p.get('device_count', 1)}x {p['device']}") + f", jax {p['jax']}"


def reaches_from_run(r: dict) -> str:
    """A preset's reaches line from its run in docs/results/algorithms.json: the same numbers as its algorithm
    page."""
    f, e, b, p = r["final"], r["eval"], r["budget"], r["provenance"]
    shared = shared_text(p.get("load_average"), p["cores"])
    return (f"eval return IQM {e['iqm']:.1f} [95% CI {e['low']:.1f}, {e['high']:.1f}] over {b['seeds']} seeds, "
            f"{e['episodes']} new deterministic episodes each (return during training IQM {f['iqm']:.1f} "
            f"[{f['low']:.1f}, {f['high']:.1f}]), at {b['env_steps_per_seed']:,} env steps; {r['run_s']:.0f} s for "
            f"all seeds in one program plus {r['compile_s']:.0f} s compile{shared} (benchmarks/algorithms.py, "
            f"docs/results/algorithms.json, {_where(p)}, {p['date'][:10]})")


# --- the presets measured as cells of the results tables: docs/results/cells/*.json ----------------------------

def cell_runs(cells_dir: Path = CELLS_DIR) -> dict[str, list[dict]]:
    """``{preset: [cell record, ...]}`` of purerl's cells in ``cells_dir`` (benchmarks/results.py; not the tiny
    test runs, not other libraries' runs such as Brax's own trainer), one per env: the largest budget measured,
    and of equal budgets the newest."""
    out: dict[str, dict[str, dict]] = {}
    for path in sorted(Path(cells_dir).glob("*.json")):
        r = json.loads(path.read_text())
        if r.get("tiny") or r.get("library") or "preset" not in r:
            continue
        r["file"] = path.name
        old = out.setdefault(r["preset"], {}).get(r["env"])
        if old is None or (r["steps"], r["provenance"]["date"]) > (old["steps"], old["provenance"]["date"]):
            out[r["preset"]][r["env"]] = r
    return {name: sorted(envs.values(), key=lambda r: r["env"]) for name, envs in sorted(out.items())}


def _iqm(d: dict) -> str:
    return "no finished episode" if d.get("iqm") is None else f"{d['iqm']:.1f} [95% CI {d['low']:.1f}, {d['high']:.1f}]"


def _budget(r: dict) -> str:
    """``the CPU budget of benchmarks/results.py (the preset's own: 5e7 env steps; here num_envs 128)`` or
    ``the preset's own budget``."""
    if r.get("budget") == "full":
        return "the preset's own budget"
    preset = presets.load(r["preset"]).config
    changed = [f"{k} {v}" for k, v in r["config"].items() if k in preset and k not in ("total_timesteps", "env")
               and preset[k] != v and not isinstance(v, list)]
    return (f"the CPU budget of benchmarks/results.py (the preset's own: {_steps(int(preset['total_timesteps']))} "
            f"env steps{'; here ' + ', '.join(changed) if changed else ''})")


def reaches_from_cells(records: list[dict], cells_dir: Path = CELLS_DIR) -> str:
    """A preset's reaches line from its cells (one per env): purerl's numbers, the budget, the machine, and the
    reference each cell stands beside (Brax's own trainer at the same budget, with the ratio; a published number
    with its budget)."""
    first = records[0]
    p = first["provenance"]
    where = (f"CPU {p['cores']} cores" if p.get("backend", "cpu") == "cpu"
             else f"{p.get('device_count', 1)}x {p['device']}") + f", jax {p['jax']}"
    ev = first["eval"]
    protocol = (f"{ev['episodes']} new {'deterministic' if ev['deterministic'] else 'sampled'} episodes each")
    during = "return during training" if first["metric"] == "episode_return" else "periodic evaluation during training"
    parts = []
    for r in records:
        on = f"{r['env']}: " if len(records) > 1 else ""
        shared = shared_text(cell_load(r["provenance"]), r["provenance"]["cores"])
        text = (f"{on}eval return IQM {_iqm(r['eval'])} over {r['seeds']} seeds, {protocol} ({during} IQM "
                f"{_iqm(r['final'])}), at {r['steps']:,} env steps, {_budget(r)}; {r['run_s']:.0f} s for all seeds "
                f"in one program plus {r['compile_s']:.0f} s compile{shared}")
        for ref in r.get("references") or ([r["reference"]] if r.get("reference") else []):
            if ref.get("compare") == "eval" and "brax_trainers.py" in ref["source"]:
                b = json.loads((Path(cells_dir) / re.search(r"(brax-[\w.-]+\.json)", ref["source"]).group(1))
                               .read_text())
                text += (f". Beside it on the same machine, Brax's own trainer ({b['trainer']}, brax "
                         f"{b['brax_version']}) at the same budget and settings: eval return IQM {_iqm(b['eval'])} "
                         f"over {b['seeds']} seeds (purerl/Brax {r['eval']['iqm'] / b['eval']['iqm']:.2f}; Brax's own "
                         f"final evaluation, 128 sampled episodes: IQM {_iqm(b['final'])}); {b['run_s']:.0f} s of "
                         f"training for its seeds one after another plus about {b['compile_s']:.0f} s compile"
                         f"{shared_text(cell_load(b['provenance']), b['provenance']['cores'])}")
            elif ref.get("value") is not None:
                text += (f". Reference: {'about ' if ref.get('approximate') else ''}{ref['value']:g} at "
                         f"{ref['steps']:,} env steps ({ref['source'].split(' (')[0].split(':')[0]})")
        parts.append(text)
    return "; ".join(parts) + f" (benchmarks/results.py, docs/results/cells, {where}, {p['date'][:10]})"


def write_from_cells(names: list[str] | None = None, cells_dir: Path = CELLS_DIR) -> list[str]:
    """Rewrite the reaches line of every preset with cell files (or of ``names``) from those files."""
    runs = cell_runs(cells_dir)
    if names:
        missing = [n for n in names if n not in runs]
        if missing:
            raise SystemExit(f"presets.py: no cell files for {', '.join(missing)} in {cells_dir}")
        runs = {n: runs[n] for n in names}
    for name, records in runs.items():
        write_reaches(name, reaches_from_cells(records, cells_dir))
    return list(runs)


def _steps(n: int) -> str:
    """5e5, 4.9e5, 2e4: a budget as the README's tables write it."""
    mant, exp = f"{n:.1e}".split("e")
    return f"{mant.removesuffix('.0')}e{int(exp)}"


def _dates(dates: list[str]) -> str:
    d = sorted(set(dates))
    return d[0] if len(d) == 1 else ", ".join(d[:-1]) + " and " + d[-1]


def readme_tables(path: Path = ALGORITHM_RESULTS) -> str:
    """The README's Presets tables: first the presets of docs/results/algorithms.json with that file's numbers,
    then every other preset that this script measured, from its reaches line."""
    runs = algorithm_runs(path)
    provs = [r["provenance"] for r in runs.values()]
    cores = {p["cores"] for p in provs}
    seeds = {r["budget"]["seeds"] for r in runs.values()}
    episodes = {r["eval"]["episodes"] for r in runs.values()}
    lines = [f"Measured by `python benchmarks/algorithms.py` (`docs/results/algorithms.json`, the numbers of the "
             f"algorithm pages): {'/'.join(map(str, sorted(seeds)))} seeds in one program, then each seed's final "
             f"policy evaluated deterministically on {'/'.join(map(str, sorted(episodes)))} new episodes; the IQM "
             f"over the seeds with its 95% CI; {'; '.join(sorted({_where(p) for p in provs}))}, "
             f"{_dates([p['date'][:10] for p in provs])}. A run time with a load average beside it was measured "
             f"while other jobs shared the machine (load average above its {'/'.join(map(str, sorted(cores)))} "
             f"cores), so it is longer than on an idle machine.", "",
             "| preset | env steps | eval return: IQM [95% CI] | run s (all seeds) |", "|---|---|---|---|"]
    for name, r in runs.items():
        p, e = r["provenance"], r["eval"]
        load = p.get("load_average")
        run = f"{r['run_s']:.0f}" + (f" (load {load:.1f})" if shared_text(load, p["cores"]) else "")
        lines.append(f"| {name} | {_steps(r['budget']['env_steps_per_seed'])} | {e['iqm']:.1f} [{e['low']:.1f}, "
                     f"{e['high']:.1f}] | {run} |")
    cells = {name: recs for name, recs in cell_runs().items()          # the presets whose reaches line is theirs
             if name not in runs and "docs/results/cells" in presets.load(name).reaches}
    if cells:
        recs = [r for rs in cells.values() for r in rs]
        provs = [r["provenance"] for r in recs]
        lines += ["", _fill(f"Measured by `python benchmarks/results.py` as the cells of the Results page's tables "
                            f"(`docs/results/cells/`, at the budget each row names, on a CPU smaller than the "
                            f"preset's own where the row's budget is; the Brax rows beside Brax's own trainer): "
                            f"{'/'.join(map(str, sorted({r['seeds'] for r in recs})))} seeds in one program, then "
                            f"each seed's final policy evaluated on new episodes; the IQM over the seeds with its 95% "
                            f"CI; {'; '.join(sorted({_where(p) for p in provs}))}, "
                            f"{_dates([p['date'][:10] for p in provs])}."), "",
                  "| preset on env | env steps | eval return: IQM [95% CI] | run s (all seeds) |", "|---|---|---|---|"]
        for name, rs in cells.items():
            for r in rs:
                p, e = r["provenance"], r["eval"]
                load = cell_load(p)
                run = f"{r['run_s']:.0f}" + (f" (load {load:.1f})" if shared_text(load, p["cores"]) else "")
                ret = "no finished episode" if e.get("iqm") is None else (
                    f"{e['iqm']:.1f} [{e['low']:.1f}, {e['high']:.1f}]")
                lines.append(f"| {name} on {r['env']} | {_steps(r['steps'])} | {ret} | {run} |")
    others = []
    for name in presets.names():
        m = MEASURED.match(presets.load(name).reaches)
        if name not in runs and name not in cells and m:
            others.append((name, m))
    if others:
        counts = [int(m.group(3)) for _, m in others]
        usual = max(set(counts), key=counts.count)
        odd = [f"{n_seeds} for {name}" for (name, _), n_seeds in zip(others, counts) if n_seeds != usual]
        lines += ["", f"The other presets measured so far, by `python benchmarks/presets.py` ({usual} seeds in one "
                      f"program" + (f", {'; '.join(odd)}" if odd else "") + "; 10 deterministic evaluation "
                      f"episodes per seed, mean ± std over the seeds; "
                      f"{'; '.join(sorted({m.group(6) for _, m in others}))}, "
                      f"{_dates([m.group(7) for _, m in others])}):", "",
                  "| preset | env steps | eval return | run s (all seeds) |", "|---|---|---|---|"]
        for name, m in others:
            mean, std, n_seeds = float(m.group(1)), float(m.group(2)), int(m.group(3))
            ret = f"{mean:.1f} ± {std:.1f}" if n_seeds > 1 else f"{mean:.1f} (1 seed)"
            lines.append(f"| {name} | {_steps(int(m.group(4).replace(',', '')))} | {ret} | "
                         f"{m.group(5)} |")
    unmeasured = [name for name in presets.names() if presets.load(name).reaches.startswith("not measured")]
    if unmeasured:
        lines += ["", f"Not measured yet (their `reaches` line says so; `benchmarks/results.py` has a cell for each, "
                      f"at a budget a 2-core CPU finishes): {', '.join(unmeasured)}."]
    return "\n".join(_fill(ln) for ln in lines) + "\n"


def _fill(line: str) -> str:
    """A paragraph wrapped at 110 columns as the README's text is (table rows stay one line)."""
    if line.startswith("|") or not line:
        return line
    return textwrap.fill(line, 110, break_long_words=False, break_on_hyphens=False)


def write_from_results(path: Path = ALGORITHM_RESULTS) -> list[str]:
    """Rewrite the reaches line of every preset in docs/results/algorithms.json from that file."""
    runs = algorithm_runs(path)
    for name, r in runs.items():
        write_reaches(name, reaches_from_run(r))
    return list(runs)


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


def main(argv: list[str] | None = None) -> None:
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
    ap.add_argument("--from-cells", action="store_true",
                    help="rewrite the reaches lines of the presets with cell files in docs/results/cells (or of "
                         "--only) from those files, print the README's Presets tables and exit (nothing is trained)")
    ap.add_argument("--from-results", action="store_true",
                    help="rewrite the reaches lines of the presets in docs/results/algorithms.json from that file, "
                         "print the README's Presets tables and exit (nothing is trained)")
    args = ap.parse_args(argv)

    if args.from_results:
        names = write_from_results()
        print(f"rewrote the reaches line of {len(names)} preset(s) from {ALGORITHM_RESULTS.name}: "
              f"{', '.join(names)}\n\nThe README's Presets tables (tests/test_results_files.py checks them):\n")
        print(readme_tables(), end="")
        return
    if args.from_cells:
        names = write_from_cells(args.only)
        print(f"rewrote the reaches line of {len(names)} preset(s) from docs/results/cells: {', '.join(names)}\n\n"
              f"The README's Presets tables (tests/test_results_files.py checks them):\n")
        print(readme_tables(), end="")
        return
    available = presets.names()
    elsewhere = algorithm_runs()   # one preset, one set of numbers: these come from docs/results/algorithms.json
    elsewhere.update(cell_runs())  # and these from the cells of docs/results/cells
    if args.only:
        unknown = [n for n in args.only if n not in available]
        if unknown:
            sys.exit(f"unknown preset(s) {', '.join(unknown)}; available: {', '.join(available)}")
        taken = [n for n in args.only if n in elsewhere]
        if args.write and taken:
            sys.exit(f"presets.py: the numbers of {', '.join(taken)} come from docs/results/algorithms.json "
                     f"(benchmarks/algorithms.py, the algorithm pages) or docs/results/cells (benchmarks/results.py): "
                     f"rerun that script, then `python benchmarks/presets.py --from-results` or `--from-cells`")
        names = args.only
    else:
        names = [n for n in available if (args.brax or not is_brax(presets.load(n))) and n not in elsewhere]
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
