"""The ``purerl`` command: the outside-of-jit layer around ``make_train``.

    purerl train ALGO [--env ENV] [--preset NAME | --config FILE] [--set field=value ...] [--seeds K] [--seed S]
                      [--out DIR [--overwrite]] [--fused] [--no-progress]
    purerl resume DIR                  continue an interrupted run or sweep from its newest checkpoint
    purerl eval DIR [--episodes N]     deterministic and stochastic returns of a trained run
    purerl render DIR                  an HTML viewer (Brax) or an animated GIF (gymnax) of the trained policy
    purerl export DIR [--format onnx]  the trained policy as a file that runs without purerl (jax or ONNX)
    purerl plot DIR [DIR ...]          learning curves, mean (or --aggregate: IQM) and 95% band over seeds, as PNG
    purerl bench ALGO --env ENV        compile/run time and env steps/s against num_envs and seeds, and the env's ceiling
    purerl sweep ALGO --grid f=v1,v2   hyperparameters x seeds in one vmapped program [--out DIR [--overwrite]]
    purerl presets                     the shipped presets and the returns they reach
    purerl --version                   purerl's version, with jax's and Python's

``purerl train ALGO --help`` lists every config field of ALGO with its default and meaning.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from purerl.algorithms import NAMES as ALGOS

EXIT_BAD_INPUT, EXIT_DIVERGED = 2, 3  # a stop signal exits with 128 + its number: 130 (SIGINT), 143 (SIGTERM);
# 4 (purerl.run.cluster.EXIT_CLUSTER): a process of a run of several processes stopped or could not join


def _default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.environ.get("PURERL_CACHE_DIR") or os.path.join(base, "purerl", "jax")


def setup_compilation_cache(cache_dir: str | None) -> None:
    """Turn on JAX's persistent compilation cache (``None``/empty: leave it off). Every compiled program that
    took longer than a tenth of a second to compile is stored, so a repeated run reuses it."""
    if not cache_dir:
        return
    import jax

    os.makedirs(cache_dir, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", cache_dir)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (the usage it would print is one `--help` away) from the command that
    met the bad argument, naming the option meant where it can tell (a misspelt option, a value given without
    its option, an option before the command or algorithm it belongs to), and an epilog and argument helps that
    may be functions, called only when the help is shown: listing an algorithm's config fields or the env
    suites imports them, and with them jax, which a command such as `purerl presets` or `purerl plot` does not
    need."""

    @property
    def epilog(self) -> str | None:
        value = self.__dict__.get("_epilog")
        return value() if callable(value) else value

    @epilog.setter
    def epilog(self, value: Any) -> None:
        self.__dict__["_epilog"] = value

    def format_help(self) -> str:
        for action in self._actions:
            if callable(getattr(action, "lazy_help", None)):
                action.help = action.lazy_help()
        return super().format_help()

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        args = sys.argv[1:] if args is None else list(args)
        self._check_order(args)
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:   # this command's own arguments: the error is its own, not its parent's
            self.error(self._unrecognized(extras))
        return namespace, extras

    def _check_order(self, args: list[str]) -> None:
        """An option before the command (or algorithm) it belongs to: `purerl train --env CartPole-v1 ppo`."""
        choices = next((a.choices for a in self._actions if isinstance(a, argparse._SubParsersAction)), None)
        if not choices or not args or not args[0].startswith("-") or args[0] in ("-h", "--help", "--version"):
            return
        at = next((i for i, a in enumerate(args) if a in choices), None)
        if at is None:
            return
        import shlex

        what = "algorithm" if self.prog.endswith(" train") else "command"
        fixed = shlex.join(args[at:at + 1] + args[at + 1:] + args[:at])   # the options after what follows it
        self.error(f"the {what} comes before its options: {self.prog} {fixed}")

    def _unrecognized(self, extras: list[str]) -> str:
        """The first argument this command does not take, with the option most likely meant."""
        import difflib

        options = [o for a in self._actions for o in a.option_strings if o.startswith("--")]
        token = extras[0]
        if token.startswith("-") and len(token) > 1:
            name = token.split("=", 1)[0]
            dashed = name.replace("_", "-")
            if dashed == "--total-timesteps" and dashed not in options and "--steps" in options:
                dashed = "--steps"   # bench's name for it
            guess = dashed if dashed in options else next(iter(difflib.get_close_matches(dashed, options, 1, 0.75)),
                                                          None)
            return f"unrecognized option {name}" + (f"; did you mean {guess}?" if guess else "")
        try:
            float(token)
            number = True
        except ValueError:
            number = False
        if "--env" in options and not number:
            return f"unexpected argument {token!r}; an env is given with its option: --env {token}"
        return f"unexpected argument {token!r}"


class _Version(argparse.Action):
    """``purerl --version``: purerl's version with jax's and Python's (read without importing jax)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        import platform
        from importlib import metadata

        import purerl

        try:
            jax_version = metadata.version("jax")
        except metadata.PackageNotFoundError:
            jax_version = "not installed"
        print(f"purerl {purerl.__version__} (jax {jax_version}, Python {platform.python_version()})")
        parser.exit(0)


def _env_help() -> str:
    """The --env help: every suite's ids, read from purerl.envs.SUITES."""
    from purerl.envs import SUITES

    kinds = [f"{s.prefix}<name>" for s in SUITES if s.prefix]
    bare = [f"a {s.title} name such as CartPole-v1" for s in SUITES if not s.prefix]
    return f"env id: {', '.join(bare + kinds[:-1])} or {kinds[-1]}; default: the Config's"


def _env_arg(g: Any) -> None:
    g.add_argument("--env", default=None, help="env id; default: the Config's").lazy_help = _env_help


def _count(minimum: int | None = None):
    """The argparse ``type`` of a count option: a whole number of at least ``minimum``, also written as 1e6 or
    1_000_000 (:func:`purerl.arguments.parse_count`; argparse names the option in the one-line error)."""
    def count(text: str) -> int:
        from purerl.arguments import parse_count

        try:
            return parse_count(text, "", minimum)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return count


