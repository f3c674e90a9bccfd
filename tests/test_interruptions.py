"""Runs that survive: stop signals, the run-directory lock, --overwrite, failed starts, a full disk, damaged
files, and a command line that answers bad input in one line."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from purerl import cli, ppo
from purerl.config import apply_overrides
from purerl.run import rundir, runner

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
    _wait_for(out / "config.json", proc)          # written when training starts
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 143, err[-3000:]
    assert "SIGTERM: stopping after the running chunk (updates 1-200 of 2000)" in err
    assert "saved the state after 200/2000 updates" in err and f"purerl resume {out}" in err
    from purerl.run import checkpoint as ckpt

    assert ckpt.latest_step(out / "checkpoints") == 200 and not (out / ".lock").exists()
    run = rundir.load(out)
    assert run.step == 200 and int(run.state.update_step[0]) == 200


def test_a_second_ctrl_c_stops_at_once_and_keeps_the_last_finished_state(tmp_path):
    out = tmp_path / "run"
    # one chunk of 20,000 updates runs for many seconds: the second Ctrl-C must not wait for it
    proc = _start(["train", "ppo", *PPO_TINY, "--total-timesteps", str(4 * 32 * 200_000), "--out", str(out)],
                  tmp_path)
    _wait_for(out / "config.json", proc)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    t = time.time()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
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


def test_a_stop_signal_swallowed_during_start_is_raised_before_training():
    # Python prints and ignores an exception raised inside a garbage-collection callback; a Ctrl-C that lands
    # there must still stop the start when it hands over to training
    with pytest.raises(runner.Interrupted) as stopped:
        with runner._Starting() as starting:
            try:
                signal.raise_signal(signal.SIGINT)
            except KeyboardInterrupt:
                pass                                   # swallowed, as in the GC callback
            starting.end()                             # the start is over: training would begin here
    assert stopped.value.signum == signal.SIGINT
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
