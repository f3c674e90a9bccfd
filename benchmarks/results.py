"""The results tables: each cell (a preset on one env at one budget) run as one vmapped program over several seeds,
written to its own results file the moment it ends, so a table fills over several runs and a stopped run loses at
most the cell it was in.

    python benchmarks/results.py --list                      # the cells, their budgets and whether a file exists
    python benchmarks/results.py --suite minatar             # run every MinAtar cell that has no results file yet
    python benchmarks/results.py --cells ppo-minatar/Breakout-MinAtar --seeds 8
    python benchmarks/results.py --full --suite brax         # the references' budgets (meant for an accelerator)
    python benchmarks/results.py --table                     # print the tables from the results files
    python benchmarks/results.py --cells dqn-minatar/Breakout-MinAtar --run-dir runs/cells   # resumable

A cell names a shipped preset (``purerl/presets/NAME.toml``, its algorithm and settings) and the env it runs on.
Its budget is the preset's own ``total_timesteps`` with ``--full``; otherwise the cell's CPU budget (what a 2-core
CPU finishes in about an hour), and every number says which budget it is at. The seeds are keys split from
``jax.random.key(--seed)`` and train as ``jit(vmap(train))``; when jax has several local devices (a CPU splits
into one device per core unless ``--one-device``: :mod:`purerl.run.devices`) the seeds are split over them
(``--seeds`` is rounded up to a multiple of the device count). Compile time (trace + XLA) is taken apart from run time
(:func:`purerl.run.bench.measure`); env steps per second counts every seed's steps over the run time.

A cell longer than a sitting runs with ``--run-dir DIR``: in a run directory of its own under DIR, through purerl's
runner, checkpointed after each of ``--chunks`` chunks (20 by default). A stopped run (the end of a session, Ctrl-C,
SIGTERM) loses at most one chunk, and the same command resumes it; its compile and run times are the sums over its
sittings (``<cell>.segments.json`` beside the run, and ``segments`` in the results file).

Per cell, in ``docs/results/cells/<preset>__<env>__<steps>.json``: the final score per seed (the curve's metric
averaged over the last 5% of the log points: on-policy, the return of the training episodes that ended there,
actions sampled; off-policy, the periodic evaluation's return), a fresh evaluation of each seed's final policy
(``eval_episodes`` episodes, deterministic or sampled as the cell says, raw rewards), the IQM of each over seeds
with its 95% stratified-bootstrap interval (:func:`purerl.run.stats.iqm_ci`), the learning curve (IQM, interval and
every seed at up to 100 points), compile and run time, env steps per second, the published reference the cell is
compared with, and the provenance (date, machine, load average, jax, commit, command).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CELLS_DIR = ROOT / "docs" / "results" / "cells"
FIGURES = ROOT / "docs" / "figures" / "results"


@dataclasses.dataclass(frozen=True)
class Reference:
    """A published number a cell is set beside: its value, the budget it was measured at, where it comes from and
    what differs from purerl's run."""

    value: float
    steps: int
    source: str
    differs: str = ""
    approximate: bool = False


@dataclasses.dataclass(frozen=True)
class Cell:
    preset: str
    env: str
    cpu_steps: int                         # the budget of the default (CPU) mode
    seeds: int = 6
    eval_episodes: int = 16
    deterministic_eval: bool = True
    suite: str = "classic"
    references: tuple[Reference, ...] = ()     # the first one at the cell's budget gives the ratio
    cpu_overrides: tuple[tuple[str, Any], ...] = ()   # config fields set otherwise in the CPU mode (num_envs, ...)
    brax: tuple[tuple[str, Any], ...] = ()     # the brax suite's cells run beside Brax's own trainer (benchmarks/
                                               # brax_trainers.py): its settings beyond those the config maps to
    notes: str = ""                            # what was found where purerl and its reference differ (the table)

    @property
    def name(self) -> str:
        return f"{self.preset}/{self.env}"

    def file(self, steps: int) -> Path:
        return CELLS_DIR / f"{self.preset}__{self.env.replace('/', '-')}__{steps}.json"

    def brax_file(self, steps: int) -> Path:
        """The results file of Brax's own trainer run beside this cell (``brax-ppo__brax-hopper__STEPS.json``)."""
        return CELLS_DIR / f"brax-{self.preset.split('-')[0]}__{self.env.replace('/', '-')}__{steps}.json"

    def config(self, module: Any, steps: int, full: bool) -> Any:
        """The preset's config for this env and budget, with the CPU overrides unless ``full``."""
        from purerl import presets

        cfg = presets.load(self.preset).apply(module.Config).replace(env=self.env, total_timesteps=steps)
        return cfg if full else cfg.replace(**dict(self.cpu_overrides))