def _count_list(text: str) -> list[int]:
    """Comma-separated counts of at least 1, e.g. 4,64,1024 (each also as 1e3 or 1_000)."""
    from purerl.arguments import parse_count

    try:
        return [parse_count(t, "", 1) for t in text.split(",")]
    except ValueError as e:
        if str(e).startswith("expects"):
            e = f"expects comma-separated whole numbers such as 4,64,1024, got {text!r}"
        raise argparse.ArgumentTypeError(str(e)) from None


def _config_fields_epilog(algo: str) -> str:
    """Every config field of ``algo`` with its default, meaning and type (static fields marked), from the
    config schema (:func:`purerl.config.schema`)."""
    import textwrap

    from purerl.config import schema
    from purerl.algorithms import module as algo_module

    rows = []
    for s in schema(algo_module(algo).Config).values():
        d = repr(s.default) if not isinstance(s.default, str) else s.default
        rows.append((s.name, d, f"{s.help}  [{s.type_text}{'; static' * s.static}]"))
    width = max(len(n) + len(d) for n, d, _ in rows) + 5
    lines = textwrap.wrap(f"config fields of {algo}, with their types; set any with --set FIELD=VALUE: a number "
                          f"(a whole number also as 1e6), a switch as true/false, yes/no, on/off or 1/0, a tuple "
                          f"as comma-separated whole numbers (64,64), none for a field that may be None. Static "
                          f"fields shape the compiled program; the others are numeric leaves that `purerl sweep` "
                          f"and jax.vmap can sweep:", 100)
    for name, d, h in rows:
        lines.append(f"  {(name + ' = ' + d).ljust(width)} {h}")
    return "\n".join(lines)


def _base_config(args: argparse.Namespace):
    """The Config of ``args.algo`` from defaults < preset/--config file < direct flags < --set, validated."""
    from purerl import presets
    from purerl.config import apply_overrides
    from purerl.algorithms import module as algo_module

    mod = algo_module(args.algo)
    cfg = mod.Config()
    preset = None
    if getattr(args, "preset", None) and getattr(args, "config", None):
        raise ValueError("give --preset or --config, not both")
    if getattr(args, "preset", None):
        preset = presets.load(args.preset)
    elif getattr(args, "config", None):
        preset = presets.load_file(args.config)
    if preset is not None:
        if preset.algo and preset.algo != args.algo:
            raise ValueError(f"preset {preset.name!r} is for {preset.algo}, not {args.algo}: run "
                             f"`purerl train {preset.algo} --preset {preset.name}`")
        cfg = preset.apply(mod.Config)
    direct = {"env": args.env, "total_timesteps": args.total_timesteps, "num_envs": args.num_envs}
    cfg = cfg.replace(**{k: v for k, v in direct.items() if v is not None})
    cfg = apply_overrides(cfg, args.set or [])
    return mod, cfg.validate(), preset


def _loggers(args: argparse.Namespace) -> tuple:
    from purerl.run import loggers

    out = []
    if getattr(args, "tensorboard", False):
        out.append(loggers.TensorBoardLogger())
    if getattr(args, "wandb", None):
        out.append(loggers.WandbLogger(args.wandb, entity=args.wandb_entity))
    return tuple(out)


def _stopped(outcome, out: Path, command: str = "train", metrics: str = "metrics.csv") -> int | None:
    """Report a run or sweep that diverged or was interrupted (one line on stderr) and return its exit code;
    None for one that finished."""
    if outcome.error is not None:
        from purerl.run import checkpoint as ckpt

        last = ckpt.latest_step(out / "checkpoints")
        keep = (f"the last good checkpoint is {out / 'checkpoints'}/{last} (after update {last})" if last is not None
                else "it happened in the first chunk, so there is no good state to keep")
        print(f"purerl: stopped: {outcome.error}; {keep}. Lower the learning rate or check the env's "
              f"observations/rewards, then `purerl {command}` again (metrics up to the failure are in "
              f"{out}/{metrics}).", file=sys.stderr)
        return EXIT_DIVERGED
    if outcome.interrupted:
        print(f"purerl: interrupted; saved the state after {outcome.updates_done}/{outcome.num_updates} updates "
              f"to {out / 'checkpoints'}; continue with `purerl resume {out}`", file=sys.stderr)
        return 128 + (outcome.signal or 2)
    return None


def _finish(outcome, algo: str, cfg: Any, out: Path, seeds: int, seed: int, eval_episodes: int) -> int:
    """Report a finished, interrupted or diverged run; summarise a finished one with its evaluation."""
    code = _stopped(outcome, out)
    if code is not None:
        return code

    summary = outcome.summary  # written to out/summary.json by the runner
    warmup, per_seed = summary["warmup_env_steps_per_seed"], summary["env_steps_per_seed"]
    first = summary["start_update"]  # updates done before this process (a resumed run)
    process_steps, rate = summary["process_env_steps"], summary["env_steps_per_s"]
    pm = "±"
    devices = summary.get("devices", 1)
    print(f"{algo} on {cfg.env}: {seeds} seed(s) x {per_seed:,} env steps"
          + (f" ({warmup:,} of them random warm-up)" if warmup else "")
          + (f", split over {devices} devices" if devices > 1 else "")
          + (f", resumed after update {first} of {outcome.num_updates}" if first else ""))
    print(f"  final return   {summary['final_return_mean']:.1f} {pm} {summary['final_return_std']:.1f}"
          f"   (mean of the last 5% of updates; over seeds)")
    if summary["eval_return_mean"] is not None:
        print(f"  eval return    {summary['eval_return_mean']:.1f} {pm} {summary['eval_return_std']:.1f}"
              f"   ({eval_episodes} deterministic episodes per seed)")
    print(f"  compile        {outcome.compile_s:.2f} s" + ("   (the warm-up ran in it, with the initial state)"
                                                          if warmup and not first else ""))
    if rate:
        if first:   # this process ran part of the run: its steps over its time, and the run's total apart
            print(f"  run            this process: {process_steps:,} env steps (updates {first + 1}-"
                  f"{outcome.updates_done}) in {outcome.run_s:.2f} s ({rate:,.0f} env steps/s); run total: "
                  f"{per_seed * seeds:,} env steps")
        else:
            print(f"  run            {outcome.run_s:.2f} s   ({rate:,.0f} env steps/s"
                  + (f" over the {process_steps:,} env steps after the warm-up)" if warmup else ")"))
    print(f"  wrote          {out}/  (config.json, metrics.csv, metrics.json, summary.json, checkpoints/)")
    return 0


