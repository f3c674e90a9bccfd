"""Runs that survive: stop signals, the run-directory lock, --overwrite, failed starts, a full disk, damaged
files, and a command line that answers bad input in one line."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import types

import numpy as np
import pytest

from purerl import cli, ppo
from purerl.config import apply_overrides
from purerl.run import rundir, runner, signals

PPO_TINY = ["--env", "CartPole-v1", "--num-envs", "4", "--set", "num_steps=32", "--set", "hidden_sizes=16,16",
            "--set", "num_minibatches=2", "--no-progress"]


def _tiny(total=4 * 32 * 8):
    return apply_overrides(ppo.Config(env="CartPole-v1", num_envs=4, total_timesteps=total),
                           ["num_steps=32", "hidden_sizes=16,16", "num_minibatches=2"])


def _fake_run(out):
    """A directory holding a finished run's files (content is not read by the tests that use it)."""
    (out / "checkpoints" / "8").mkdir(parents=True)
    (out / "config.json").write_text('{"old": true}')
    (out / "metrics.csv").write_text("old")


def _start(args, tmp_path):
    # Ctrl-C as in a terminal: a test runner's worker may ignore SIGINT, and purerl leaves an ignored one ignored
    code = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "from purerl.cli import console; sys.argv[0] = 'purerl'; console()")
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, JAX_PLATFORMS="cpu"))


class _StderrReader:
    """A process's stderr, read on a thread as it comes, so a test can wait for a message before acting."""

    def __init__(self, proc):
        self.lines, self.proc = [], proc
        self.thread = threading.Thread(target=lambda: self.lines.extend(iter(proc.stderr.readline, "")),
                                       daemon=True)
        self.thread.start()

    def wait_for(self, text, timeout=300):
        deadline = time.time() + timeout
        while text not in "".join(self.lines):
            assert self.proc.poll() is None or self.thread.is_alive(), "".join(self.lines)[-3000:]
            assert time.time() < deadline, f"{text!r} did not appear: {''.join(self.lines)[-3000:]}"
            time.sleep(0.02)

    def text(self):
        self.thread.join(timeout=60)
        return "".join(self.lines)


def _wait_for(path, proc, timeout=300):
    deadline = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.time() < deadline, f"{path} did not appear"
        time.sleep(0.05)


# --- --overwrite, the lock, failed starts ------------------------------------------------------------------

def test_overwrite_with_a_typo_keeps_the_old_run(tmp_path, capsys):
    out = tmp_path / "run"
    _fake_run(out)
    code = cli.main(["train", "ppo", *PPO_TINY, "--env", "CartPol-v1", "--out", str(out), "--overwrite"])
    assert code == 2 and "CartPole-v1" in capsys.readouterr().err
    assert (out / "checkpoints" / "8").is_dir() and (out / "config.json").read_text() == '{"old": true}'
    assert not (out / ".lock").exists()


