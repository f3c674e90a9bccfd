import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from purerl.run import stats


def _purerl(*args, cwd, **env):
    environ = {k: v for k, v in dict(os.environ, JAX_PLATFORMS="cpu", **env).items() if v is not None}
    return subprocess.run([sys.executable, "-m", "purerl.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=environ)


def _looks_like_an_error(stderr: str) -> list[str]:
    """Lines a user would read as a failure: C++ log lines (E/W/F + date), tracebacks, 'error'/'warning'."""
    return [line for line in stderr.replace("\r", "\n").splitlines()
            if re.match(r"^[EWF]\d{4} ", line) or "Traceback" in line or re.search(r"(?i)\b(error|warning)\b", line)]


def test_train_writes_run_directory_and_summary(tmp_path):
    out = tmp_path / "run"
    args = ("train", "ppo", "--env", "CartPole-v1", "--total-timesteps", "2048", "--num-envs", "4", "--seeds", "2",
            "--set", "num_steps=64", "--set", "hidden_sizes=16,16", "--out", str(out), "--cache-dir",
            str(tmp_path / "cache"))
    p = _purerl(*args, cwd=tmp_path, TF_CPP_MIN_LOG_LEVEL=None)   # as from a fresh shell
    assert p.returncode == 0, p.stderr
    assert not _looks_like_an_error(p.stderr), p.stderr
    # the same command again replaces the run (--overwrite) from the compilation cache, and prints nothing that
    # looks like an error either (loading cached XLA:CPU programs logs C++ error lines unless kept quiet)
    assert list((tmp_path / "cache").iterdir())
    p = _purerl(*args, "--overwrite", cwd=tmp_path, TF_CPP_MIN_LOG_LEVEL="1")  # as from a process that imported jax
    assert p.returncode == 0, p.stderr
    assert not _looks_like_an_error(p.stderr), p.stderr
    assert "final return" in p.stdout and "compile" in p.stdout and "env steps/s" in p.stdout
    for name in ("config.json", "metrics.csv", "metrics.json", "summary.json"):
        assert (out / name).is_file(), name
    assert (out / "checkpoints" / "8").is_dir()                      # the final train state
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seeds"] == 2 and summary["env_steps_per_seed"] == 2048
    metrics = json.loads((out / "metrics.json").read_text())
    assert np.asarray(metrics["env_steps"]).shape == (2, 8)          # [seeds, log points]
    config = json.loads((out / "config.json").read_text())["config"]
    assert config["num_steps"] == 64 and config["hidden_sizes"] == [16, 16]
    lines = (out / "metrics.csv").read_text().strip().splitlines()
    assert len(lines) == 1 + 2 * 8


def test_bad_config_is_a_clear_error(tmp_path):
    p = _purerl("train", "ppo", "--set", "gamma=1.5", "--no-progress", cwd=tmp_path)
    assert p.returncode == 2 and "`gamma`" in p.stderr
    p = _purerl("train", "ppo", "--env", "CartPol-v1", "--no-progress", cwd=tmp_path)
    assert p.returncode == 2 and "CartPole-v1" in p.stderr


def test_train_sac_from_the_command_line(tmp_path):
    out = tmp_path / "sac"
    p = _purerl("train", "sac", "--env", "Pendulum-v1", "--total-timesteps", "600", "--set", "learning_starts=200",
                "--set", "hidden_sizes=16,16", "--set", "batch_size=32", "--set", "num_log_points=3",
                "--eval-episodes", "2", "--no-progress", "--out", str(out), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert np.asarray(metrics["eval_return"]).shape == (1, 3)
    assert np.isfinite(np.asarray(metrics["critic_loss"])).all()
    # the header, summary.json and the metrics count the same env steps: the 200 warm-up steps included
    steps = metrics["env_steps"][0][-1]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["env_steps_per_seed"] == steps and summary["warmup_env_steps_per_seed"] == 200
    assert summary["process_env_steps"] == steps - 200
    assert f"1 seed(s) x {steps:,} env steps (200 of them random warm-up)" in p.stdout, p.stdout
    p = _purerl("train", "td3", "--env", "CartPole-v1", "--no-progress", cwd=tmp_path)
    assert p.returncode == 2 and "discrete" in p.stderr


def test_discrete_sac_is_offered_with_its_preset_and_refuses_continuous_actions(tmp_path):
    p = _purerl("presets", cwd=tmp_path)
    assert p.returncode == 0 and "sac_discrete-cartpole" in p.stdout, p.stdout
    p = _purerl("train", "sac_discrete", "--env", "Pendulum-v1", "--no-progress", cwd=tmp_path)
    assert p.returncode == 2 and "needs discrete actions" in p.stderr and len(p.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_train_discrete_sac_from_its_preset(tmp_path):
    """`purerl train sac_discrete --preset sac_discrete-cartpole` end to end on a tiny budget, then `purerl eval`
    of the run directory: the preset's env and fields, --set over them, integer actions through the loop."""
    out = tmp_path / "run"
    p = _purerl("train", "sac_discrete", "--preset", "sac_discrete-cartpole", "--set", "total_timesteps=600",
                "--set", "learning_starts=200", "--set", "batch_size=32", "--eval-episodes", "2", "--no-progress",
                "--out", str(out), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["algo"] == "sac_discrete" and config["config"]["env"] == "CartPole-v1"
    assert config["config"]["num_log_points"] == 10 and config["config"]["total_timesteps"] == 600
    metrics = json.loads((out / "metrics.json").read_text())
    assert np.asarray(metrics["eval_return"]).shape == (1, 10) and np.isfinite(metrics["critic_loss"]).all()
    assert (np.asarray(metrics["eval_return"]) >= 8).all()     # CartPole-v1 lasts at least 8 steps
    assert "sac_discrete on CartPole-v1: 1 seed(s) x" in p.stdout, p.stdout
    p = _purerl("eval", str(out), "--episodes", "3", cwd=tmp_path)
    assert p.returncode == 0, p.stderr


PPO_TINY = ["--env", "CartPole-v1", "--num-envs", "4", "--set", "num_steps=32", "--set", "hidden_sizes=16,16",
            "--set", "num_minibatches=2", "--no-progress"]


def test_fused_run_agrees_with_chunked_run(tmp_path):
    """A fused run and a chunked one are the same computation compiled as different programs: equal to float
    rounding (README: "--fused")."""
    fused, chunked = tmp_path / "fused", tmp_path / "chunked"
    for out, extra in ((fused, ["--fused"]), (chunked, ["--checkpoint-every", "3"])):
        p = _purerl("train", "ppo", *PPO_TINY, "--total-timesteps", str(4 * 32 * 8), "--seeds", "2",
                    "--out", str(out), *extra, cwd=tmp_path)
        assert p.returncode == 0, p.stderr[-3000:]
    a = json.loads((fused / "metrics.json").read_text())
    b = json.loads((chunked / "metrics.json").read_text())
    for k in a:
        np.testing.assert_allclose(np.asarray(a[k]), np.asarray(b[k]), rtol=1e-5, atol=1e-6, err_msg=k)
    assert sorted(int(d.name) for d in (chunked / "checkpoints").iterdir() if d.name.isdigit()) == [6, 8]


def test_round_trip_train_eval_plot_render(tmp_path):
    """The day-to-day loop on a tiny budget: train two seeds (chunked, TensorBoard on), then evaluate,
    plot and render the saved run; each command reads only the run directory."""
    out = tmp_path / "run"
    cache = tmp_path / "cache"
    p = _purerl("train", "ppo", *PPO_TINY, "--total-timesteps", str(4 * 32 * 6), "--seeds", "2",
                "--checkpoint-every", "4", "--tensorboard", "--cache-dir", str(cache), "--out", str(out), cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    assert sorted(int(d.name) for d in (out / "checkpoints").iterdir() if d.name.isdigit()) == [4, 6]
    assert len(list((out / "tensorboard" / "seed_1").glob("events.out.tfevents.*"))) == 1
    assert any(cache.iterdir()), "the compilation cache stayed empty"

    p = _purerl("eval", str(out), "--episodes", "3", "--cache-dir", str(cache), cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    report = json.loads((out / "eval.json").read_text())
    assert report["updates"] == 6 and report["seeds"] == 2
    for mode in ("deterministic", "stochastic"):
        returns = np.asarray(report[mode]["returns"])
        assert returns.shape == (2, 3) and (returns >= 1).all()       # CartPole: +1 per step survived
        assert report[mode]["min"] == returns.min() and report[mode]["max"] == returns.max()
        assert abs(report[mode]["mean"] - returns.mean()) < 1e-9
        per_seed = returns.mean(axis=1)             # 2 seeds: the IQM cuts none, it is their mean
        assert report[mode]["iqm"] == per_seed.mean()
        ci = stats.iqm_ci(per_seed, seed=1234)      # the --seed of eval
        assert report[mode]["iqm_ci"] == [ci.low, ci.high] and ci.low <= ci.point <= ci.high
    assert "deterministic" in p.stdout and "stochastic" in p.stdout and "IQM" in p.stdout

    png = tmp_path / "curve.png"
    p = _purerl("plot", str(out), str(out), "--label", "a", "--label", "b", "--out", str(png), cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    from PIL import Image

    assert Image.open(png).size[0] > 300
    p = _purerl("plot", str(out), "--aggregate", "--reps", "50", cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    assert Image.open(out / "episode_return_iqm.png").size[0] > 300
    drawn = json.loads((out / "episode_return_iqm.json").read_text())["curves"][0]
    ret = np.asarray(json.loads((out / "metrics.json").read_text())["episode_return"])
    np.testing.assert_allclose(drawn["iqm"], ret.mean(axis=0), rtol=1e-12)   # 2 seeds: the mean at every point
    final = stats.iqm_ci(stats.final_scores(ret))
    assert f"IQM {final.point:.1f}, 95% CI [{final.low:.1f}, {final.high:.1f}] over 2 seed(s)" in p.stdout
    p = _purerl("plot", str(out), "--aggregate", "--reps", "0", cwd=tmp_path)
    assert p.returncode == 2 and "--reps" in p.stderr and len(p.stderr.strip().splitlines()) == 1

    p = _purerl("render", str(out), "--seed-index", "1", "--max-steps", "5", "--cache-dir", str(cache), cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    gif = Image.open(out / "render.gif")
    assert gif.n_frames == 6                                         # the initial state and 5 steps
    p = _purerl("render", str(out), "--seed-index", "2", cwd=tmp_path)
    assert p.returncode == 2 and "--seed-index" in p.stderr
    p = _purerl("eval", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert p.returncode == 2 and "not a purerl run directory" in p.stderr


def test_commands_that_do_not_train_do_not_import_jax(tmp_path):
    """The parser lists each algorithm's config fields only when `--help` shows them, so `purerl presets` (or a
    bad argument) answers without importing jax and the algorithms."""
    code = ("import sys; from purerl import cli; code = cli.main(['presets']); "
            "print('JAX' if 'jax' in sys.modules else 'NOJAX', code)")
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().splitlines()[-1] == "NOJAX 0" and "ppo-cartpole" in p.stdout
    # nor does `purerl plot --aggregate` (IQM, bootstrap and performance profile are numpy)
    for env, d in (("CartPole-v1", "a"), ("Pendulum-v1", "b")):
        (tmp_path / d).mkdir()
        (tmp_path / d / "config.json").write_text(json.dumps({"algo": "ppo", "seeds": 2, "seed": 0, "config": {"env": env}}))
        (tmp_path / d / "metrics.json").write_text(json.dumps({"env_steps": [[1, 2], [1, 2]],
                                                                "episode_return": [[1, 2], [3, 4]]}))
    code = ("import sys; from purerl import cli; code = cli.main(['plot', 'a', 'b', '--aggregate', '--out', 'p.png']); "
            "print('JAX' if 'jax' in sys.modules else 'NOJAX', code)")
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().splitlines()[-1] == "NOJAX 0" and (tmp_path / "p_profile.png").is_file()


def test_a_renamed_field_is_one_warning_line_then_used(tmp_path):
    # the old name is read as the new one (normalize_obs/normalize_reward apply to CartPole); the run is then
    # refused for its budget, before anything is compiled: one warning line, one error line, exit 2
    p = _purerl("train", "ppo", "--set", "scale_reward=true", "--total-timesteps", "1", "--out", str(tmp_path / "r"),
                cwd=tmp_path)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 2, p.stderr
    assert lines[0].startswith("purerl: FutureWarning: --set: config field `scale_reward` was renamed "
                               "`normalize_reward`")
    assert "`total_timesteps`" in lines[1]


def test_train_refuses_a_sweep_directory_and_a_run_without_overwrite_leaving_them_byte_identical(tmp_path, capsys):
    """`purerl train --out` on a sweep directory is refused even with --overwrite (a sweep is never replaced by
    a run), on a run without --overwrite; one line, exit 2, before anything is compiled, every file as it was."""
    from _helpers import digest
    from purerl import cli
    from purerl.run import sweepdir

    sw = tmp_path / "sw"
    sweepdir.write_sweep(sw, algo="ppo", config={"env": "CartPole-v1"}, seeds=2, seed=0, metric="episode_return",
                         values={"learning_rate": [1e-4]}, metrics={"episode_return": np.ones((1, 2, 3)),
                                                                    "env_steps": np.ones((1, 2, 3))},
                         summary=[], best={}, final_returns=np.ones((1, 2)))
    run = tmp_path / "run"
    (run / "checkpoints" / "8").mkdir(parents=True)
    (run / "config.json").write_text('{"algo": "ppo", "seeds": 1, "seed": 0, "config": {}}')
    before = {d: digest(d) for d in (sw, run)}
    for where, extra, needle in ((sw, [], "holds a sweep (sweep.json, metrics.npz), not a run: choose another --out "
                                         "(--overwrite replaces only a run, never a sweep)"),
                                 (sw, ["--overwrite"], "holds a sweep"),
                                 (run, [], "already holds a run: continue it with `purerl resume")):
        code = cli.main(["train", "ppo", *PPO_TINY, "--no-cache", "--out", str(where), *extra])
        err = capsys.readouterr().err
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert {d: digest(d) for d in (sw, run)} == before


# ----------------------------------------------------------------------------- what the command line says

@pytest.mark.parametrize("argv, says", [
    (["train", "ppo", "--total_timesteps", "1000"],
     "purerl train ppo: error: unrecognized option --total_timesteps; did you mean --total-timesteps? "
     "(see `purerl train ppo --help`)"),
    (["train", "ppo", "--num_envs=8"], "unrecognized option --num_envs; did you mean --num-envs?"),
    (["train", "ppo", "CartPole-v1"], "purerl train ppo: error: unexpected argument 'CartPole-v1'; an env is given "
                                      "with its option: --env CartPole-v1 (see `purerl train ppo --help`)"),
    (["sweep", "ppo", "CartPole-v1"], "purerl sweep: error: unexpected argument 'CartPole-v1'; an env is given"),
    (["train", "--env", "CartPole-v1", "ppo", "--seeds", "2"],
     "purerl train: error: the algorithm comes before its options: purerl train ppo --seeds 2 --env CartPole-v1"),
    (["--no-cache", "eval", "runs/x"], "purerl: error: the command comes before its options: purerl eval runs/x "
                                       "--no-cache"),
    (["bench", "ppo", "--total_timesteps", "5"], "purerl bench: error: unrecognized option --total_timesteps; did "
                                                 "you mean --steps?"),
    (["train", "ppo", "--set", "normalize_obs=maybe", "--no-cache"],
     "config field `normalize_obs` is a switch: give one of true/false, yes/no, on/off, 1/0 (any case), got "
     "'maybe'"),
])
def test_a_mistyped_command_line_is_one_line_naming_what_was_meant(argv, says, capsys):
    from purerl import cli

    try:
        code = cli.main(argv)
    except SystemExit as e:   # argparse's own errors
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and says in err, err


def test_version_and_every_command_and_env_option_described(capsys):
    """`purerl --version`; every command has a description in its --help; each --env help lists every suite's
    ids, read from purerl.envs.SUITES."""
    from importlib import metadata

    import purerl
    from purerl import cli
    from purerl.envs import SUITES

    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and out.startswith(f"purerl {purerl.__version__} (jax {metadata.version('jax')}, Python ")
    assert purerl.__version__ == metadata.version("purerl")
    commands = next(a for a in cli.build_parser()._actions if a.dest == "command").choices
    assert {"train", "resume", "eval", "render", "export", "plot", "bench", "sweep", "presets"} <= set(commands)
    for name, parser in commands.items():
        assert parser.description and len(parser.description) > 40, name
    algos = next(a for a in commands["train"]._actions if a.dest == "algo").choices
    for name, parser in [("bench", commands["bench"]), ("sweep", commands["sweep"]), ("train ppo", algos["ppo"])]:
        text = " ".join(parser.format_help().split())
        for suite in SUITES:
            assert (f"{suite.prefix}<name>" if suite.prefix else "CartPole-v1") in text, (name, suite.prefix)


def test_resume_into_a_locked_run_names_no_out_option(tmp_path, capsys):
    """`purerl resume` has no --out: its refusal of a locked run says to wait, not to choose another --out."""
    import socket
    import subprocess
    import sys

    from purerl import cli, ppo
    from purerl.run import rundir

    run = tmp_path / "run"
    rundir.write_config(run, "ppo", ppo.Config(env="CartPole-v1", num_envs=4, num_steps=32, total_timesteps=1024,
                                               hidden_sizes=(16, 16)), 1, 0)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (run / ".lock").write_text(f"{socket.gethostname()} {sleeper.pid}")
        code = cli.main(["resume", str(run), "--no-cache", "--no-progress"])
    finally:
        sleeper.kill()
        sleeper.wait()
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert f"{run} is being written by another purerl run" in err and "wait for it to finish." in err, err
    assert "--out" not in err


def test_eval_of_one_seed_speaks_of_one_seed(tmp_path, monkeypatch, capsys):
    """`purerl eval`'s IQM line: "over the seed's mean return" for one seed, "over the 3 seeds'" for three."""
    import types

    from purerl import cli
    from purerl.run import rundir

    for seeds, says in ((1, "IQM: interquartile mean over the seed's mean return;"),
                        (3, "IQM: interquartile mean over the 3 seeds' mean returns;")):
        run = types.SimpleNamespace(algo="ppo", config=types.SimpleNamespace(env="CartPole-v1"), seeds=seeds, step=4,
                                    path=tmp_path)
        mode = {"mean": 1.0, "std": 0.0, "min": 1.0, "max": 1.0, "per_seed_mean": [1.0] * seeds, "iqm": 1.0,
                "iqm_ci": [1.0, 1.0]}
        monkeypatch.setattr(rundir, "load", lambda *a, **k: run)
        monkeypatch.setattr(rundir, "eval_report", lambda *a, **k: {"run": str(tmp_path), "deterministic": mode,
                                                                    "stochastic": mode})
        assert cli.main(["eval", str(tmp_path), "--no-cache"]) == 0
        out = capsys.readouterr().out
        assert says in out and "1 seeds" not in out, out


@pytest.mark.parametrize("seeds", [1, 2])
def test_the_progress_bar_draws_its_complete_line_once(seeds):
    """The bar's 100% line is drawn once, at close, with the last return: not also by the last report or by the
    return shown after the last chunk (a log or a notebook showed it twice)."""
    import io

    from purerl.run.progressbar import ProgressBar

    buf = io.StringIO()
    bar = ProgressBar(seeds, file=buf)
    bar.start(10, 100)
    bar.bar.mininterval = 0      # draw at every report, as a slow run does
    for update in range(1, 11):
        bar({"update": update, "episode_return": 5.0 * update} if seeds == 1 else {"update": update})
    if seeds > 1:
        bar.show_return(7.5)     # the runner's mean over seeds after the last chunk
    bar.close()
    frames = [f for f in buf.getvalue().replace("\n", "\r").split("\r") if f.strip()]
    complete = [f for f in frames if "100%" in f]
    assert len(complete) == 1, frames
    assert "1.00k/1.00k" in complete[0] and f"ret={50.0 if seeds == 1 else 7.5}" in complete[0], complete
    assert len(frames) > 3       # drawn along the way too


def test_bench_header_says_the_steps_asked_and_the_whole_updates_run(tmp_path, monkeypatch, capsys):
    """`purerl bench --steps 100000`: PPO runs whole updates of num_envs x 128 steps, 99,840 steps per seed at
    num_envs 4 and 98,304 at 64; the line before the run and the table's header say both, not 100,000 then
    99,840."""
    from purerl import cli
    from purerl.run import bench

    def run_bench(algo, cfg, num_envs, seeds, trainers=None, **kwargs):   # the rows, without timing anything
        return [{"algo": algo, "env": cfg.env, "num_envs": t.config.num_envs, "seeds": 1,
                 "total_timesteps": cfg.total_timesteps, "steps_per_seed": bench.steps_per_seed(t), "compile_s": 1.0,
                 "run_s": 1.0, "steps_per_s": 1.0, "ceiling_steps_per_s": 2.0, "train_over_ceiling": 0.5}
                for t in trainers]

    monkeypatch.setattr(bench, "run_bench", run_bench)
    for num_envs, steps, says in (
            ("4,64", "100000", "100,000 env steps per seed asked; run in whole updates: 99,840 at num_envs 4, "
                               "98,304 at num_envs 64"),
            ("4", "1e5", "100,000 env steps per seed asked, 99,840 run (whole updates)"),
            ("4", "4096", "4,096 env steps per seed;")):
        code = cli.main(["bench", "ppo", "--env", "CartPole-v1", "--num-envs", num_envs, "--steps", steps,
                         "--out", str(tmp_path / "b.json")])
        lines = capsys.readouterr().out.splitlines()
        header = next(line for line in lines if line.startswith("device:"))
        assert code == 0 and says in lines[0] and says.rstrip(";") in header, lines


def test_the_readme_synopsis_lists_every_command_and_only_options_each_takes():
    """The README's command-line synopsis: every command (export included), the options a new user reaches for
    (--seed, --overwrite, --fused, --no-progress), and no option its command does not take."""
    from pathlib import Path

    from purerl import cli

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    block = readme.split("\n## Command line\n", 1)[1].split("```bash\n", 1)[1].split("\n```", 1)[0]
    top = cli.build_parser()
    commands = next(a for a in top._actions if a.dest == "command").choices
    algos = next(a for a in commands["train"]._actions if a.dest == "algo").choices
    listed: dict[str, set[str]] = {}
    command = None
    for line in block.splitlines():
        text = line.split("  #", 1)[0]
        if line.startswith("purerl "):
            command = text.split()[1] if not text.split()[1].startswith("-") else "purerl"
        listed.setdefault(command, set()).update(re.findall(r"(?<![\w-])--[a-z][a-z-]*", text))
    assert set(listed) == set(commands) | {"purerl"}, sorted(listed)
    for command, options in listed.items():
        parser = top if command == "purerl" else algos["ppo"] if command == "train" else commands[command]
        takes = {o for a in parser._actions for o in a.option_strings}
        assert options <= takes, (command, sorted(options - takes))
    assert {"--seed", "--overwrite", "--fused", "--no-progress"} <= listed["train"]
    assert {"--seed", "--overwrite"} <= listed["sweep"] and "--version" in listed["purerl"]