def train_command(args: argparse.Namespace) -> int:
    from purerl.run import runner

    _, cfg, _ = _base_config(args)
    out = Path(args.out) if args.out else Path("runs") / f"{args.algo}-{cfg.env.replace('/', '_')}-{time.strftime('%Y%m%d-%H%M%S')}"
    outcome = runner.train(args.algo, cfg, out, seeds=args.seeds, seed=args.seed,
                           checkpoint_every=args.checkpoint_every, fused=args.fused,
                           progress=not args.no_progress, loggers=_loggers(args), eval_episodes=args.eval_episodes,
                           overwrite=args.overwrite)
    import jax

    if jax.process_index() != 0:   # a run of several processes: process 0 reports and writes it
        return _finish_other(outcome, args.algo, cfg, args.seeds)
    return _finish(outcome, args.algo, cfg, out, args.seeds, args.seed, args.eval_episodes)


def _other_stopped(outcome, kind: str = "run") -> int | None:
    """What a process other than 0 of a run (or sweep) of several says when it diverged or was interrupted (one
    line) and its exit code; None for one that finished."""
    import jax

    who = f"process {jax.process_index()} of {jax.process_count()}"
    if outcome.error is not None:
        print(f"purerl: {who}: stopped: {outcome.error}; process 0 keeps the last good checkpoint",
              file=sys.stderr)
        return EXIT_DIVERGED
    if outcome.interrupted:
        print(f"purerl: {who}: interrupted after {outcome.updates_done}/{outcome.num_updates} updates; process 0 "
              f"saved the {kind}", file=sys.stderr)
        return 128 + (outcome.signal or 2)
    return None


def _finish_other(outcome, algo: str, cfg: Any, seeds: int) -> int:
    """What a process other than 0 of a run of several says (one line) and its exit code."""
    import jax

    code = _other_stopped(outcome)
    if code is not None:
        return code
    who = f"process {jax.process_index()} of {jax.process_count()}"
    print(f"{who}: {algo} on {cfg.env}, {seeds * jax.local_device_count() // jax.device_count()} of the {seeds} "
          f"seeds trained here; process 0 prints the results and writes the run directory")
    return 0


def resume_command(args: argparse.Namespace) -> Any:
    from purerl.run import rundir, runner

    out = Path(args.dir)
    if rundir.kind_of(out) == "sweep":
        from purerl import sweep

        return _report_sweep(sweep.resume(out), out)
    body = rundir.read_config(out)
    outcome = runner.resume(out, progress=not args.no_progress, loggers=_loggers(args),
                            eval_episodes=args.eval_episodes)
    cfg = outcome.trainer.config
    return _finish(outcome, body["algo"], cfg, out, body["seeds"], body["seed"], args.eval_episodes)


def eval_command(args: argparse.Namespace) -> dict:
    """Deterministic (mode) and stochastic returns over ``--episodes`` episodes per seed of a run's saved
    policy, with the run's saved normaliser statistics (:func:`purerl.run.rundir.eval_report`)."""
    from purerl.run import rundir, stats

    if not 0 <= args.seed < 2**32:
        raise ValueError(f"--seed must lie in [0, 2**32 - 1], got {args.seed}")
    if args.out and Path(args.out).is_dir():
        raise ValueError(f"--out {args.out} is a directory; give the report file's path")
    run = rundir.load(args.dir, step=args.step)
    print(f"{run.algo} on {run.config.env}: {run.seeds} seed(s), state after {run.step} updates, "
          f"{args.episodes} episodes per seed")
    print(f"  {'policy':<14}{'mean':>10}{'std':>10}{'min':>10}{'max':>10}{'IQM':>10}  {'95% CI of the IQM':<20}"
          f"per-seed means")
    report = rundir.eval_report(run, args.episodes, args.seed)
    for mode, _ in rundir.EVAL_MODES:
        r = report[mode]
        per_seed = " ".join(f"{v:.1f}" for v in r["per_seed_mean"][:8]) + (" ..." if run.seeds > 8 else "")
        band = f"[{r['iqm_ci'][0]:.1f}, {r['iqm_ci'][1]:.1f}]"
        print(f"  {mode:<14}{r['mean']:>10.1f}{r['std']:>10.1f}{r['min']:>10.1f}{r['max']:>10.1f}"
              f"{r['iqm']:>10.1f}  {band:<20}{per_seed}")
    over = "the seed's mean return" if run.seeds == 1 else f"the {run.seeds} seeds' mean returns"
    print(f"  IQM: interquartile mean over {over}; CI: stratified bootstrap over seeds, {stats.REPS} resamples")
    print(f"  wrote {rundir.write_eval_report(report, args.out)}")
    return report


def render_command(args: argparse.Namespace) -> Path:
    import jax

    from purerl.run import render, rundir

    run = rundir.load(args.dir)
    if not 0 <= args.seed_index < run.seeds:
        raise ValueError(f"--seed-index must lie in [0, {run.seeds - 1}] for this {run.seeds}-seed run, "
                         f"got {args.seed_index}")
    path = Path(args.out) if args.out else run.path / ("render" + render.render_format(run.config.env))
    path = render.render(run.trainer, run.seed_state(args.seed_index), path, jax.random.key(args.seed),
                         max_steps=args.max_steps, deterministic=not args.stochastic)
    print(f"wrote {path}{render.note(path)}")   # a Brax page: that it loads its scripts online
    return path


def export_command(args: argparse.Namespace) -> Any:
    """The deterministic policy of a run as a jax.export or ONNX file (:mod:`purerl.run.export`)."""
    from purerl.run import export

    try:
        written = export.export_policy(args.dir, step=args.step, format=args.format, out=args.out,
                                       seed_index=args.seed_index, platforms=args.platforms, opset=args.opset)
    except ImportError as e:   # the onnx extra is not installed: the message says what to install
        raise ValueError(str(e)) from None
    print(f"wrote {written.path} ({written.format}): {written.signature}")
    return written