def test_a_run_directory_is_refused_without_overwrite_and_a_file_is_not_a_directory(tmp_path, capsys):
    out = tmp_path / "run"
    _fake_run(out)
    assert cli.main(["train", "ppo", *PPO_TINY, "--out", str(out)]) == 2
    assert "already holds a run" in capsys.readouterr().err and (out / "checkpoints" / "8").is_dir()
    (tmp_path / "file").write_text("x")
    assert cli.main(["train", "ppo", *PPO_TINY, "--out", str(tmp_path / "file")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a file" in err


def test_a_locked_run_directory_is_refused_and_a_stale_lock_is_taken_over(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / ".lock").write_text(f"{socket.gethostname()} {sleeper.pid}")
        with pytest.raises(ValueError, match=r"being written by another purerl run.*choose another --out"):
            runner.train("ppo", _tiny(), out)
        assert (out / ".lock").exists() and not (out / "config.json").exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    # the same lock, its process gone: taken over, and released when the lock holder leaves
    with rundir.RunLock(out):
        assert (out / ".lock").read_text() == f"{socket.gethostname()} {os.getpid()}"
    assert not (out / ".lock").exists()
    (out / ".lock").write_text(f"another-host {os.getpid()}")  # another host's lock is never taken over
    with pytest.raises(ValueError, match="another-host"):
        rundir.RunLock(out).__enter__()


def test_a_failed_start_leaves_no_directory_and_the_corrected_run_starts(tmp_path, monkeypatch):
    out = tmp_path / "new" / "run"
    good = ppo.make(_tiny())

    def broken_update(state):
        raise ValueError("a tracing error")

    monkeypatch.setattr(ppo, "make", lambda cfg, **kw: good.replace(update=broken_update))
    with pytest.raises(ValueError, match="a tracing error"):
        runner.train("ppo", _tiny(), out)
    assert not out.exists()                       # created for the lock, removed again
    old = tmp_path / "old"
    _fake_run(old)
    with pytest.raises(ValueError, match="a tracing error"):
        runner.train("ppo", _tiny(), old, overwrite=True)
    assert (old / "checkpoints" / "8").is_dir() and (old / "config.json").read_text() == '{"old": true}'
    monkeypatch.undo()
    outcome = runner.train("ppo", _tiny(), out)   # not blocked by a half-made directory
    assert outcome.finished and (out / "config.json").is_file() and not (out / ".lock").exists()
    # env_steps in the run's files: exact int64 counts
    steps = np.asarray(outcome.metrics["env_steps"])
    assert steps.dtype == np.int64 and steps[0].tolist() == [128 * k for k in range(1, 9)]
    assert json.loads((out / "metrics.json").read_text())["env_steps"][0][-1] == 1024


def test_exact_env_steps_past_two_to_the_31():
    class T:
        steps_per_log_point, env_steps_before = 2 ** 20, 1000

    metrics = {"env_steps": np.zeros((2, 3), np.float32), "loss": np.ones((2, 3))}
    got = runner._exact_env_steps(metrics, T, first_update=4095)
    assert got["env_steps"].tolist() == [[1000 + k * 2 ** 20 for k in (4095, 4096, 4097)]] * 2
    assert got["env_steps"][0, 2] > 2 ** 31 and got["loss"] is metrics["loss"]


# --- a full disk, damaged files, out of memory ---------------------------------------------------------------

def test_a_failed_checkpoint_names_the_newest_good_one(tmp_path, monkeypatch, capsys):
    from purerl.run import checkpoint as ckpt

    real_save, calls = ckpt.save, []

    def save(directory, state, step, meta=None):
        calls.append(step)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_save(directory, state, step, meta)

    monkeypatch.setattr(ckpt, "save", save)
    out = tmp_path / "run"
    code = cli.main(["train", "ppo", *PPO_TINY, "--total-timesteps", str(4 * 32 * 8), "--checkpoint-every", "2",
                     "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "could not save the checkpoint after update 4" in err and "No space left on device" in err
    assert f"newest good checkpoint is {out / 'checkpoints'}/2" in err and "purerl resume" in err
    assert ckpt.latest_step(out / "checkpoints") == 2 and not (out / ".lock").exists()
    assert np.asarray(json.loads((out / "metrics.json").read_text())["env_steps"]).shape == (1, 4)


def test_damaged_run_files_are_named(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text('{"algo": "ppo", "seeds": ')
    for command in (["resume", str(out)], ["eval", str(out)]):
        assert cli.main(command) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{out / 'config.json'} is damaged" in err
    (out / "config.json").write_text('{"algo": "ppo"}')
    assert cli.main(["resume", str(out)]) == 2 and "lacks seeds, seed, config" in capsys.readouterr().err


def test_out_of_memory_is_one_line(monkeypatch, capsys):
    def train(*args, **kwargs):
        raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 123456789 bytes.\nmore")

    monkeypatch.setattr(runner, "train", train)
    assert cli.main(["train", "ppo", *PPO_TINY]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "out of memory" in err and "--num-envs" in err


def test_a_string_in_a_config_file_is_refused_before_anything_is_written(tmp_path, capsys):
    (tmp_path / "c.toml").write_text('[config]\nenv = "CartPole-v1"\nanneal_lr = "false"\n')
    out = tmp_path / "run"
    assert cli.main(["train", "ppo", "--config", str(tmp_path / "c.toml"), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "`anneal_lr`" in err and "'false'" in err and not out.exists()


# --- stop signals (subprocesses) -------------------------------------------------------------------------------

def test_sigterm_saves_the_running_chunk_and_exits_143(tmp_path):
    out = tmp_path / "run"
    proc = _start(["train", "ppo", *PPO_TINY, "--total-timesteps", str(4 * 32 * 2000), "--out", str(out)], tmp_path)
    _wait_for(out / rundir.STAGING / "config.json", proc)   # written when training starts, moved into out
                                                            # with the first checkpoint
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 143, err[-3000:]
    assert "SIGTERM: stopping after the running chunk (updates 1-200 of 2000)" in err
    assert "saved the state after 200/2000 updates" in err and f"purerl resume {out}" in err
    from purerl.run import checkpoint as ckpt

    assert ckpt.latest_step(out / "checkpoints") == 200 and not (out / ".lock").exists()
    assert not (out / rundir.STAGING).exists() and (out / "config.json").is_file()
    run = rundir.load(out)
    assert run.step == 200 and int(run.state.update_step[0]) == 200


def test_a_second_ctrl_c_stops_at_once_and_keeps_the_last_finished_state(tmp_path):
    out = tmp_path / "run"
    # one chunk of 20,000 updates runs for many seconds: the second Ctrl-C must not wait for it
    proc = _start(["train", "ppo", *PPO_TINY, "--total-timesteps", str(4 * 32 * 200_000), "--out", str(out)],
                  tmp_path)
    _wait_for(out / rundir.STAGING / "config.json", proc)
    err_lines = _StderrReader(proc)
    proc.send_signal(signal.SIGINT)
    err_lines.wait_for("send it again (Ctrl-C) to stop at once")   # the first one was handled
    t = time.time()
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=300)
    err = err_lines.text()
    assert proc.returncode == 130, err[-3000:]
    assert time.time() - t < 20, "the second Ctrl-C waited for the chunk"
    assert "send it again (Ctrl-C) to stop at once" in err and "SIGINT again: stopping now" in err
    assert "saved the state after 0/200000 updates" in err
    run = rundir.load(out)                        # the initial state: `purerl resume` starts the run over
    assert run.step == 0 and int(run.state.update_step[0]) == 0


def test_ctrl_c_while_starting_writes_nothing(tmp_path):
    out = tmp_path / "run"
    proc = _start(["train", "ppo", *PPO_TINY, "--out", str(out), "--no-cache"], tmp_path)
    _wait_for(out / ".lock", proc)                # validated; now tracing and compiling
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-3000:]
    assert "interrupted (SIGINT) while starting; nothing was written" in err and "Traceback" not in err
    assert not out.exists()


A2C_SMALL = ["--env", "CartPole-v1", "--num-envs", "4", "--set", "num_steps=32", "--set", "hidden_sizes=16,16",
             "--total-timesteps", str(4 * 32 * 2000), "--no-progress"]   # 2000 updates in chunks of 200


def _left_behind(out, proc, err):
    """What a stopped `purerl train` left in ``out``: "nothing" (no directory) or a run that can be resumed
    ("resumable") or is finished ("finished"); anything else fails."""
    from purerl.run import checkpoint as ckpt

    assert "Traceback" not in err and "Exception ignored" not in err, err[-3000:]
    assert not (out / rundir.STAGING).exists() and not (out / ".lock").exists(), err[-3000:]
    if not out.exists():
        assert proc.returncode == 130, err[-3000:]
        assert err.strip().splitlines() == ["purerl: interrupted (SIGINT) while starting; nothing was written"], err
        return "nothing"
    body = rundir.read_config(out)
    step = ckpt.latest_step(out / "checkpoints")
    assert body["algo"] == "a2c" and step is not None, (sorted(p.name for p in out.iterdir()), err[-3000:])
    if proc.returncode == 0:
        assert step == 2000 and (out / "summary.json").is_file()
        return "finished"
    assert proc.returncode == 130 and f"saved the state after {step}/2000 updates" in err, err[-3000:]
    assert step < 2000
    if step:  # (a second Ctrl-C before the first chunk ended saves the initial state, with no metrics yet)
        assert np.asarray(json.loads((out / "metrics.json").read_text())["env_steps"]).shape == (1, step)
    return "resumable"


def _stop_at(runs, timeout=240):
    """Run ``(args, out, trigger, delay, twice)`` commands at once; each gets Ctrl-C ``delay`` s after its
    ``trigger`` path appears (and again 0.3 s later if ``twice``). Returns ``[(proc, stderr)]``."""
    procs = [_start(args, out.parent) for args, out, *_ in runs]
    fire = [None] * len(runs)
    sent = [0] * len(runs)
    deadline = time.time() + timeout
    while any(p.poll() is None for p in procs):
        assert time.time() < deadline, "the runs did not end"
        for i, (p, (_, _, trigger, delay, twice)) in enumerate(zip(procs, runs, strict=True)):
            if p.poll() is not None:
                continue
            if fire[i] is None and trigger.exists():
                fire[i] = time.time() + delay
            if fire[i] is not None and sent[i] < (2 if twice else 1) and time.time() >= fire[i] + 0.3 * sent[i]:
                p.send_signal(signal.SIGINT)
                sent[i] += 1
        time.sleep(0.01)
    return [(p, p.communicate()[1]) for p in procs]


def test_a_ctrl_c_at_any_moment_leaves_no_run_or_one_that_resumes(tmp_path):
    cache = ["--cache-dir", str(tmp_path / "cache")]
    train = lambda out, *more: ["train", "a2c", *A2C_SMALL, "--out", str(out), *cache, *more]  # noqa: E731
    # Training has started, nothing saved yet: the first chunk finishes and the run moves into its directory.
    # (This run also fills the compilation cache the runs below start from.)
    first = tmp_path / "first"
    [(proc, err)] = _stop_at([(train(first), first, first / rundir.STAGING / "config.json", 0.0, False)])
    assert _left_behind(first, proc, err) == "resumable" and "after 200/2000 updates" in err
    # Ctrl-C while starting (the lock is taken once the config is valid; then tracing, compiling, the first
    # chunk), once training runs (twice: at once), and as the first checkpoint moves the run into place.
    runs = [(train(tmp_path / f"t{i}"), tmp_path / f"t{i}", tmp_path / f"t{i}" / ".lock", delay, False)
            for i, delay in enumerate((0.0, 0.7, 1.5, 2.5))]
    runs.append((train(tmp_path / "twice"), tmp_path / "twice", tmp_path / "twice" / rundir.STAGING / "config.json",
                 0.0, True))
    runs.append((train(tmp_path / "moved", "--checkpoint-every", "200"), tmp_path / "moved",
                 tmp_path / "moved" / "config.json", 0.0, False))
    seen = [_left_behind(out, proc, err) for (proc, err), (_, out, *_) in zip(_stop_at(runs), runs, strict=True)]
    assert seen[-2:] == ["resumable", "resumable"] and seen[0] == "nothing", seen
    # A stopped start is not in the way of the same command; a stopped run resumes and finishes. The resumed
    # process reports its own part: 1800 updates of 128 env steps over its run time.
    again = next(out for (_, out, *_), what in zip(runs, seen, strict=True) if what == "nothing")
    (proc, err), (resumed, rerr) = _stop_at([(train(again), again, again / rundir.STAGING / "config.json", 0.0, False),
                                             (["resume", str(first), *cache], first, tmp_path / "never", 0, False)])
    assert _left_behind(again, proc, err) == "resumable"
    assert resumed.returncode == 0, rerr[-3000:]
    summary = json.loads((first / "summary.json").read_text())
    assert summary["start_update"] == 200 and summary["process_env_steps"] == 1800 * 128
    assert summary["env_steps_per_s"] == pytest.approx(1800 * 128 / summary["run_s"])
    assert summary["env_steps_per_seed"] == 2000 * 128


# --- the command line: one line per bad input ---------------------------------------------------------------------

@pytest.mark.parametrize("argv,says", [
    (["train"], "the following arguments are required: ALGO"),
    (["train", "ppx"], "invalid choice: 'ppx'"),
    (["train", "ppo", "--preset", "ppo-acrobot", "--config", "x.toml"], "not allowed with argument --preset"),
    (["train", "ppo", "--total-timesteps", "1.5e3x"], "expects a whole number such as 100000 or 1e5"),
    (["train", "ppo", "--set", "hidden_sizes=64,,64"], "`hidden_sizes` expects comma-separated values"),
    (["train", "ppo", "--config", "."], "is a directory"),
    (["train", "ppo", "--cache-dir", "/proc/purerl-cache"], "--cache-dir /proc/purerl-cache cannot be used"),
])
def test_command_line_errors_are_one_line(argv, says, capsys):
    try:
        code = cli.main(argv)
    except SystemExit as e:   # argparse's own errors
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and says in err, err


def test_counts_may_be_written_in_scientific_notation():
    args = cli.build_parser().parse_args(["train", "ppo", "--total-timesteps", "1e6", "--num-envs", "8"])
    assert args.total_timesteps == 1_000_000 and isinstance(args.total_timesteps, int) and args.num_envs == 8


def test_a_stop_signal_swallowed_during_start_is_raised_before_training(ctrl_c):
    # Python prints and ignores an exception raised inside a garbage-collection callback; a Ctrl-C that lands
    # there must still stop the start when it hands over to training
    with pytest.raises(signals.Interrupted) as stopped:
        with signals.Starting() as starting:
            try:
                signal.raise_signal(signal.SIGINT)
            except KeyboardInterrupt:
                pass                                   # swallowed, as in the GC callback
            starting.end()                             # the start is over: training would begin here
    assert stopped.value.signum == signal.SIGINT
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.fixture
def ctrl_c():
    """Ctrl-C raises KeyboardInterrupt here, as in a terminal (a test runner's worker may ignore it)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_a_ctrl_c_swallowed_by_a_gc_callback_prints_nothing_and_stops_the_start(monkeypatch, ctrl_c):
    # Python hands an exception raised in a garbage-collection callback (jax registers one) to
    # sys.unraisablehook, which prints "Exception ignored in ..." and a traceback, and goes on
    import gc

    reported = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)
    fired = []

    def callback(phase, info):
        if not fired:
            fired.append(phase)
            signal.raise_signal(signal.SIGINT)       # the handler raises Interrupted here, inside the callback

    gc.callbacks.append(callback)
    try:
        with pytest.raises(signals.Interrupted) as stopped:
            with signals.Starting() as starting:
                gc.collect()                           # swallowed: the start would go on
                assert fired and starting.seen == signal.SIGINT
                sys.unraisablehook(types.SimpleNamespace(exc_value=ValueError("another"), object=None))
                starting.check()                       # the next check raises it
    finally:
        gc.callbacks.remove(callback)
    assert stopped.value.signum == signal.SIGINT
    assert [type(u.exc_value) for u in reported] == [ValueError]   # only other exceptions are reported
    assert sys.unraisablehook == reported.append and signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_signals_wait_while_a_run_moves_into_its_directory(ctrl_c):
    with pytest.raises(KeyboardInterrupt):
        with signals.signals_held():
            signal.raise_signal(signal.SIGINT)
            moved = True                               # not cut short
        pytest.fail("the held Ctrl-C was not raised afterwards")
    assert moved and signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_new_run_replaces_the_old_one_only_when_committed(tmp_path):
    out = tmp_path / "run"
    _fake_run(out)
    (out / "notes.txt").write_text("mine")
    (out / rundir.STAGING).mkdir()
    (out / rundir.STAGING / "stale").write_text("from a killed start")
    with rundir.NewRun(out, replace=True) as new:     # stopped before its first checkpoint
        assert not (new.path / "stale").exists()
        rundir.write_config(new.path, "ppo", _tiny(), 1, 0)
        (new.path / "checkpoints" / "2").mkdir(parents=True)
    assert not (out / rundir.STAGING).exists() and (out / "config.json").read_text() == '{"old": true}'
    assert (out / "checkpoints" / "8").is_dir()
    with rundir.NewRun(out, replace=True) as new:
        rundir.write_config(new.path, "ppo", _tiny(), 1, 0)
        (new.path / "checkpoints" / "2").mkdir(parents=True)
        new.commit()
        assert new.path == out
        (new.path / "metrics.json").write_text("{}")
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints", "config.json", "metrics.json", "notes.txt"]
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["2"]
    assert rundir.read_config(out)["algo"] == "ppo" and (out / "notes.txt").read_text() == "mine"