GYMNAX_PPO = ("gymnax's README, environment table (PPO agents of gymnax-blines, agents/GAME/ppo.yaml, trained for "
              "1e7 env steps; the return of its final evaluation)")
GYMNAX_PPO_DIFFERS = ("same settings (MLP 2x256 ReLU, 64 envs x 128 steps, lr 5e-4, 4 epochs x 8 minibatches, gamma "
                      "0.999); gymnax warms the learning rate up over 5% of updates, purerl does not")

MINATAR_PAPER = ("Young and Tian (2019), MinAtar: the learning curves in the MinAtar repository's README "
                 "(img/learning_curves.gif, 30 runs each), read at 5e6 frames (one frame is one env step), so "
                 "approximate")
MINATAR_PAPER_DIFFERS = ("MinAtar's own envs with sticky actions (p = 0.1; gymnax has none); the curve is the "
                         "moving average of the last 100 training episodes")
MINATAR_ENVS = ("Breakout-MinAtar", "SpaceInvaders-MinAtar", "Asterix-MinAtar", "Freeway-MinAtar")
MINATAR_PPO = {"Breakout-MinAtar": 28.0, "SpaceInvaders-MinAtar": 131.0, "Asterix-MinAtar": 15.0,
               "Freeway-MinAtar": 58.0}
MINATAR_AC = {"Breakout-MinAtar": 17.5, "SpaceInvaders-MinAtar": 185.0, "Asterix-MinAtar": 19.0,
              "Freeway-MinAtar": 47.0}                                    # AC(lambda = 0.8), online, no replay
MINATAR_DQN = {"Breakout-MinAtar": 10.0, "SpaceInvaders-MinAtar": 43.0, "Asterix-MinAtar": 17.0,
               "Freeway-MinAtar": 50.0}                                   # DQN with replay and target network


def _minatar_paper(table: dict, env: str, what: str) -> Reference:
    return Reference(table[env], 5_000_000, f"{MINATAR_PAPER}: {what}", MINATAR_PAPER_DIFFERS, approximate=True)


CELLS: list[Cell] = [
    *(Cell("ppo-minatar", env, 10_000_000, seeds=6, deterministic_eval=False, suite="minatar",
           references=(Reference(MINATAR_PPO[env], 10_000_000, GYMNAX_PPO, GYMNAX_PPO_DIFFERS),
                       _minatar_paper(MINATAR_AC, env, "actor-critic with eligibility traces (lambda 0.8)")))
      for env in MINATAR_ENVS),
    # the value-based agents at the MinAtar paper's budget (5e6 env steps; their presets' own: DQN 5e6, PQN 1e7)
    *(Cell(f"{algo}-minatar", env, 5_000_000, seeds=6, suite="minatar",
           references=(_minatar_paper(MINATAR_DQN, env, "DQN (replay, target network)"),))
      for algo in ("dqn", "pqn") for env in MINATAR_ENVS),
    # PPO with the value-based presets' CNN torso, at the budget of the MLP rows
    Cell("ppo-minatar-cnn", "Breakout-MinAtar", 10_000_000, seeds=6, deterministic_eval=False, suite="minatar",
         references=(Reference(MINATAR_PPO["Breakout-MinAtar"], 10_000_000, GYMNAX_PPO, GYMNAX_PPO_DIFFERS
                               + "; here a CNN torso instead of gymnax's MLP"),)),
]