def plot_command(args: argparse.Namespace) -> Path:
    from purerl.run import plot, stats

    if not 0 <= args.seed < 2**32:
        raise ValueError(f"--seed must lie in [0, 2**32 - 1] (a numpy bootstrap seed), got {args.seed}")
    out = Path(args.out) if args.out else Path(args.dirs[0]) / f"{args.metric}{'_iqm' if args.aggregate else ''}.png"
    if out.is_dir():
        raise ValueError(f"--out {out} is a directory; give the PNG file's path")
    curves = plot.load_curves(args.dirs, args.metric, args.label, top=args.top)
    for c in curves:  # the final value per seed of each curve: its IQM with a stratified-bootstrap 95% CI
        final = stats.final_scores(c["values"])
        ci = stats.iqm_ci(final, seed=args.seed)
        name = c["dir"] if c["config_index"] is None else f"{c['dir']} config {c['config_index']} ({c['label']})"
        print(f"{name}: final {args.metric} IQM {ci.point:.1f}, 95% CI [{ci.low:.1f}, {ci.high:.1f}] over "
              f"{len(final)} seed(s) (stratified bootstrap, {stats.REPS} resamples)")
    for d in dict.fromkeys(str(c["dir"]) for c in curves if c["config_index"] is not None):
        n = next(c["configs_in_sweep"] for c in curves if str(c["dir"]) == d)
        if n > args.top:
            print(f"{d}: a sweep of {n} configs; drawing its best {args.top} (--top changes how many)")
    path = plot.plot_runs(args.dirs, out, metric=args.metric, labels=args.label, aggregate=args.aggregate,
                          reps=args.reps, seed=args.seed, max_points=args.points, top=args.top)
    print(f"wrote {path} and {path.with_suffix('.json')} (the curves and bands drawn)")
    envs = {c["env"] for c in curves}
    if args.aggregate and len(envs) > 1:   # the profile is extra: runs it cannot compare skip it with a note
        try:
            prof = plot.plot_profile(args.dirs, path.with_name(path.stem + "_profile.png"), metric=args.metric,
                                     labels=args.label, seed=args.seed)
        except ValueError as e:
            print(f"no performance profile: {e}")
        else:
            print(f"wrote {prof} (performance profile over {len(envs)} envs)")
    return path


def bench_command(args: argparse.Namespace) -> list:
    from purerl.run import bench

    out = Path(args.out) if args.out else None
    for flag, path, suffix in (("--out", out, ".json"), ("--plot", Path(args.plot) if args.plot else None, ".png")):
        if path is not None and (path.is_dir() or path.suffix.lower() != suffix):
            raise ValueError(f"{flag} {path}: give a file path ending in {suffix}")
    ns = argparse.Namespace(algo=args.algo, env=args.env, total_timesteps=args.steps, num_envs=None, set=args.set,
                            preset=args.preset, config=args.config)
    try:
        mod, cfg, _ = _base_config(ns)
    except (ValueError, TypeError) as e:
        hint = " (`purerl bench` sets it with --steps)" if "`total_timesteps`" in str(e) else ""
        raise type(e)(f"{e}{hint}") from None
    num_envs = args.num_envs or [cfg.num_envs]
    trainers = bench.validate_points(mod, cfg, num_envs, args.seeds)   # every point checked before compiling
    device = bench.device_info()
    steps = bench.steps_text(cfg.total_timesteps, [(t.config.num_envs, bench.steps_per_seed(t)) for t in trainers])
    print(f"{args.algo} on {cfg.env}: num_envs {','.join(map(str, num_envs))} x seeds "
          f"{','.join(map(str, args.seeds))}, {steps}; {device['platform']} ({device['device_kind']}), "
          f"jax {device['jax']}", flush=True)
    rows = bench.run_bench(args.algo, cfg, num_envs, args.seeds, repeats=args.repeats, seed=args.seed,
                           log=lambda line: print(line, flush=True), trainers=trainers)
    print()
    print(bench.format_table(rows, device, args.repeats))
    out = out or Path("runs") / f"bench-{args.algo}-{cfg.env.replace('/', '_')}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    print(f"wrote {bench.write_report(out, cfg, rows, device, args.repeats)}")
    if args.plot:
        print(f"wrote {bench.plot_bench(rows, device, args.plot)}")
    return rows


def presets_command(args: argparse.Namespace) -> None:
    from purerl import presets

    for name in presets.names():
        p = presets.load(name)
        print(f"{name:<28} {p.algo:<9} {p.config.get('env', ''):<22} {p.reaches}")


def _parse_grid(items: list[str] | None) -> dict[str, list[float]]:
    grid = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"--grid expects field=v1,v2,..., got {item!r}")
        name, vals = item.split("=", 1)
        try:
            grid[name.strip().replace("-", "_")] = [float(v) for v in vals.split(",") if v.strip()]
        except ValueError:
            raise ValueError(f"--grid {name}: values must be numbers, got {vals!r}") from None
        if not grid[name.strip().replace("-", "_")]:
            raise ValueError(f"--grid {name}: give at least one value, e.g. --grid {name}=1e-4,3e-4")
    return grid


def _parse_space(items: list[str] | None) -> dict[str, tuple]:
    space = {}
    for item in items or []:
        name, _, spec = item.partition("=")
        parts = spec.split(":")
        if not name or len(parts) not in (2, 3):
            raise ValueError(f"--random expects field=low:high or field=low:high:log, got {item!r}")
        try:
            space[name.strip().replace("-", "_")] = (float(parts[0]), float(parts[1]), *parts[2:])
        except ValueError:
            raise ValueError(f"--random {name}: low and high must be numbers, got {spec!r}") from None
    return space


def _report_sweep(res, out: Path) -> Any:
    """Report a sweep that ran (or resumed) into ``out``: process 0 prints the ranked table (the sweep wrote its
    directory as it ran); a diverged or interrupted sweep is one line and its exit code."""
    import jax

    if jax.process_index() != 0:   # every process holds the whole result; process 0 reports it
        code = _other_stopped(res, "sweep")
        if code is not None:
            return code
        print(f"process {jax.process_index()} of {jax.process_count()}: sweep done on {res.devices} device(s) "
              f"in all; process 0 prints and writes the results")
        return res
    code = _stopped(res, out, "sweep", "metrics.npz")
    if code is not None:
        return code
    resumed = f", resumed after update {res.start_update} of {res.num_updates}" if res.start_update else ""
    print(f"{res.algo} on {res.config.env}: {res.num_configs} config(s) x {res.seeds} seed(s) on {res.devices} "
          f"device(s), {res.chunks} chunk(s){resumed}; compile {res.compile_s:.1f} s, run {res.run_s:.1f} s")
    print(f"final {res.metric} (mean of the last 5% of log points) of each config over its seeds:")
    print(res.table())
    if res.out is not None:
        _wrote_sweep(out)
    return res


