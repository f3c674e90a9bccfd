"""Several processes through JAX's own distributed runtime, on one machine: 2 processes x 2 CPU devices on
127.0.0.1 (gloo collectives) run the README's multi-host recipe as it is written (its Python block and its
`purerl sweep` commands, with a free port for 12345), and one process is killed mid-run.

- the sweep over the 4 devices of both processes equals the same sweep in one process of 4 devices, and only
  process 0 writes its files (each process runs in a directory of its own);
- one agent with its envs over the 4 devices equals the single-device run to float rounding;
- a killed process makes the other exit with code 4 and one line within the heartbeat timeout;
- `purerl train --seeds K` over both processes equals the same command in one process, process 0 alone writes
  the run, a Ctrl-C to process 1 stops both after the same chunk with the run saved, and one process resumes it.

Every cluster is started here: free ports, a time limit, and every process killed at the end, also when a
test fails.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SECTION = "### Several processes (hosts)"
LIMIT = 420   # seconds for one cluster's processes to finish


def _section() -> str:
    text = README.read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start)
    return text[start:end]


def readme_python() -> str:
    """The section's Python block."""
    return re.search(r"```python\n(.*?)```", _section(), re.S).group(1)


def readme_commands(command: str = "sweep") -> list[list[str]]:
    """The `purerl COMMAND ...` lines of the section's shell blocks (continuations joined, a trailing `&`
    dropped), as argv."""
    argvs = []
    for block in re.findall(r"```bash\n(.*?)```", _section(), re.S):
        argvs += [shlex.split(line.strip().rstrip("&"))[1:] for line in block.replace("\\\n", " ").splitlines()
                  if line.strip().startswith(f"purerl {command} ")]
    return argvs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(devices: int) -> dict:
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("JAX_COORDINATOR_ADDRESS", None)
    return env


def _as_from_a_shell() -> None:
    """Ctrl-C's default action, as a process started from a terminal has it. The test may run with SIGINT
    ignored (a shell without job control starts its background commands so, and a CI runner may), and an ignored
    signal stays ignored in the processes started from it, which then keep ignoring it, as `nohup` wants."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Processes:
    """Processes started together, each in its own directory with its output in files; all of them are
    killed (with their children) when the block ends, finished or not."""

    def __init__(self, tmp: Path, argvs: list[list[str]], devices: int = 2):
        self.procs, self.dirs = [], []
        for i, argv in enumerate(argvs):
            d = tmp / f"p{i}"
            d.mkdir(parents=True, exist_ok=True)
            self.dirs.append(d)
            self.procs.append(subprocess.Popen(argv, cwd=d, env=_env(devices), start_new_session=True,
                                               stdout=open(d / "stdout", "w"), stderr=open(d / "stderr", "w"),
                                               preexec_fn=_as_from_a_shell))

    def __enter__(self):
        return self

    def wait(self, i: int | None = None, timeout: float = LIMIT) -> list[int | None]:
        """Wait until process ``i`` (all: None) ended or ``timeout`` passed; the exit codes (None: running)."""
        deadline = time.monotonic() + timeout
        which = range(len(self.procs)) if i is None else [i]
        while time.monotonic() < deadline and any(self.procs[j].poll() is None for j in which):
            time.sleep(0.2)
        return [p.poll() for p in self.procs]

    def out(self, i: int) -> str:
        return (self.dirs[i] / "stdout").read_text()

    def err(self, i: int) -> str:
        return (self.dirs[i] / "stderr").read_text()

    def __exit__(self, *exc):
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            p.wait(timeout=30)


def _diff(a: dict, b: dict) -> float:
    assert set(a) == set(b)
    return max(float(np.max(np.abs(np.asarray(a[k], np.float64) - np.asarray(b[k], np.float64)))) for k in a)


REFERENCE = textwrap.dedent("""
    # the README's sweep in one process of 4 devices, its agent on one device
    import sys
    import jax, numpy as np
    from purerl import ppo, sweep
    cfg = {cfg}
    res = sweep.run(ppo, cfg, grid={grid}, seeds=2, log=None)
    single = jax.jit(ppo.make_train(cfg))(jax.random.key(0))
    np.savez(sys.argv[1], **{{"sweep/" + k: v for k, v in res.metrics.items()}},
             **{{"agent/" + k: np.asarray(v) for k, v in single.metrics.items()}},
             **{{f"params/{{i}}": np.asarray(v) for i, v in enumerate(jax.tree.leaves(single.state.params))}})