# Brax: each cell beside Brax's own trainer at the same budget and settings (benchmarks/brax_trainers.py runs both).
# On a CPU the PPO presets' thousands of envs become 128 (as ppo-brax-inverted-pendulum already has), the same
# minibatch count, so smaller minibatches; `brax` holds what Brax's published configs set beyond the preset's
# fields: PPO's unroll length and reward scaling.
BRAX_CPU_ENVS = (("num_envs", 128),)
CELLS += [
    Cell("ppo-brax-inverted-pendulum", "brax/inverted_pendulum", 491_520, suite="brax",
         brax=(("unroll_length", 5), ("reward_scaling", 10.0))),
    Cell("ppo-brax-hopper", "brax/hopper", 1_024_000, suite="brax", cpu_overrides=BRAX_CPU_ENVS,
         brax=(("unroll_length", 5), ("reward_scaling", 10.0))),
    Cell("ppo-brax-halfcheetah", "brax/halfcheetah", 1_024_000, suite="brax", cpu_overrides=BRAX_CPU_ENVS,
         brax=(("unroll_length", 20), ("reward_scaling", 1.0))),
    Cell("sac-brax-inverted-pendulum", "brax/inverted_pendulum", 65_536, suite="brax"),
    Cell("sac-brax-hopper", "brax/hopper", 65_536, suite="brax"),
    Cell("ppo-brax-ant", "brax/ant", 1_024_000, suite="brax", cpu_overrides=BRAX_CPU_ENVS,
         brax=(("unroll_length", 5), ("reward_scaling", 10.0))),
    Cell("sac-brax-halfcheetah", "brax/halfcheetah", 65_536, suite="brax"),
    Cell("sac-brax-ant", "brax/ant", 65_536, suite="brax"),
]

# MuJoCo Playground (MJX) and Craftax: every preset measured, on a CPU at small stated budgets (Playground's 2048
# envs become 128); no reference at these budgets.
CELLS += [
    *(Cell(f"ppo-playground-{name}", f"playground/{env}", 491_520, suite="playground", cpu_overrides=BRAX_CPU_ENVS)
      for name, env in (("cheetah-run", "CheetahRun"), ("walker-walk", "WalkerWalk"))),
    *(Cell(f"sac-playground-{name}", f"playground/{env}", 65_536, suite="playground")
      for name, env in (("cheetah-run", "CheetahRun"), ("walker-walk", "WalkerWalk"))),
    *(Cell(preset, "craftax/Craftax-Classic-Symbolic-v1", 1_048_576, suite="craftax", deterministic_eval=False)
      for preset in ("ppo-craftax-classic", "ppo-rnn-craftax-classic")),
]


def cell_steps(cell: Cell, full: bool) -> int:
    from purerl import presets

    return int(presets.load(cell.preset).config["total_timesteps"]) if full else cell.cpu_steps


def run_cell(cell: Cell, steps: int, seeds: int, seed: int, tiny: bool = False, full: bool = False,
             cells_dir: Path = CELLS_DIR, run_dir: Path | None = None, chunks: int = 20) -> dict:
    """The cell's record: trained in memory as one program, or with ``run_dir`` in a run directory of its own
    there (:func:`train_in_run_dir`), which a stopped run continues from its newest checkpoint."""
    import jax

    from purerl import algorithms, compiling, presets
    from purerl.run.bench import measure
    from purerl.run.devices import local_mesh, split_runs

    preset = presets.load(cell.preset)
    module = algorithms.module(preset.algo)
    cfg = cell.config(module, steps, full)
    if run_dir is not None:
        return train_in_run_dir(cell, preset.algo, cfg, steps, seeds, seed, Path(run_dir), chunks, tiny, cells_dir)
    trainer = module.make(cfg)
    keys = split_runs(jax.random.split(jax.random.key(seed), seeds))     # over the CPU's cores
    mesh = local_mesh(seeds)
    compile_s, run_s, res = measure(jax.vmap(trainer.train), keys, repeats=1,
                                    compiler_options=compiling.compile_options("train"))
    return cell_record(cell, preset.algo, cfg, trainer, res.state, jax.device_get(res.metrics), steps, seeds, seed,
                       compile_s, run_s, 1 if mesh is None else int(mesh.devices.size), tiny, cells_dir)