def _wrote_sweep(out: Path) -> None:
    print(f"  wrote {out}/  (sweep.json, metrics.npz with [config, seed, log point] arrays; `purerl plot {out}` "
          f"draws the configs' curves; checkpoints/, which `purerl resume {out}` continues from)")


def sweep_command(args: argparse.Namespace) -> Any:
    from purerl import sweep

    if args.samples and not args.random:
        raise ValueError(f"--samples {args.samples} draws from --random ranges; give --random FIELD=LOW:HIGH[:log] too")
    if args.random and not args.samples:
        raise ValueError("--random needs --samples N, the number of random draws (at least 1)")
    grid, space = _parse_grid(args.grid), _parse_space(args.random)
    mod, cfg, _ = _base_config(args)
    from purerl.run import runner

    out = Path(args.out) if args.out else Path("runs") / f"sweep-{args.algo}-{cfg.env.replace('/', '_')}-{time.strftime('%Y%m%d-%H%M%S')}"
    with contextlib.ExitStack() as held:
        # process 0 locks --out and checks it before anything is compiled; the old sweep stays until the new one's
        # first checkpoint
        runner.claim(out, held, "sweep", args.overwrite)
        res = sweep.run(mod, cfg, grid, space=space, samples=args.samples, seeds=args.seeds, seed=args.seed,
                        chunk_size=args.chunk_size, out=out, overwrite=args.overwrite,
                        checkpoint_every=args.checkpoint_every)
        reported = _report_sweep(res, out)
        if reported is res and res.out is None and res.finished:   # process 0 of a result not written as it ran
            import jax

            if jax.process_index() == 0:
                res.save(out, overwrite=args.overwrite, flags=("--out", "--overwrite"))
                _wrote_sweep(out)
    return reported


def _cluster_args(p: argparse.ArgumentParser, how: str = "") -> None:
    g = p.add_argument_group("several processes (hosts), through jax.distributed; " + how + "give every process "
                             "the same command with its own --process-id")
    g.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                   help="process 0's address and a free port; process 0 hosts the coordination service there")
    g.add_argument("--num-processes", type=int, default=None, metavar="N", help="processes in the run")
    g.add_argument("--process-id", type=int, default=None, metavar="I", help="this process's index, 0 to N-1; "
                   "process 0 prints the results and writes the files")
    g.add_argument("--heartbeat-timeout", type=int, default=100, metavar="SECONDS",
                   help="a process silent this long counts as dead, and every process stops with exit code 4 "
                   "(default %(default)s)")
    g.add_argument("--connect-timeout", type=int, default=300, metavar="SECONDS",
                   help="how long to wait for every process to join (default %(default)s)")


def _cluster(args: argparse.Namespace):
    """The cluster the flags describe (None: one process), checked."""
    if not hasattr(args, "coordinator"):
        return None
    from purerl.run import cluster

    return cluster.check(args.coordinator, args.num_processes, args.process_id, args.heartbeat_timeout,
                         args.connect_timeout)


def _recorded_devices(run_dir: str) -> int | None:
    """The devices a run's seeds were split over (its config.json), read without jax; None where it says none."""
    try:
        return int(json.loads((Path(run_dir) / "config.json").read_text()).get("devices") or 0) or None
    except (OSError, ValueError, TypeError, AttributeError):
        return None   # resume itself says what is wrong with the directory


def _devices_arg(p: argparse.ArgumentParser, what: str = "seeds",
                 default: str = "one per core by default (the most that divide them evenly)") -> None:
    p.add_argument("--cpu-devices", type=_count(1), default=None, metavar="N",
                   help=f"on a CPU, split the {what} over N jax devices, {default}; 1 runs everything as one "
                   f"device. Ignored with --coordinator (the devices are XLA_FLAGS') and where XLA_FLAGS sets "
                   f"--xla_force_host_platform_device_count")


def _common(p: argparse.ArgumentParser, *, cache: bool = True) -> None:
    if cache:
        p.add_argument("--cache-dir", default=_default_cache_dir(),
                       help="JAX persistent compilation cache: a repeated run reuses the compiled program "
                       "(default %(default)s; $PURERL_CACHE_DIR changes it)")
        p.add_argument("--no-cache", action="store_true", help="do not read or write the compilation cache")


def _config_args(p: argparse.ArgumentParser, what: str) -> None:
    g = p.add_argument_group("config")
    src = g.add_mutually_exclusive_group()
    src.add_argument("--preset", default=None, help="start from a shipped preset (`purerl presets` lists them)")
    src.add_argument("--config", default=None, metavar="FILE",
                     help="start from a TOML/JSON file with a [config] table, or a run's config.json")
    _env_arg(g)
    g.add_argument("--total-timesteps", type=_count(), default=None, help=f"env steps per {what} (1e6 works)")
    g.add_argument("--num-envs", type=_count(), default=None, help=f"parallel environments per {what}")
    g.add_argument("--set", action="append", metavar="FIELD=VALUE",
                   help="override any config field (repeatable; applied last)")