""")

DUMP = textwrap.dedent("""
    # added by the test: what each process holds
    import numpy as np
    params = multihost_utils.process_allgather(result.state.params, tiled=True)
    np.savez(f"result{sys.argv[1]}.npz", **{"sweep/" + k: v for k, v in res.metrics.items()},
             **{"agent/" + k: np.asarray(v) for k, v in metrics.items()},
             **{f"params/{i}": np.asarray(v) for i, v in enumerate(jax.tree.leaves(params))})
    sh = result.state.obs.sharding
    print("SHARDING", len(sh.device_set), str(sh.spec), jax.process_count(), jax.local_device_count(), flush=True)
""")


def _group(npz, prefix: str) -> dict:
    return {k[len(prefix) + 1:]: npz[k] for k in npz.files if k.startswith(prefix + "/")}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    """The README block's sweep in one process of 4 devices and its agent on one device."""
    code = readme_python()
    cfg = re.search(r"cfg = (ppo\.Config\(.*?\))\n", code, re.S).group(1)
    grid = re.search(r"grid=(\{.*?\})", code).group(1)
    out = tmp_path_factory.mktemp("reference") / "ref.npz"
    p = subprocess.run([sys.executable, "-c", REFERENCE.format(cfg=cfg, grid=grid), str(out)], env=_env(4),
                       capture_output=True, text=True, timeout=LIMIT)
    assert p.returncode == 0, p.stderr[-3000:]
    with np.load(out) as z:
        return {g: _group(z, g) for g in ("sweep", "agent", "params")}


def test_readme_recipe_two_processes_equal_one(tmp_path, reference):
    port = free_port()
    script = tmp_path / "multihost.py"
    code = readme_python()
    assert '"127.0.0.1:12345"' in code
    script.write_text(code.replace("12345", str(port)) + DUMP)
    with Processes(tmp_path, [[sys.executable, str(script), str(i)] for i in (0, 1)]) as ps:
        codes = ps.wait()
        for i in (0, 1):
            assert codes[i] == 0, f"process {i}: {codes[i]}\n{ps.err(i)[-3000:]}"
    for i in (0, 1):
        # each process saw 4 devices, 2 of them its own, and the agent's envs were split over all 4
        line = next(ln for ln in ps.out(i).splitlines() if ln.startswith("SHARDING"))
        assert line.split()[1:] == ["4", "P('envs',)", "2", "2"], line
        with np.load(tmp_path / f"p{i}" / f"result{i}.npz") as z:
            assert _diff(_group(z, "sweep"), reference["sweep"]) < 1e-5
            assert _diff(_group(z, "agent"), reference["agent"]) < 1e-4
            assert _diff(_group(z, "params"), reference["params"]) < 1e-4
    assert (tmp_path / "p0" / "sweep-lib" / "sweep.json").is_file()
    assert not (tmp_path / "p1" / "sweep-lib").exists()          # process 1 wrote nothing


@pytest.mark.slow  # .ci/run runs it on Python 3.11 (the multi-host step)
def test_readme_commands_sweep_on_two_processes(tmp_path, reference):
    argvs = readme_commands()
    assert len(argvs) == 2 and [a[a.index("--process-id") + 1] for a in argvs] == ["0", "1"]
    port = str(free_port())
    argvs = [[sys.executable, "-m", "purerl.cli", *[x.replace("12345", port) for x in a], "--no-cache"]
             for a in argvs]
    with Processes(tmp_path, argvs) as ps:
        codes = ps.wait()
        for i in (0, 1):
            assert codes[i] == 0, f"process {i}: {codes[i]}\n{ps.err(i)[-3000:]}"
    assert "rank" in ps.out(0) and "wrote" in ps.out(0)                  # process 0 reports
    assert "rank" not in ps.out(1) and "process 0 prints and writes" in ps.out(1)
    for i in (0, 1):
        assert "4 devices in all, 2 here" in ps.err(i)
        assert "[Gloo]" not in ps.out(i) + ps.err(i)                     # the runtime's log lines are held back
    with np.load(tmp_path / "p0" / "sweep-cli" / "metrics.npz") as z:
        got = {k: z[k] for k in z.files if k != "value_learning_rate"}   # the swept values are stored too
    assert _diff(got, reference["sweep"]) < 1e-5
    assert not (tmp_path / "p1" / "sweep-cli").exists()


@pytest.mark.slow  # .ci/run runs it on Python 3.11 (the multi-host step)
@pytest.mark.parametrize("command, killed", [("sweep", 1), ("sweep", 0), ("train", 1)],
                         ids=["worker-killed", "coordinator-killed", "train-worker-killed"])
