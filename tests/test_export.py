"""`purerl export`: a trained policy as a jax.export or ONNX file, computing in a process without purerl what
``trainer.policy(state)`` computes: PPO with a discrete and a continuous action space, SAC, and a recurrent
PPO policy, each briefly trained (with observation normalisation, so the saved statistics must be folded in)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from purerl import cli, ppo, sac
from purerl.run import export, rundir, runner

N = 1000
PPO_SMALL = dict(total_timesteps=4 * 32 * 2, num_envs=4, num_steps=32, num_minibatches=2, hidden_sizes=(16, 16),
                 normalize_obs=True)
RUNS = {  # name: (algo, config, seeds, the seed exported)
    "ppo-discrete": ("ppo", ppo.Config(env="CartPole-v1", **PPO_SMALL), 2, 1),
    "ppo-continuous": ("ppo", ppo.Config(env="Pendulum-v1", **PPO_SMALL), 1, 0),
    "sac": ("sac", sac.Config(env="Pendulum-v1", num_envs=2, total_timesteps=240, learning_starts=40, num_log_points=2,
                              eval_episodes=0, batch_size=16, hidden_sizes=(16, 16), normalize_obs=True), 1, 0),
    "ppo-recurrent": ("ppo", ppo.Config(env="CartPole-v1", recurrent=True, **PPO_SMALL), 1, 0),
}
FORMATS = ("jax", "onnx")
# The onnx format needs the onnx extra (jax2onnx, which brings onnx, and onnxruntime); without it those cases
# are skipped with this reason (the jax format needs only the base install: tests/test_base_install.py).
ONNX_INSTALLED = all(importlib.util.find_spec(m) is not None for m in ("jax2onnx", "onnx", "onnxruntime"))
needs_onnx = pytest.mark.skipif(not ONNX_INSTALLED, reason='needs the onnx extra: pip install -e ".[onnx]"')
WRITTEN = FORMATS if ONNX_INSTALLED else ("jax",)

# Runs in a fresh interpreter: loads every artefact with jax or onnxruntime alone and computes the actions of
# the observations (and memories) in inputs.npz, for all of them and for the first 7 (another batch size).
CONSUMER = textwrap.dedent("""
    import json, sys
    import numpy as np
    import jax

    jobs = json.load(open("jobs.json"))
    inputs = np.load("inputs.npz")
    out = {}
    for job in jobs:
        args = [inputs[f"{job['run']}/{name}"] for name in job["inputs"]]
        for batch in (None, 7):
            xs = [a if batch is None else a[:batch] for a in args]
            if job["format"] == "jax":
                policy = jax.export.deserialize(open(job["path"], "rb").read())
                got = policy.call(*xs)
                got = [np.asarray(g) for g in (got if isinstance(got, (tuple, list)) else [got])]
            else:
                import onnxruntime as ort
                session = ort.InferenceSession(job["path"], providers=["CPUExecutionProvider"])
                got = session.run(None, dict(zip(job["inputs"], xs)))
            for i, g in enumerate(got):
                out[f"{job['run']}/{job['format']}/{batch or 'all'}/{i}"] = g
    np.savez("outputs.npz", **out)
    assert "purerl" not in sys.modules and not any(m.startswith("purerl.") for m in sys.modules)
    print("imported purerl:", "purerl" in sys.modules)
""")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The four runs, trained for a few updates each, as run directories."""
    base = tmp_path_factory.mktemp("runs")
    out = {}
    for name, (algo, cfg, seeds, _) in RUNS.items():
        outcome = runner.train(algo, cfg, base / name, seeds=seeds, fused=True)
        assert outcome.error is None and not outcome.interrupted
        out[name] = base / name
    return out


@pytest.fixture(scope="module")
def exported(runs, tmp_path_factory):
    """Every run in both formats: ppo-discrete through the command line (``purerl export``), the others through
    ``export_policy``. Returns {(run, format): (path, input names)} and the command line's output lines."""
    where = tmp_path_factory.mktemp("exported")
    files, printed = {}, []
    for name, (_, _, _, seed_index) in RUNS.items():
        for fmt in WRITTEN:
            path = where / f"{name}.{fmt}"
            if name == "ppo-discrete":
                code, text = _cli("export", str(runs[name]), "--format", fmt, "--out", str(path), "--seed-index",
                                  str(seed_index))
                assert code == 0, text
                printed.append(text)
                names = ("obs",)
            else:
                written = export.export_policy(runs[name], format=fmt, out=path, seed_index=seed_index)
                assert written.path == path and os.fspath(written) == str(path)
                names = tuple(s.split()[0] for s in written.inputs)
            files[(name, fmt)] = (path, names)
    return files, printed