def _logging_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", action="store_true", help="no live progress bar")
    p.add_argument("--eval-episodes", type=_count(1), default=10, help="deterministic evaluation episodes per seed "
                   "at the end")
    p.add_argument("--tensorboard", action="store_true",
                   help="also write TensorBoard event files to OUT/tensorboard/seed_K (needs tensorboardX)")
    p.add_argument("--wandb", default=None, metavar="PROJECT", help="also log to this Weights & Biases project "
                   "(needs wandb; the mean over seeds and each seed)")
    p.add_argument("--wandb-entity", default=None, help="W&B entity (team or user)")


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    p = _Parser(prog="purerl", description="purerl: policy-gradient RL as fused JAX programs.\n\n" +
                                __doc__.split("\n\n")[1], formatter_class=fmt)
    p.add_argument("--version", action=_Version, help="print purerl's version (with jax's and Python's) and exit")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train an agent into a run directory",
                       description="Train ALGO; `purerl train ALGO --help` lists its config fields.")
    algos = t.add_subparsers(dest="algo", required=True, metavar="ALGO", title="algorithms")
    for name in ALGOS:
        a = algos.add_parser(name, help=f"train {name}", formatter_class=fmt, epilog=lambda name=name: _config_fields_epilog(name),
                             description=f"Train {name}. Config: defaults < --preset/--config < --env/"
                             f"--total-timesteps/--num-envs < --set.")
        _config_args(a, "seed")
        a.add_argument("--seeds", type=_count(1), default=1, help="independent seeds, vmapped in one program")
        a.add_argument("--seed", type=int, default=0, help="base PRNG seed")
        a.add_argument("--out", default=None, help="run directory (default runs/ALGO-ENV-TIME); a directory that "
                       "holds a sweep is refused, one that holds a run unless --overwrite")
        a.add_argument("--overwrite", action="store_true", help="replace the run already in --out (the old one stays "
                       "until the new one's first checkpoint)")
        a.add_argument("--checkpoint-every", type=_count(0), default=0, metavar="UPDATES",
                       help="also save the whole train state every UPDATES updates (log points), for crashes; "
                       "by default it is saved at the end, on Ctrl-C and before a divergence. The run goes in "
                       "chunks of UPDATES (default: a tenth of the run), checked for NaN/inf after each")
        a.add_argument("--fused", action="store_true",
                       help="run as one fused program (no chunks: Ctrl-C cannot save, the NaN/inf check runs at "
                       "the end); the fastest way for short runs")
        _logging_args(a)
        _devices_arg(a)
        _common(a)
        _cluster_args(a, "the seeds are split over the devices of all processes (--seeds a multiple of their "
                         "count); ")

    r = sub.add_parser("resume", help="continue a run or a sweep from its newest checkpoint",
                       description="Continue the run (purerl train) or the sweep (purerl sweep) in DIR from its "
                       "newest checkpoint with its own config and chunking; the result equals an uninterrupted "
                       "run or sweep bit for bit. A sweep prints its ranked table; the evaluation and logger "
                       "options are a run's.")
    r.add_argument("dir")
    _logging_args(r)
    _devices_arg(r, default="by default as many as the run used (its config.json), so that the resumed run "
                 "equals the uninterrupted one bit for bit")
    _common(r)

    e = sub.add_parser("eval", help="evaluate a trained run (deterministic and stochastic)",
                       description="Return statistics of the run's final policy (mode and sampled actions) over "
                       "EPISODES episodes per seed, with the run's saved observation statistics; writes DIR/eval.json.")
    e.add_argument("dir")
    e.add_argument("--episodes", type=_count(1), default=10, help="episodes per seed and policy")
    e.add_argument("--seed", type=int, default=1234, help="PRNG seed of the evaluation episodes")
    e.add_argument("--step", type=_count(0), default=None, help="checkpoint to evaluate (default: the newest)")
    e.add_argument("--out", default=None, help="report path (default DIR/eval.json)")
    _common(e)

    v = sub.add_parser("render", help="render an episode of a trained run (HTML for Brax, GIF for gymnax)",
                       description="Play one episode of the run in DIR with its trained policy (the mode, or "
                       "--stochastic) and its saved observation statistics, and draw it: DIR/render.html, Brax's "
                       "interactive viewer, for a Brax env (open it in a browser; it loads its scripts from the "
                       "internet), DIR/render.gif, an animated GIF with the step and return on each frame, for a "
                       "gymnax env that has a renderer (classic control and the ones gymnax draws).")
    v.add_argument("dir", metavar="DIR")
    v.add_argument("--out", default=None, help="output path (default DIR/render.html or DIR/render.gif)")
    v.add_argument("--seed-index", type=_count(0), default=0, help="which of the run's seeds to render")
    v.add_argument("--seed", type=int, default=0, help="PRNG seed of the rendered episode")
    v.add_argument("--max-steps", type=_count(1), default=None, help="at most this many steps (default: one episode)")
    v.add_argument("--stochastic", action="store_true", help="sample actions instead of the policy's mode")
    _common(v)

    x = sub.add_parser("export", help="write a trained policy to a file that runs without purerl (jax or ONNX)",
                       formatter_class=fmt, description="""\
Write the deterministic policy of the run in DIR (what trainer.policy(state) computes) to a file:
raw observations in (float32 [batch, obs_dim], any batch size), the run's saved observation normalisation
folded in, the actions the env takes out (int32 [batch] for a discrete env; float32 [batch, action_dim]
within the env's bounds for a continuous one). A recurrent policy takes and returns its memory:
(memory [batch, H], obs) -> (action, next memory), an episode starting from zeros [batch, H].
The file is loaded back and checked against the policy before the command ends.""", epilog="""formats:
  jax    jax.export's serialised StableHLO; needs jax (this version or newer) and flatbuffers:
           policy = jax.export.deserialize(open("policy.jax", "rb").read())
           action = policy.call(obs)                  # recurrent: action, memory = policy.call(memory, obs)
  onnx   through jax2onnx (pip install "purerl[onnx]"), for onnxruntime and other ONNX runtimes:
           session = onnxruntime.InferenceSession("policy.onnx")
           action, = session.run(None, {"obs": obs})  # recurrent: inputs memory, obs; outputs action, next_memory""")
    x.add_argument("dir")
    x.add_argument("--format", choices=("jax", "onnx"), default="jax", help="file format (default %(default)s)")
    x.add_argument("--out", default=None, metavar="FILE", help="output path (default DIR/policy.jax or "
                   "DIR/policy.onnx)")
    x.add_argument("--step", type=_count(0), default=None, help="checkpoint to export (default: the newest)")
    x.add_argument("--seed-index", type=_count(0), default=0, help="which of the run's seeds to export (default 0)")
    x.add_argument("--platforms", default="cpu,cuda", metavar="P1,P2", help="jax format: the backends the file "
                   "runs on, of cpu, cuda, rocm, tpu (default %(default)s)")
    x.add_argument("--opset", type=int, default=21, help="onnx format: the ONNX opset (default %(default)s)")
    _common(x)

    pl = sub.add_parser("plot", help="learning curves of one or several runs as PNG",
                        description="Learning curves of the run directories (purerl train) and sweep "
                        "directories (purerl sweep: one curve per config, the best --top) in DIR...: the mean "
                        "over seeds with a 95% percentile-bootstrap band of the mean (within the seeds' range), "
                        "or with --aggregate the interquartile mean (IQM) with a stratified-bootstrap 95% band, "
                        "and (runs of several envs) a performance profile. Prints each curve's final IQM with "
                        "its bootstrap CI; the numbers drawn go to OUT's .json.")
    pl.add_argument("dirs", nargs="+", metavar="DIR")
    pl.add_argument("--metric", default="episode_return", help="metric to plot (default %(default)s)")
    pl.add_argument("--label", action="append", default=None, help="legend label per DIR (repeatable)")
    pl.add_argument("--out", default=None, help="PNG path (default FIRST_DIR/METRIC.png, FIRST_DIR/METRIC_iqm.png "
                    "with --aggregate)")
    pl.add_argument("--aggregate", action="store_true",
                    help="IQM curves with stratified-bootstrap 95%% bands (numbers also in OUT's .json); runs of "
                    "several envs also give OUT_profile.png, a performance profile of the final values, when every "
                    "method has a run of every env (otherwise a note says why there is none)")
    pl.add_argument("--reps", type=_count(1), default=2000, help="bootstrap resamples per log point (default "
                    "%(default)s)")
    pl.add_argument("--points", type=_count(2), default=200, help="the curve and band at this many log points spread "
                    "evenly over each run (default %(default)s)")
    pl.add_argument("--top", type=_count(1), default=10, help="a sweep directory's best configs to draw, in the "
                    "sweep's ranking (default %(default)s)")
    pl.add_argument("--seed", type=int, default=0, help="seed of the bootstrap resampling")

    b = sub.add_parser("bench", help="throughput: compile/run time and env steps/s against num_envs and seeds",
                       description="For each --num-envs x --seeds point: compile s, run s (the second call of the "
                       "compiled program), env steps/s (all seeds) and the env-only ceiling (random actions "
                       "through the same env wrappers, same envs, seeds and steps) with training/ceiling. "
                       "Prints a table naming the device and jax version, writes it as JSON (and --plot PNG). "
                       "The compilation cache is not used, so compile times are first compiles.")
    b.add_argument("algo", choices=ALGOS, metavar="ALGO", help=f"algorithm: {', '.join(ALGOS)}")
    g = b.add_argument_group("config")
    src = g.add_mutually_exclusive_group()
    src.add_argument("--preset", default=None, help="start from a shipped preset (`purerl presets` lists them)")
    src.add_argument("--config", default=None, metavar="FILE", help="start from a TOML/JSON config file")
    _env_arg(g)
    g.add_argument("--set", action="append", metavar="FIELD=VALUE", help="override any config field (repeatable)")
    b.add_argument("--num-envs", type=_count_list, default=None, metavar="N1,N2,...",
                   help="parallel envs per seed at each point (default: the config's)")
    b.add_argument("--seeds", type=_count_list, default=[1], metavar="S1,S2,...",
                   help="vmapped seeds at each point (default 1)")
    b.add_argument("--steps", type=_count(), default=None, metavar="N",
                   help="env steps per seed (total_timesteps; default: the config's)")
    b.add_argument("--repeats", type=_count(1), default=1, help="timed calls after the warm-up call; the median is "
                   "reported (default 1: the second call)")
    b.add_argument("--seed", type=int, default=0, help="base PRNG seed")
    b.add_argument("--out", default=None, metavar="FILE.json", help="JSON path (default runs/bench-ALGO-ENV-TIME.json)")
    b.add_argument("--plot", default=None, metavar="FILE.png", help="also draw env steps/s against num_envs")
    _devices_arg(b)

    w = sub.add_parser("sweep", help="sweep numeric hyperparameters x seeds in one vmapped program",
                       description="Every combination of --grid values (and --samples random draws from "
                       "--random ranges) x --seeds, as one jitted program sharded over the local devices.")
    w.add_argument("algo", choices=ALGOS, metavar="ALGO", help=f"algorithm: {', '.join(ALGOS)}")
    _config_args(w, "run")
    w.add_argument("--grid", action="append", metavar="FIELD=V1,V2,...", help="grid values (repeatable)")
    w.add_argument("--random", action="append", metavar="FIELD=LOW:HIGH[:log]",
                   help="random range, uniform or log-uniform (repeatable; with --samples)")
    w.add_argument("--samples", type=_count(0), default=0, help="random draws from the --random ranges")
    w.add_argument("--seeds", type=_count(1), default=4, help="seeds per config")
    w.add_argument("--seed", type=int, default=0, help="base PRNG seed")
    w.add_argument("--chunk-size", type=_count(1), default=None, help="at most this many runs per program call")
    w.add_argument("--checkpoint-every", type=_count(0), default=0, metavar="UPDATES",
                   help="also save the whole sweep state every UPDATES updates (log points), for crashes and a lost "
                   "process; by default it is saved at the end, on Ctrl-C and before a divergence. The sweep goes "
                   "in chunks of UPDATES (default: a tenth of the run), checked for NaN/inf after each; `purerl "
                   "resume DIR` continues a stopped sweep")
    w.add_argument("--out", default=None, help="output directory (default runs/sweep-ALGO-ENV-TIME); a directory "
                   "that holds a run is refused, one that holds a sweep unless --overwrite")
    w.add_argument("--overwrite", action="store_true", help="replace the sweep already in --out (the old one stays "
                   "until the new one's first checkpoint)")
    _cluster_args(w)
    _devices_arg(w, "runs (configs x seeds)")
    _common(w)

    sub.add_parser("presets", help="list the shipped presets and the returns they reach",
                   description="One line per shipped preset (purerl/presets/NAME.toml): its name, algorithm, env "
                   "and the return it reaches as measured by benchmarks/presets.py. Start from one with "
                   "`purerl train ALGO --preset NAME`.")
    return p