def train_in_run_dir(cell: Cell, algo: str, cfg: Any, steps: int, seeds: int, seed: int, run_dir: Path,
                     chunks: int, tiny: bool, cells_dir: Path) -> dict:
    """Train the cell into ``run_dir/<its file's stem>`` with purerl's runner (:mod:`purerl.run.runner`): a
    checkpoint after each of about ``chunks`` chunks, so a run stopped by the end of a session (or Ctrl-C, or
    SIGTERM: the runner saves the running chunk) loses at most one chunk, and the next call with the same
    ``run_dir`` resumes it, equal bit for bit to an uninterrupted run of the same chunks. The same seeds (keys
    split from ``jax.random.key(seed)``, split over the CPU's cores) as the in-memory run, whose single program it
    matches to float rounding. Each call's compile and run seconds are added to ``<stem>.segments.json`` beside the
    run; the record's times are their sums."""
    import jax

    from purerl import algorithms
    from purerl.run import rundir, runner

    sys.path.insert(0, str(HERE))
    from provenance import provenance

    stem = cell.file(steps).stem
    out, log = run_dir / stem, run_dir / f"{stem}.segments.json"
    segments = json.loads(log.read_text()) if log.is_file() else []
    trainer = algorithms.module(algo).make(cfg.validate())
    num_updates = int(trainer.num_log_points)
    done = _updates_done(out)
    if done is not None:      # a run of this cell as it is now, or refused
        body = rundir.read_config(out)
        now = {"algo": algo, "seeds": seeds, "seed": seed, **_config_dict(cfg)}
        was = {"algo": body["algo"], "seeds": body["seeds"], "seed": body["seed"], **body["config"]}
        changed = sorted(k for k in now.keys() | was.keys()
                         if json.dumps(now.get(k), default=list) != json.dumps(was.get(k), default=list))
        if changed:
            raise SystemExit(f"  {cell.name}: the run in {out} has other settings than the cell now has "
                             f"({', '.join(f'{k}: {was.get(k)!r} there, {now.get(k)!r} now' for k in changed)}); "
                             f"remove {out} to start the cell afresh")
    if done is None:          # no run there, or one stopped before its first checkpoint: start afresh
        segments = []
        outcome = runner.train(algo, cfg, out, seeds=seeds, seed=seed, checkpoint_every=max(1, -(-num_updates // chunks)),
                               overwrite=True)
    elif done < num_updates:
        print(f"  {cell.name}: resuming {out} at update {done} of {num_updates}", flush=True)
        outcome = runner.resume(out)
    else:
        outcome = None        # trained to the end by an earlier call, whose cell file was not written
    if outcome is not None:
        if outcome.error is not None:
            raise outcome.error
        segments.append({"from_update": outcome.start_update, "to_update": outcome.updates_done,
                         "compile_s": outcome.compile_s, "run_s": outcome.run_s, "date": provenance()["date"],
                         "loadavg_end": list(os.getloadavg())})
        write_atomic(log, segments)
        if not outcome.finished:
            raise SystemExit(f"  {cell.name}: stopped at update {outcome.updates_done} of {num_updates}; the same "
                             f"command with --run-dir {run_dir} resumes it")
    run = rundir.load(out)
    metrics = rundir.read_metrics(out)
    record = cell_record(cell, algo, run.config, run.trainer, run.state, metrics, steps, seeds, seed,
                         sum(g["compile_s"] for g in segments), sum(g["run_s"] for g in segments),
                         int(jax.local_device_count()) if seeds % jax.local_device_count() == 0 else 1, tiny,
                         cells_dir)
    record["segments"] = segments
    return record


def _updates_done(out: Path) -> int | None:
    """The updates in the newest checkpoint of the run in ``out`` (None: no run or no checkpoint yet)."""
    from purerl.run import checkpoint as ckpt
    from purerl.run import rundir

    if not rundir.holds_run(out) or not (out / "checkpoints").is_dir():
        return None
    return ckpt.latest_step(out / "checkpoints")     # a checkpoint's step is the updates done before it


def cell_record(cell: Cell, algo: str, cfg: Any, trainer: Any, state: Any, metrics: dict, steps: int, seeds: int,
                seed: int, compile_s: float, run_s: float, devices: int, tiny: bool, cells_dir: Path) -> dict:
    """The cell's results file from a finished run: its final state (a leading seed axis) and its metrics
    ``[seed, log point]``; the final policies are evaluated afresh here."""
    import jax
    import numpy as np

    from algorithms import _floats, subsample
    from purerl import compiling
    from purerl.run import stats
    from purerl.run.devices import split_runs

    episodes = 2 if tiny else cell.eval_episodes
    evaluate = compiling.jit(jax.vmap(lambda s, k: trainer.evaluate(s, k, episodes, cell.deterministic_eval)),
                             kind="once")
    eval_keys = split_runs(jax.random.split(jax.random.key(seed + 1), seeds))
    ev = jax.device_get(evaluate(state, eval_keys))
    eval_per_seed = np.asarray(ev["returns"], dtype=np.float64).mean(axis=1)

    metric = "eval_return" if "eval_return" in metrics else "episode_return"
    values = np.asarray(metrics[metric], dtype=np.float64)                   # [seeds, log points]
    env_steps = np.asarray(metrics["env_steps"], dtype=np.float64)[0]
    final = stats.final_scores(values)
    final_ci, eval_ci = stats.iqm_ci(final), stats.iqm_ci(eval_per_seed)
    idx = subsample(values.shape[1])
    curve = stats.iqm_ci(values[:, None, idx], reps=stats.CURVE_REPS)
    per_seed_steps = int(env_steps[-1])
    return {
        "cell": cell.name, "preset": cell.preset, "algo": algo, "env": cell.env, "suite": cell.suite,
        "metric": metric, "steps": per_seed_steps, "asked_steps": steps, "seeds": seeds, "devices": devices,
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in _config_dict(cfg).items()},
        "compile_s": compile_s, "run_s": run_s, "env_steps_per_s": seeds * per_seed_steps / run_s,
        "final": {"per_seed": _floats(final), "iqm": final_ci.point, "low": final_ci.low, "high": final_ci.high,
                  "rule": "per seed: the metric's mean over the last 5% of the log points (at least one)"},
        "eval": {"episodes": episodes, "deterministic": cell.deterministic_eval, "per_seed": _floats(eval_per_seed),
                 "iqm": eval_ci.point, "low": eval_ci.low, "high": eval_ci.high},
        "curve": {"env_steps": _floats(env_steps[idx]), "iqm": _floats(curve.point), "low": _floats(curve.low),
                  "high": _floats(curve.high), "per_seed": [_floats(v) for v in values[:, idx]]},
        "references": [dataclasses.asdict(r) for r in cell.references] + brax_references(cell, steps, cells_dir),
        "notes": cell.notes, "tiny": tiny,
    }


def brax_references(cell: Cell, steps: int, cells_dir: Path = CELLS_DIR) -> list[dict]:
    """The reference a Brax cell is set beside: Brax's own trainer at the same budget (``steps``, the budget asked
    for) and settings on the same machine (its results file, written by benchmarks/brax_trainers.py), compared on
    the fresh evaluation (the same protocol on both sides); none before that file exists."""
    path = cells_dir / cell.brax_file(steps).name
    if cell.suite != "brax" or not path.is_file():
        return []
    b = json.loads(path.read_text())
    return [{"value": b["eval"]["iqm"], "steps": b["steps"], "compare": "eval", "approximate": False,
             "source": (f"Brax's own trainer ({b['trainer']}, brax {b['brax_version']}) on the same machine at the "
                        f"same budget and settings, {b['seeds']} seeds one after another (benchmarks/brax_trainers.py, "
                        f"{path.name}); its final policy evaluated as purerl's ({b['eval']['episodes']} episodes, "
                        f"{'greedy' if b['eval']['deterministic'] else 'sampled'})"),
             "differs": b.get("differs", "")}]


def _config_dict(cfg) -> dict:  # noqa: ANN001
    from purerl.config import config_to_dict

    return config_to_dict(cfg)


def write_atomic(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    tmp.replace(path)


def load_cells(cells_dir: Path = CELLS_DIR) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(cells_dir.glob("*.json"))]


def _fmt_steps(n: float) -> str:
    return f"{n / 1e6:g}M" if n >= 1e6 else f"{n / 1e3:g}k"


def _ci(d: dict) -> str:
    if d.get("iqm") is None:
        return "no finished episode"
    return f"{d['iqm']:.1f} [{d['low']:.1f}, {d['high']:.1f}]"


SUITE_TITLES = {"minatar": "MinAtar (gymnax)", "brax": "Brax", "classic": "Classic control",
                "playground": "MuJoCo Playground", "craftax": "Craftax"}


def suite_table(records: list[dict], suite: str, cells: list[Cell] | None = None) -> str:
    """One suite's Markdown table: per cell (algorithm, env, budget) purerl's final return IQM [95% CI] and its
    fresh evaluation, the published reference with its budget and source, their ratio (where the budgets are
    equal), the times and the throughput. Cells of ``cells`` without a results file yet are listed as not
    measured. The numbered notes under the table name each reference's source and what differs."""
    cells = CELLS if cells is None else cells
    rows = sorted((r for r in records if r.get("suite") == suite and not r.get("tiny")),
                  key=lambda r: (r["algo"], r["env"], r["steps"], "library" in r))
    done = {r["cell"] for r in rows}
    sources: list[str] = []

    def note(ref: dict) -> str:
        text = ref["source"] + (f"; differs: {ref['differs']}" if ref.get("differs") else "")
        if text not in sources:
            sources.append(text)
        return f"[{sources.index(text) + 1}]"

    out = ["| algorithm | env | env steps x seeds | final return, IQM [95% CI] | final policy, evaluated afresh | "
           "reference (its budget) | ratio | compile / run (env steps/s) |",
           "|---|---|---|---|---|---|---|---|"]
    def refs_text(refs: list[dict]) -> str:
        return "; ".join(f"{'~' if ref.get('approximate') else ''}{ref['value']:g} ({_fmt_steps(ref['steps'])}) "
                         f"{note(ref)}" for ref in refs) or "-"

    for r in rows:
        refs = r.get("references") or ([r["reference"]] if r.get("reference") else [])
        ref_txt, ratio = refs_text(refs), "-"
        same = [ref for ref in refs if abs(ref["steps"] - r["steps"]) <= 0.01 * ref["steps"] and ref["value"]]
        ours = r[same[0].get("compare", "final")] if same else {}
        if ours.get("iqm") is not None:
            ratio = f"{ours['iqm'] / same[0]['value']:.2f}"
        ev = r["eval"]
        mode = "greedy" if ev.get("deterministic") else "sampled"
        who = f" ({r['library']})" if r.get("library") else ""
        out.append(f"| {r['algo'].upper().replace('_', ' ')}{who} | {r['env']} | {_fmt_steps(r['steps'])} x "
                   f"{r['seeds']} | "
                   f"{_ci(r['final'])} | {_ci(ev)} ({mode}, {ev['episodes']} ep.) | {ref_txt} | {ratio} | "
                   f"{r['compile_s']:.0f} s / {r['run_s']:,.0f} s ({r['env_steps_per_s']:,.0f}/s) |")
    for c in cells:
        if c.suite == suite and c.name not in done:
            ref = refs_text([dataclasses.asdict(x) for x in c.references])
            out.append(f"| {algo_of(c).upper().replace('_', ' ')} | {c.env} | {_fmt_steps(c.cpu_steps)} x {c.seeds} | "
                       f"not measured yet | | {ref} | | |")
    if len(out) == 2:
        return f"No cells of this suite yet (benchmarks/results.py has none named {suite!r})."
    out += [""] + [f"[{i + 1}] {s}" + "  " for i, s in enumerate(sources)]
    by_name = {c.name: c for c in cells}
    for r in rows:       # the cell's notes as they stand now (found after the run, too), else the file's
        text = by_name[r["cell"]].notes if r["cell"] in by_name else r.get("notes")
        if text:
            out += ["", f"*{r['algo'].upper().replace('_', ' ')} on {r['env']}:* {text}"]
    return "\n".join(out)


def readme_table(records: list[dict], cells: list[Cell] | None = None) -> str:
    """The README's few lines on MinAtar: per algorithm (and budget) the final return IQM on each game, the first
    reference in brackets (~: read from a curve); cells not measured yet as a dash."""
    cells = [c for c in (CELLS if cells is None else cells) if c.suite == "minatar"]
    measured = {r["cell"]: r for r in records if r.get("suite") == "minatar" and not r.get("tiny")}
    envs = list(dict.fromkeys(c.env for c in cells))
    out = ["| MinAtar: final return IQM (reference) | " + " | ".join(e.replace("-MinAtar", "") for e in envs) + " |",
           "|---|" + "---|" * len(envs)]
    for preset in dict.fromkeys(c.preset for c in cells):
        row = {c.env: c for c in cells if c.preset == preset}
        label = f"{algo_of(next(iter(row.values()))).upper()}{' (CNN)' if preset.endswith('-cnn') else ''}, " \
                f"{_fmt_steps(next(iter(row.values())).cpu_steps)} steps"
        parts = []
        for env in envs:
            c = row.get(env)
            if c is None:
                parts.append("")
                continue
            r, ref = measured.get(c.name), (c.references[0] if c.references else None)
            ref_txt = f" ({'~' if ref.approximate else ''}{ref.value:g})" if ref else ""
            parts.append((f"{r['final']['iqm']:.1f}" if r else "-") + ref_txt)
        out.append(f"| {label} | " + " | ".join(parts) + " |")
    return "\n".join(out)


def plot_suite(records: list[dict], suite: str, path: Path) -> bool:
    """The suite's learning curves, one panel per env, one IQM line with its 95% CI band per algorithm (and
    budget); False where the suite has no measured cell."""
    rows = [r for r in records if r.get("suite") == suite and not r.get("tiny")]
    if not rows:
        return False
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from algorithms import steps_axis

    envs = sorted({r["env"] for r in rows})
    fig = Figure(figsize=(4.2 * len(envs), 3.4), dpi=110)
    FigureCanvasAgg(fig)
    algos = sorted({r["algo"] for r in rows})
    for i, env in enumerate(envs):
        ax = fig.add_subplot(1, len(envs), i + 1)
        for r in sorted((r for r in rows if r["env"] == env), key=lambda r: (r["algo"], r["steps"])):
            c, color = r["curve"], f"C{algos.index(r['algo'])}"
            x = np.asarray(c["env_steps"], dtype=float)
            num = lambda v: np.asarray([np.nan if u is None else u for u in v], dtype=float)  # noqa: E731
            ax.fill_between(x, num(c["low"]), num(c["high"]), color=color, alpha=0.2, linewidth=0)
            who = f", {r['library']}" if r.get("library") else ""
            ax.plot(x, num(c["iqm"]), color=color, linewidth=1.6, linestyle="--" if who else "-",
                    label=f"{r['algo'].upper().replace('_', ' ')} ({r['seeds']} seeds{who})")
            for ref in (r.get("references") or ([r["reference"]] if r.get("reference") else []))[:1]:
                ax.axhline(ref["value"], color=color, linestyle=":", linewidth=1)
        steps_axis(ax)
        ax.set_title(env, fontsize=9)
        ax.set_ylabel("return (IQM, 95% CI)", fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle(f"{SUITE_TITLES.get(suite, suite)}: learning curves (dotted: the reference)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return True


def algo_of(cell: Cell) -> str:
    import tomllib

    return tomllib.loads((ROOT / "purerl" / "presets" / f"{cell.preset}.toml").read_text())["algo"]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", default=None, help="comma-separated cell names (PRESET/ENV; see --list)")
    ap.add_argument("--suite", default=None, help="the cells of one suite: " + ", ".join(sorted({c.suite for c in CELLS})))
    ap.add_argument("--full", action="store_true", help="each preset's own budget (the references'; for a GPU)")
    ap.add_argument("--seeds", type=int, default=None, help="seeds per cell (default: the cell's)")
    ap.add_argument("--seed", type=int, default=0, help="the key the seeds are split from")
    ap.add_argument("--redo", action="store_true", help="run cells whose results file exists too")
    ap.add_argument("--one-device", action="store_true", help="do not split a CPU into one device per core")
    ap.add_argument("--list", action="store_true", help="list the cells and stop")
    ap.add_argument("--table", action="store_true", help="print the tables from the results files and stop")
    ap.add_argument("--plot", action="store_true", help="with --table: draw each suite's curves into "
                                                        "docs/figures/results/SUITE.png")
    ap.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)   # the tests' mode: 2 updates a cell
    ap.add_argument("--out-dir", default=None, help="write the cell files here instead of docs/results/cells")
    ap.add_argument("--run-dir", default=None, metavar="DIR",
                    help="train each cell in a run directory under DIR, checkpointed after each of --chunks chunks; "
                         "the same command resumes a cell that a stopped run left there (for cells longer than a "
                         "sitting)")
    ap.add_argument("--chunks", type=int, default=20, help="with --run-dir: checkpoints over a cell's run (default 20)")
    args = ap.parse_args(argv)
    if args.chunks < 1:
        ap.error(f"--chunks must be at least 1; got {args.chunks}")

    cells_dir = Path(args.out_dir) if args.out_dir else CELLS_DIR
    chosen = CELLS
    if args.cells:
        names = args.cells.split(",")
        unknown = [n for n in names if n not in {c.name for c in CELLS}]
        if unknown:
            ap.error(f"--cells: unknown cell(s) {', '.join(unknown)}; see --list")
        chosen = [c for c in CELLS if c.name in names]
    if args.suite:
        chosen = [c for c in chosen if c.suite == args.suite]
        if not chosen:
            ap.error(f"--suite: no cells in {args.suite!r}")
    if args.table:
        records = load_cells(cells_dir)
        for suite in sorted({r["suite"] for r in records} | {c.suite for c in chosen}):
            print(f"\n{SUITE_TITLES.get(suite, suite)}\n\n{suite_table(records, suite)}")
            if args.plot and plot_suite(records, suite, FIGURES / f"{suite}.png"):
                print(f"drew {FIGURES / f'{suite}.png'}")
        return
    if args.list:
        for c in chosen:
            for full in (False, True):
                steps = cell_steps(c, full)
                f = c.file(steps)
                print(f"{c.name:<44} {'full' if full else 'cpu ':<5} {steps:>12,} steps  "
                      f"{'done' if (cells_dir / f.name).is_file() else '-'}")
        return

    from purerl.run.devices import use_cpu_cores

    use_cpu_cores(1 if args.one_device else None)     # before jax starts: one CPU device per core
    import jax

    sys.path.insert(0, str(HERE))
    from provenance import describe, provenance

    n_dev = jax.local_device_count()
    prov = provenance(argv if argv is None else [str(Path(__file__).relative_to(ROOT)), *argv])
    print(describe(prov), f"({n_dev} device(s))", flush=True)
    for c in chosen:
        steps = cell_steps(c, args.full)
        if args.tiny:
            steps = 1
        seeds = args.seeds or c.seeds
        seeds = -(-seeds // n_dev) * n_dev
        path = cells_dir / c.file(steps).name
        if path.is_file() and not args.redo:
            print(f"  {c.name}: {path.name} exists (--redo runs it again)", flush=True)
            continue
        t = time.perf_counter()
        if args.tiny:
            steps = _tiny_steps(c)
            path = cells_dir / c.file(steps).name
        record = run_cell(c, steps, seeds, args.seed, tiny=args.tiny, full=args.full, cells_dir=cells_dir,
                          run_dir=Path(args.run_dir) if args.run_dir else None, chunks=args.chunks)
        record["provenance"] = {**prov, "date": provenance()["date"], "loadavg_end": list(os.getloadavg())}
        record["budget"] = "tiny" if args.tiny else ("full" if args.full else "cpu")
        write_atomic(path, record)
        f = record["final"]
        print(f"  {c.name}: {record['steps']:,} steps x {seeds} seeds: final IQM {f['iqm']:.1f} "
              f"[{f['low']:.1f}, {f['high']:.1f}], eval IQM {record['eval']['iqm']:.1f}; compile "
              f"{record['compile_s']:.0f} s, run {record['run_s']:.0f} s ({time.perf_counter() - t:.0f} s in all) "
              f"-> {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}", flush=True)


def _tiny_steps(cell: Cell) -> int:
    """Two updates (on-policy) of the cell's preset: the tests' plumbing run."""
    from purerl import algorithms, presets

    preset = presets.load(cell.preset)
    cfg = preset.apply(algorithms.module(preset.algo).Config)
    return 2 * cfg.num_envs * getattr(cfg, "num_steps", 1)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    main()