@pytest.fixture(scope="module")
def inputs(runs):
    """1,000 observations per run (spread over several standard deviations of the normalised scale) and, for
    the recurrent policy, 1,000 memories."""
    rng = np.random.default_rng(0)
    out = {}
    for name in RUNS:
        run = rundir.load(runs[name])
        out[f"{name}/obs"] = (3.0 * rng.normal(size=(N, run.trainer.env.obs_dim))).astype(np.float32)
        if name == "ppo-recurrent":
            memory = jax.eval_shape(lambda t=run.trainer, s=run.seed_state(0): t.policy(s).initial((N,)))
            out[f"{name}/memory"] = rng.normal(size=memory.shape).astype(np.float32)
    return out


@pytest.fixture(scope="module")
def consumed(exported, inputs, tmp_path_factory):
    """The artefacts' outputs, computed by CONSUMER in a fresh process that does not import purerl."""
    files, _ = exported
    cwd = tmp_path_factory.mktemp("consumer")
    np.savez(cwd / "inputs.npz", **inputs)
    jobs = [{"run": run, "format": fmt, "path": str(path), "inputs": list(names)}
            for (run, fmt), (path, names) in files.items()]
    (cwd / "jobs.json").write_text(json.dumps(jobs))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    p = subprocess.run([sys.executable, "-c", CONSUMER], cwd=cwd, capture_output=True, text=True, timeout=300,
                       env=dict(env, JAX_PLATFORMS="cpu"))
    assert p.returncode == 0, p.stderr[-3000:]
    assert "imported purerl: False" in p.stdout
    return dict(np.load(cwd / "outputs.npz"))


def _cli(*args):
    """``purerl ARGS`` in this process: (exit code, stdout and stderr)."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([*args, "--no-cache"])
    return code, out.getvalue() + err.getvalue()


def _expected(run_dir, name, inputs, seed_index):
    """``trainer.policy(state)`` of the run's seed, on the same inputs, in this process."""
    run = rundir.load(run_dir)
    act = run.trainer.policy(run.seed_state(seed_index))
    obs = inputs[f"{name}/obs"]
    if name == "ppo-recurrent":
        return [np.asarray(x) for x in act.step(inputs[f"{name}/memory"], obs)]
    return [np.asarray(act(obs))]


@pytest.mark.parametrize("fmt", ["jax", pytest.param("onnx", marks=needs_onnx)])
@pytest.mark.parametrize("name", list(RUNS))
def test_exported_policy_acts_as_the_trained_policy(runs, consumed, inputs, name, fmt):
    want = _expected(runs[name], name, inputs, RUNS[name][3])
    for i, w in enumerate(want):
        got, first7 = consumed[f"{name}/{fmt}/all/{i}"], consumed[f"{name}/{fmt}/7/{i}"]
        assert got.shape == w.shape and got.dtype == w.dtype
        if np.issubdtype(w.dtype, np.integer):   # argmax actions: exactly the same
            np.testing.assert_array_equal(got, w)
            assert len(np.unique(w)) > 1          # the observations reach both actions: a real comparison
        else:
            np.testing.assert_allclose(got, w, rtol=1e-5, atol=1e-5)
            assert np.std(w) > 1e-3
        # the batch dimension is symbolic: 7 observations give the first 7 of the 1,000 actions
        assert first7.shape == (7,) + w.shape[1:]
        np.testing.assert_allclose(first7, got[:7], rtol=1e-6, atol=1e-6)
    if name == "ppo-recurrent":    # the memory matters: other memories give other next memories
        assert not np.allclose(want[1][:1], want[1][1:2])


def test_the_normalisation_and_the_seed_are_the_runs(runs, inputs):
    # what the equality above rests on: the saved observation statistics change the actions (so an export that
    # left them out would fail it), and the two seeds of ppo-discrete act differently (so --seed-index counts)
    run = rundir.load(runs["ppo-continuous"])
    state = run.seed_state(0)
    rms = run.trainer.env.obs_normalizer(state.env_state)
    assert rms is not None and float(np.abs(np.asarray(rms.mean)).max()) > 1e-3
    # the off-policy run keeps its statistics in the state (obs_rms), and its policy applies them
    run = rundir.load(runs["sac"])
    state = run.seed_state(0)
    assert float(np.abs(np.asarray(state.obs_rms.mean)).max()) > 1e-3
    unit = state.replace(obs_rms=state.obs_rms.replace(mean=0 * state.obs_rms.mean, var=1 + 0 * state.obs_rms.var))
    obs = inputs["sac/obs"]
    assert np.abs(np.asarray(run.trainer.policy(state)(obs)) - np.asarray(run.trainer.policy(unit)(obs))).max() > 1e-2
    two = rundir.load(runs["ppo-discrete"])
    obs = inputs["ppo-discrete/obs"]
    a0, a1 = (np.asarray(two.trainer.policy(two.seed_state(i))(obs)) for i in (0, 1))
    assert np.mean(a0 != a1) > 0.05