def test_a_killed_process_stops_the_other_with_one_line(tmp_path, command, killed):
    # a sweep (or a training run) long enough to be running when a process is killed (process 0 hosts the
    # coordination service); the heartbeat timeout bounds the survivor's wait
    heartbeat, survivor = 10, 1 - killed
    port = str(free_port())
    what = (["--grid", "learning_rate=1e-3,3e-3", "--seeds", "2"] if command == "sweep" else
            ["--seeds", "4", "--no-progress", "--out", "run"])
    argv = [command, "ppo", "--env", "CartPole-v1", "--num-envs", "8", "--total-timesteps", str(8 * 32 * 400),
            *what, "--set", "num_steps=32", "--set", "hidden_sizes=16,16", "--no-cache",
            "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--heartbeat-timeout", str(heartbeat)]
    argvs = [[sys.executable, "-m", "purerl.cli", *argv, "--process-id", str(i)] for i in (0, 1)]
    with Processes(tmp_path, argvs) as ps:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and any("connected" not in ps.err(i) for i in (0, 1)):
            assert all(c is None for c in ps.wait(timeout=0.5)), ps.err(0)[-2000:] + ps.err(1)[-2000:]
        assert all("connected" in ps.err(i) for i in (0, 1))
        time.sleep(3)                                                    # compiling or running
        assert ps.wait(timeout=0) == [None, None]
        os.killpg(ps.procs[killed].pid, signal.SIGKILL)
        start = time.monotonic()
        codes = ps.wait(survivor, timeout=heartbeat + 60)
        took = time.monotonic() - start
        err = ps.err(survivor)
    assert codes[survivor] == 4, (codes, err[-3000:])
    assert took < heartbeat + 45, took
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines[-1].startswith(f"purerl: error: process {survivor} of 2"), lines[-1]
    assert "another process of the run stopped" in lines[-1]
    assert "Check failure" not in err and "Traceback" not in err and len(lines) == 3, lines   # one line, no dump
    assert "rank" not in ps.out(survivor) and "final return" not in ps.out(survivor)   # nothing reported as done


def _cli(argv: list[str]) -> list[str]:
    return [sys.executable, "-m", "purerl.cli", *argv]


def _run_dir_metrics(path: Path) -> dict:
    body = json.loads((path / "metrics.json").read_text())
    return {k: np.asarray(v, dtype=np.float64) for k, v in body.items()}


@pytest.mark.slow  # .ci/run runs it on Python 3.11 (the multi-host step)
def test_readme_train_on_two_processes_equals_one(tmp_path):
    argvs = readme_commands("train")
    assert len(argvs) == 2 and [a[a.index("--process-id") + 1] for a in argvs] == ["0", "1"]
    port = str(free_port())
    # as written: with the progress bar, whose callback sits in the program every process runs
    cluster = [_cli([*(x.replace("12345", port) for x in a), "--no-cache"]) for a in argvs]
    alone = argvs[0][:argvs[0].index("--coordinator")] + ["--no-cache"]   # the same, one process
    with Processes(tmp_path, [*cluster, _cli(alone)]) as ps:
        codes = ps.wait()
        assert codes == [0, 0, 0], [ps.err(i)[-2000:] for i in range(3)]
    out = argvs[0][argvs[0].index("--out") + 1]
    run, ref = tmp_path / "p0" / out, tmp_path / "p2" / out
    assert "4 seed(s)" in ps.out(0) and "wrote" in ps.out(0)                  # process 0 reports
    assert ps.out(1).strip() == ("process 1 of 2: ppo on CartPole-v1, 2 of the 4 seeds trained here; process 0 "
                                 "prints the results and writes the run directory")
    assert "train (4 seeds)" in ps.err(0) and "train (4 seeds)" not in ps.err(1)   # process 0 draws the bar
    assert not (tmp_path / "p1" / out).exists()                              # process 1 wrote nothing
    got, want = _run_dir_metrics(run), _run_dir_metrics(ref)
    assert set(got) == set(want) and _diff(got, want) < 1e-4
    # the checkpoint holds every seed: the run loads whole in this one process
    from purerl.run import rundir

    a, b = rundir.load(run), rundir.load(ref)
    assert a.seeds == 4 and _diff(dict(enumerate(jax_leaves(a.state.params))),
                                  dict(enumerate(jax_leaves(b.state.params)))) < 1e-4


def jax_leaves(tree) -> list:
    import jax

    return [np.asarray(x) for x in jax.tree.leaves(tree)]