def main(argv: list[str] | None = None, *, exit_now: bool = False) -> int:
    """Run a command; the exit code (0, 2 bad input, 3 divergence, 128 + signal number when stopped).
    ``exit_now`` (the ``purerl`` command): end an interrupted process at once rather than return."""
    argv = sys.argv[1:] if argv is None else argv
    if "--no-cache" not in argv:
        # Loading a cached XLA:CPU program logs error-level C++ lines per program ("Loading XLA:CPU AOT result
        # ... could lead to execution errors such as SIGILL": the cached target's feature list names tuning
        # flags the host check does not know), which read as a crash on a healthy run. Keep C++ logging to
        # fatal messages unless the user chose a level (other than "1", which `import jax` in a parent process
        # puts into the environment); it must be set before jaxlib is loaded.
        if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "1") == "1":
            os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    args = build_parser().parse_args(argv)
    if hasattr(args, "cpu_devices") and getattr(args, "coordinator", None) is None:
        from purerl.run import devices

        count = args.cpu_devices
        if count is None and args.command == "resume":   # split the seeds as the run did: bit-identical
            count = _recorded_devices(args.dir)
        devices.use_cpu_cores(count)   # before jax starts its CPU backend
    cluster_ = None
    commands = {"train": train_command, "resume": resume_command, "eval": eval_command, "render": render_command,
                "plot": plot_command, "bench": bench_command, "sweep": sweep_command, "presets": presets_command}
    commands["export"] = export_command
    try:
        if hasattr(args, "cache_dir") and not args.no_cache:
            try:
                setup_compilation_cache(args.cache_dir)
            except OSError as e:
                raise ValueError(f"--cache-dir {args.cache_dir} cannot be used ({_one_line(e)}); give a writable "
                                 f"directory or pass --no-cache") from None
        cluster_ = _cluster(args)
        if cluster_ is not None:
            _join(cluster_)
        code = commands[args.command](args)
    except BrokenPipeError:  # the reader went away (`purerl presets | head -1`): nothing more to say
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt as e:  # runner.Interrupted: a stop signal while a run was starting
        from purerl.run.runner import Interrupted

        if isinstance(e, Interrupted):
            print(f"\npurerl: interrupted ({e}) while starting; nothing was written", file=sys.stderr)
            return _exit_now(128 + e.signum, exit_now)
        print("\npurerl: interrupted" + (f" ({e})" if str(e) else ""), file=sys.stderr)
        return _exit_now(130, exit_now)
    except (ValueError, TypeError) as e:
        print(f"purerl: error: {e}", file=sys.stderr)
        # a process of several that fails alone ends at once: waiting in jax's shutdown for the others, which may
        # be inside a collective that needs this process, would hold them all until the heartbeat timeout; a
        # refusal every process reached (runner.RunRefused) ends the ordinary way, all of them together
        if cluster_ is not None:
            from purerl.run.runner import RunRefused

            return _exit_now(EXIT_BAD_INPUT, not isinstance(e, RunRefused))
        return EXIT_BAD_INPUT
    except OSError as e:  # a full disk, a file where a directory belongs, an unreachable download
        print(f"purerl: error: {_one_line(e)}", file=sys.stderr)
        return _exit_now(EXIT_BAD_INPUT, cluster_ is not None)
    except Exception as e:
        from purerl.run import cluster

        if cluster_ is not None and cluster.is_lost(e):
            cluster.exit_lost(cluster_, e)   # at once: jax's shutdown at exit would wait for the lost process
        text = _one_line(e)
        if "RESOURCE_EXHAUSTED" in text or "Out of memory" in text or isinstance(e, MemoryError):
            print("purerl: error: out of memory while compiling or running the program; lower --num-envs, "
                  "--seeds or the network sizes (num_envs x seeds x the rollout length sets the memory it needs)"
                  f" [{text[:200]}]", file=sys.stderr)
            return EXIT_BAD_INPUT
        raise
    if isinstance(code, int) and code > 128:  # interrupted: do not wait for programs compiling in the background
        return _exit_now(code, exit_now)
    return code if isinstance(code, int) else 0