def test_command_line_reports_the_signature(exported):
    _, printed = exported
    assert "int32 [batch]" in printed[0] and "obs float32 [batch, 4]" in printed[0]
    assert printed[0].startswith("wrote ") and printed[0].count("\n") == 1


def _onnx_metadata(path):
    import onnx

    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


@needs_onnx
def test_onnx_input_and_output_names_metadata_and_no_unused_constants(exported, runs):
    import onnx

    files, _ = exported
    model = onnx.load(str(files[("ppo-recurrent", "onnx")][0]))
    assert [i.name for i in model.graph.input] == ["memory", "obs"]
    assert [o.name for o in model.graph.output] == ["action", "next_memory"]
    meta = _onnx_metadata(files[("ppo-recurrent", "onnx")][0])
    assert meta["algo"] == "ppo" and meta["env"] == "CartPole-v1" and meta["step"] == "2"
    assert not [i.name for i in model.graph.initializer
                if i.name not in {x for n in model.graph.node for x in n.input}]   # no unused constants


def test_default_path_and_step(runs, tmp_path):
    written = export.export_policy(runs["sac"])           # the newest checkpoint, DIR/policy.jax
    assert written.path == runs["sac"] / "policy.jax" and written.path.is_file()
    assert written.signature == "(obs float32 [batch, 3]) -> (action float32 [batch, 1])"
    run = rundir.load(runs["sac"])
    again = export.export_policy(runs["sac"], step=run.step, out=tmp_path / "p.jax")
    obs = np.linspace(-1.0, 1.0, 30, dtype=np.float32).reshape(10, 3)
    a, b = (np.asarray(jax.export.deserialize(p.path.read_bytes()).call(obs)) for p in (written, again))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, np.asarray(run.trainer.policy(run.seed_state(0))(obs)), rtol=1e-6)


def test_errors_are_one_line_with_exit_code_2(runs, tmp_path, monkeypatch):
    cases = [
        (("export", str(tmp_path / "missing")), "does not exist"),
        (("export", str(tmp_path)), "is not a purerl run directory"),
        (("export", str(runs["sac"]), "--step", "999"), "no checkpoint 999"),
        (("export", str(runs["sac"]), "--seed-index", "1"), "seed_index must lie in [0, 0]"),
        (("export", str(runs["sac"]), "--platforms", "cpu,gpu"), "platforms must be some of cpu, cuda, rocm, tpu"),
        (("export", str(runs["sac"]), "--out", str(tmp_path)), "is a directory"),
    ]
    for args, message in cases:
        code, text = _cli(*args)
        assert code == 2 and message in text and text.count("\n") == 1, (args, text)
    with pytest.raises(SystemExit) as raised:      # argparse's own one-line error
        _cli("export", str(runs["sac"]), "--format", "tflite")
    assert raised.value.code == 2
    # without the onnx extra: one line that says what to install
    monkeypatch.setitem(sys.modules, "jax2onnx", None)
    code, text = _cli("export", str(runs["sac"]), "--format", "onnx", "--out", str(tmp_path / "p.onnx"))
    assert code == 2 and 'pip install "purerl[onnx]"' in text and text.count("\n") == 1, text
    assert not (tmp_path / "p.onnx").exists()


@needs_onnx
def test_python_and_command_line_onnx_files_carry_the_same_metadata(exported, runs, tmp_path):
    # the command line's file (ppo-discrete, --seed-index 1) and export_trainer_policy's of the same train state
    files, _ = exported
    seed = RUNS["ppo-discrete"][3]
    cli_meta = _onnx_metadata(files[("ppo-discrete", "onnx")][0])
    assert cli_meta == {"producer": "purerl", "algo": "ppo", "env": "CartPole-v1", "step": "2",
                        "seed_index": str(seed)}
    run = rundir.load(runs["ppo-discrete"])
    written = export.export_trainer_policy(run.trainer, run.seed_state(seed), tmp_path / "p.onnx", "onnx")
    assert _onnx_metadata(written.path) == {k: v for k, v in cli_meta.items() if k != "seed_index"}
    # an off-policy state counts its updates in another field; the caller's entries are added
    run = rundir.load(runs["sac"])
    written = export.export_trainer_policy(run.trainer, run.seed_state(0), tmp_path / "s.onnx", "onnx",
                                           metadata={"note": "from a notebook"})
    assert _onnx_metadata(written.path) == {"producer": "purerl", "algo": "sac", "env": "Pendulum-v1",
                                            "step": str(run.step), "note": "from a notebook"}
    assert run.step == 2   # the run's checkpoint: its 2 log points