@pytest.mark.slow  # .ci/run runs it on Python 3.11 (the multi-host step)
@pytest.mark.parametrize("signalled", [1, 0])
def test_a_stop_signal_to_one_process_stops_both_and_one_process_resumes(tmp_path, signalled):
    port = str(free_port())
    updates = 600
    argv = ["train", "ppo", "--env", "CartPole-v1", "--num-envs", "8", "--total-timesteps", str(8 * 32 * updates),
            "--seeds", "4", "--set", "num_steps=32", "--set", "hidden_sizes=16,16", "--checkpoint-every", "60",
            "--out", "run", "--no-cache", "--no-progress", "--eval-episodes", "1",
            "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2"]
    run = tmp_path / "p0" / "run"
    with Processes(tmp_path, [_cli([*argv, "--process-id", str(i)]) for i in (0, 1)]) as ps:
        deadline = time.monotonic() + LIMIT
        # the run moves out of .starting at its first checkpoint, which needs both processes' states: both train
        while time.monotonic() < deadline and not (run / "config.json").exists():
            assert all(c is None for c in ps.wait(timeout=0.2)), ps.err(0)[-2000:] + ps.err(1)[-2000:]
        ps.procs[signalled].send_signal(signal.SIGINT)
        codes = ps.wait()
    assert codes == [130, 130], (codes, ps.err(0)[-2000:], ps.err(1)[-2000:])
    from purerl.run import checkpoint as ckpt

    step = ckpt.latest_step(run / "checkpoints")
    assert 60 <= step < updates and step % 60 == 0
    assert f"interrupted; saved the state after {step}/{updates} updates" in ps.err(0)
    assert f"process 1 of 2: interrupted after {step}/{updates} updates; process 0 saved the run" in ps.err(1)
    assert "purerl: SIGINT: stopping after the running chunk" in ps.err(signalled)
    assert "SIGINT" not in ps.err(1 - signalled)                        # the other stopped on the agreement
    assert not (tmp_path / "p1" / "run").exists()
    # one process continues it: the checkpoint holds every seed
    p = subprocess.run(_cli(["resume", str(run), "--no-progress", "--no-cache", "--eval-episodes", "1"]),
                       capture_output=True, text=True, timeout=LIMIT, env=_env(1))
    assert p.returncode == 0, p.stderr[-3000:]
    assert f"resumed after update {step} of {updates}" in p.stdout
    assert _run_dir_metrics(run)["env_steps"].shape == (4, updates)


@pytest.mark.slow  # .ci/run runs it on Python 3.11 (the multi-host step)
@pytest.mark.parametrize("case", ["seeds", "out-holds-a-run"])
def test_a_refused_train_run_stops_every_process_with_one_line(tmp_path, case):
    # refused before compiling: 3 seeds do not split over 4 devices (every process sees it), or process 0's
    # --out holds a run (process 0 alone looks; the others learn it from process 0)
    port = str(free_port())
    argv = ["train", "ppo", "--env", "CartPole-v1", "--seeds", "3" if case == "seeds" else "4", "--out", "run",
            "--no-cache", "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2"]
    if case != "seeds":
        (tmp_path / "p0" / "run").mkdir(parents=True)
        (tmp_path / "p0" / "run" / "config.json").write_text("{}")
    with Processes(tmp_path, [_cli([*argv, "--process-id", str(i)]) for i in (0, 1)]) as ps:
        codes = ps.wait(timeout=180)
    want = (["purerl: error: seeds = 3 cannot be split evenly over the 4 devices"] * 2 if case == "seeds" else
            ["purerl: error: --out run already holds a run", "purerl: error: process 0 cannot write the run into"])
    for i in (0, 1):
        assert codes[i] == 2, (codes, ps.err(i)[-2000:])
        last = ps.err(i).strip().splitlines()[-1]
        assert last.startswith(want[i]), last
        assert "Traceback" not in ps.err(i) and len(ps.err(i).strip().splitlines()) == 3
    if case == "seeds":
        assert "(--seeds 4)" in last
    else:
        assert (tmp_path / "p0" / "run" / "config.json").read_text() == "{}"   # left as it was
        assert not (tmp_path / "p1" / "run").exists()


def test_cluster_flags_are_checked_before_connecting():
    for args, needle in ((["--num-processes", "2"], "--coordinator"),
                         (["--coordinator", "127.0.0.1", "--num-processes", "2", "--process-id", "0"], "HOST:PORT"),
                         (["--coordinator", "127.0.0.1:1", "--num-processes", "2", "--process-id", "2"],
                          "--process-id")):
        p = subprocess.run([sys.executable, "-m", "purerl.cli", "sweep", "ppo", "--grid", "learning_rate=1e-3",
                            *args], capture_output=True, text=True, timeout=120, env=_env(1))
        assert p.returncode == 2, p.stderr
        assert p.stderr.count("\n") == 1 and needle in p.stderr, p.stderr


def test_readme_timing_is_the_results_file():
    """The README's 1-vs-2-process table is the one benchmarks/multihost.py wrote, with its date and jax."""
    data = json.loads((ROOT / "docs" / "results" / "multihost.json").read_text())
    section = _section()
    for line in data["markdown"]:
        assert line in section, line
    p = data["provenance"]
    assert p["date"] in section and f"jax {p['jax']}" in section