def _join(cluster_) -> None:
    """Connect to the other processes (``jax.distributed.initialize``); a failure is one line and exit code 4."""
    from purerl.run import cluster

    print(f"purerl: {cluster_.describe()}: connecting (waiting up to {cluster_.connect_timeout} s for all "
          f"{cluster_.num_processes} processes)", file=sys.stderr, flush=True)
    try:
        cluster.connect(cluster_)
    except Exception as e:  # noqa: BLE001 - the runtime raises several kinds
        print(f"purerl: error: {cluster_.describe()}: could not join the run within {cluster_.connect_timeout} s "
              f"({_one_line(e)[:200]}); check that every process got the same --coordinator and "
              f"--num-processes and its own --process-id", file=sys.stderr, flush=True)
        os._exit(cluster.EXIT_CLUSTER)   # jax's shutdown at exit would wait for the missing processes
    import jax

    print(f"purerl: {cluster_.describe()}: connected; {jax.device_count()} devices in all, "
          f"{jax.local_device_count()} here", file=sys.stderr, flush=True)


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _exit_now(code: int, exit_now: bool) -> int:
    """End the process at once with ``code`` (an interrupted command: a program still compiling or running on a
    helper thread would otherwise hold the exit until it finishes)."""
    if exit_now:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _warning_line(message, category, filename, lineno, line=None) -> str:
    return f"purerl: {category.__name__}: {message}\n"


def console() -> None:
    """The ``purerl`` command (warnings, such as a renamed config field's, as one line each)."""
    import warnings

    warnings.formatwarning = _warning_line
    argv = sys.argv[1:]
    if ("--coordinator" in argv or any(a.startswith("--coordinator=") for a in argv)) and "-h" not in argv \
            and "--help" not in argv:
        from purerl.run import cluster

        if not cluster.is_child():
            try:   # a process of a cluster runs under a supervisor that keeps its output to one line per failure
                cluster_ = _cluster(build_parser().parse_args(argv))
            except ValueError as e:
                print(f"purerl: error: {e}", file=sys.stderr)
                sys.exit(EXIT_BAD_INPUT)
            if cluster_ is not None:
                sys.exit(cluster.supervise(argv, cluster_))
    code = main(exit_now=True)
    # The interpreter's last act is a garbage collection over every object still alive: after a run, the
    # millions that jax, flax and the env suites created, 1-3 s on a 2-core CPU for nothing (the process ends).
    # Frozen objects are left out of it; exit handlers (files, loggers, checkpoints) still run.
    import gc

    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    console()