@needs_onnx
def test_the_onnx_extras_orbax_downgrade_is_said_where_the_extra_is_installed():
    # the README's export section and docs/installation.md name the extra's jax2onnx pin, the orbax-checkpoint
    # cap that jax2onnx declares and the orbax-checkpoint version this environment (which has the extra) got
    import tomllib
    from importlib import metadata
    from pathlib import Path

    from packaging.requirements import Requirement

    root = Path(__file__).resolve().parent.parent
    extra = tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]["onnx"]
    (pin,) = [str(Requirement(r).specifier).removeprefix("==") for r in extra if r.startswith("jax2onnx")]
    assert metadata.version("jax2onnx") == pin
    (cap,) = [Requirement(r).specifier for r in metadata.requires("jax2onnx") if r.startswith("orbax-checkpoint")]
    (upper,) = [s.version for s in cap if s.operator == "<"]
    got = metadata.version("orbax-checkpoint")
    assert got in cap and not cap.contains("0.12.0")
    readme = " ".join((root / "README.md").read_text().split("\n## Exporting a trained policy\n")[1]
                      .split("\n## ")[0].split())
    assert (f"The `onnx` extra pins jax2onnx {pin}, which requires orbax-checkpoint below {upper}" in readme
            and f"downgrades it to {got} without a warning" in readme)
    row = [line for line in (root / "docs" / "installation.md").read_text().splitlines()
           if line.startswith('| `pip install -e ".[onnx]"`')]
    assert len(row) == 1 and f"jax2onnx {pin}" in row[0] and f"below {upper}" in row[0] and f"to {got}" in row[0]


@needs_onnx
def test_an_operation_the_converter_lacks_is_named(runs, tmp_path):
    run = rundir.load(runs["sac"])
    base = run.trainer.policy

    def policy(state, deterministic=True):   # the same policy through lax.platform_dependent (no ONNX rule)
        act = base(state, deterministic)
        return lambda obs, key=None: jax.lax.platform_dependent(act(obs), cpu=lambda a: a, default=lambda a: -a)

    trainer = run.trainer.replace(policy=policy)
    with pytest.raises(ValueError, match="'platform_index'") as err:
        export.export_trainer_policy(trainer, run.seed_state(0), tmp_path / "p.onnx", "onnx")
    assert "\n" not in str(err.value) and "format 'jax'" in str(err.value)
    assert not list(tmp_path.iterdir())
    # the jax format has no such limit
    assert export.export_trainer_policy(trainer, run.seed_state(0), tmp_path / "p.jax", "jax").path.is_file()


@needs_onnx
def test_the_readme_consumers_run_without_purerl(runs, exported, tmp_path):
    # the README's onnxruntime and jax consumers, as written, in a fresh process, on ppo-discrete's files
    import re
    import shutil
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("\n## Exporting a trained policy\n")[1].split("\n## ")[0]
    consumers = [b for b in re.findall(r"```python\n(.*?)```", section, re.S) if "import purerl" not in b
                 and "from purerl" not in b]
    assert len(consumers) == 2
    files, _ = exported
    (tmp_path / "runs" / "cartpole").mkdir(parents=True)
    for fmt in FORMATS:
        shutil.copy(files[("ppo-discrete", fmt)][0], tmp_path / "runs" / "cartpole" / f"policy.{fmt}")
    script = "\n".join(["import json, sys", "actions = []"]
                       + [f"exec({code!r})\nactions.append(__import__('numpy').asarray(action).tolist())"
                          for code in consumers]
                       + ["assert 'purerl' not in sys.modules", "print(json.dumps(actions))"])
    p = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, JAX_PLATFORMS="cpu"))
    assert p.returncode == 0, p.stderr[-3000:]
    onnx_actions, jax_actions = json.loads(p.stdout.strip().splitlines()[-1])
    run = rundir.load(runs["ppo-discrete"])
    obs = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    want = np.asarray(run.trainer.policy(run.seed_state(RUNS["ppo-discrete"][3]))(obs)).tolist()
    assert onnx_actions == want == jax_actions
