"""The run-directory layer: resume, the non-finite guard, presets/--config, --help, loggers."""

import json
import shutil
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purerl import cli, ppo, presets
from purerl.config import field_docs
from purerl.run import checkpoint as ckpt
from purerl.run import guard, rundir, runner

TINY = ppo.Config(env="CartPole-v1", num_envs=4, num_steps=32, total_timesteps=4 * 32 * 8, hidden_sizes=(16, 16),
                  num_minibatches=2)


def _tensorboard_scalars(logdir):
    """``{tag: {step: value}}`` read back from the TFRecord event files in ``logdir``."""
    import struct

    from tensorboardX.proto import event_pb2

    out = {}
    for path in sorted(logdir.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        i = 0
        while i < len(data):
            (n,) = struct.unpack("<Q", data[i:i + 8])
            event = event_pb2.Event.FromString(data[i + 12:i + 12 + n])
            i += 12 + n + 4
            for v in event.summary.value:
                if v.HasField("simple_value"):
                    out.setdefault(v.tag, {})[event.step] = v.simple_value
    return out


def test_resumed_run_equals_uninterrupted_run(tmp_path, capsys):
    from purerl.run.loggers import TensorBoardLogger

    # Equal by construction: the uninterrupted and the resumed run execute the same compiled programs (the
    # initial state, chunks of 3 updates, a last chunk of 2); only the resumed state went through the disk.
    fused = runner.train("ppo", TINY, tmp_path / "fused", seeds=2, checkpoint_every=3,
                         loggers=(TensorBoardLogger(),))
    assert fused.finished and ckpt.latest_step(tmp_path / "fused" / "checkpoints") == 8
    chunked = tmp_path / "chunked"
    runner.train("ppo", TINY, chunked, seeds=2, checkpoint_every=3)
    # A crash after the checkpoint at update 6: remove the final one and continue from 6.
    shutil.rmtree(chunked / "checkpoints" / "8")
    assert ckpt.latest_step(chunked / "checkpoints") == 6
    resumed = runner.resume(chunked)
    assert resumed.finished and resumed.updates_done == 8 and resumed.start_update == 6
    for k in fused.metrics:
        np.testing.assert_array_equal(fused.metrics[k], resumed.metrics[k], err_msg=k)
        assert fused.metrics[k].dtype == resumed.metrics[k].dtype, k
    for a, b in zip(jax.tree.leaves(fused.state.params), jax.tree.leaves(resumed.state.params), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    on_disk = json.loads((chunked / "metrics.json").read_text())
    np.testing.assert_array_equal(np.asarray(on_disk["policy_loss"]), fused.metrics["policy_loss"])
    # The report of the resumed process: its own 2 updates x 128 env steps x 2 seeds over its own run time, and
    # the run's total apart; of the uninterrupted one: all 8 updates.
    for outcome, out, updates in ((resumed, chunked, 2), (fused, tmp_path / "fused", 8)):
        summary = json.loads((out / "summary.json").read_text())   # the Python API wrote it
        assert summary == json.loads(json.dumps(outcome.summary))
        assert cli._finish(outcome, "ppo", TINY, out, 2, 0, 0) == 0
        assert summary["process_env_steps"] == updates * 128 * 2 and summary["run_s"] == outcome.run_s > 0
        assert summary["env_steps_per_s"] == updates * 128 * 2 / outcome.run_s
        assert summary["env_steps_per_seed"] == 1024 and summary["start_update"] == 8 - updates
    printed = capsys.readouterr().out.splitlines()
    resumed_line = next(line for line in printed if "this process" in line)
    assert (f"this process: 512 env steps (updates 7-8) in {resumed.run_s:.2f} s "
            f"({512 / resumed.run_s:,.0f} env steps/s); run total: 2,048 env steps") in resumed_line
    assert sum("this process" in line for line in printed) == 1        # a new run's line is as before
    assert f"  run            {fused.run_s:.2f} s   ({2048 / fused.run_s:,.0f} env steps/s)" in printed
    # TensorBoard: one event directory per seed, every metric against env steps.
    for seed in (0, 1):
        scalars = _tensorboard_scalars(tmp_path / "fused" / "tensorboard" / f"seed_{seed}")
        steps = [int(s) for s in fused.metrics["env_steps"][seed]]
        assert sorted(scalars["value_loss"]) == steps
        np.testing.assert_allclose([scalars["value_loss"][s] for s in steps], fused.metrics["value_loss"][seed],
                                   rtol=1e-6)


@pytest.fixture
def nan_at_update_5(monkeypatch):
    """PPO whose policy loss becomes NaN from update 5 on (as a diverging run's would)."""
    original = ppo.make

    def make(cfg, **kwargs):
        trainer = original(cfg, **kwargs)

        def update(state):
            state, metrics = trainer.update(state)
            metrics["policy_loss"] = jnp.where(state.update_step >= 5, jnp.nan, metrics["policy_loss"])
            return state, metrics

        return trainer.replace(update=update)

    monkeypatch.setattr(ppo, "make", make)


@pytest.mark.parametrize("every", [[], ["--checkpoint-every", "2"]], ids=["default", "every-2"])
def test_non_finite_guard_stops_at_the_update_and_keeps_the_last_good_checkpoint(tmp_path, nan_at_update_5, capsys,
                                                                                   every):
    out = tmp_path / "run"
    code = cli.main(["train", "ppo", "--env", "CartPole-v1", "--num-envs", "4", "--total-timesteps", str(4 * 32 * 8),
                     "--set", "num_steps=32", "--set", "hidden_sizes=16,16", "--set", "num_minibatches=2",
                     *every, "--no-progress", "--no-cache", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == cli.EXIT_DIVERGED
    assert "`policy_loss`" in err and "update 5" in err and "checkpoints/4" in err, err
    assert ckpt.latest_step(out / "checkpoints") == 4        # the state before the chunk holding update 5
    metrics = json.loads((out / "metrics.json").read_text())
    loss = np.asarray(metrics["policy_loss"], dtype=np.float64)
    assert np.isfinite(loss[0, :4]).all() and np.isnan(loss[0, 4])
    assert loss.shape == ((1, 6) if every else (1, 5))        # chunks of 2 updates, or of 1 (a tenth of 8)
    run = rundir.load(out)                                      # the kept state is finite and loads
    assert run.step == 4 and guard.find_non_finite({}, run.state, 5) is None


def test_guard_names_a_non_finite_parameter():
    state = {"params": {"actor": {"kernel": jnp.ones((2, 3, 3)), "bias": jnp.array([[0.0, 1.0], [jnp.inf, 0.0]])}},
             "step": jnp.zeros((2,), jnp.int32)}
    metrics = {"loss": np.zeros((2, 4)), "episode_return": np.full((2, 4), np.nan)}  # no episode yet: allowed
    err = guard.find_non_finite(metrics, state, first_update=9)
    assert err is not None and "bias" in err.quantity and err.seed == 1 and err.update == 12
    metrics["loss"][1, 2] = np.inf
    err = guard.find_non_finite(metrics, state, first_update=9)
    assert err.quantity == "loss" and err.update == 11 and err.seed == 1
    state["params"]["actor"]["bias"] = jnp.zeros((2, 2))
    metrics["loss"][1, 2] = 0.0
    assert guard.find_non_finite(metrics, state, first_update=9) is None


def test_guard_allows_the_episode_means_before_the_first_episode_ends():
    # a run whose first chunk ends no episode (long Brax or Playground episodes) carries NaN episode means
    from purerl.core.onpolicy import TrainState

    nan = jnp.full((2,), jnp.nan)
    state = TrainState(params={"w": jnp.ones((2, 3))}, opt_state=(), env_state=(), obs=jnp.zeros((2, 4)),
                       key=jnp.zeros((2,), jnp.uint32), update_step=jnp.ones((2,), jnp.int32), last_return=nan,
                       last_length=nan)
    assert guard.find_non_finite({"loss": np.zeros((2, 3))}, state, first_update=1) is None
    state = state.replace(params={"w": jnp.full((2, 3), jnp.nan)})
    err = guard.find_non_finite({"loss": np.zeros((2, 3))}, state, first_update=1)
    assert err is not None and "params" in err.quantity


def test_help_lists_every_config_field_with_its_default(capsys):
    from purerl import sac

    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["train", "sac", "--help"])
    text = capsys.readouterr().out
    for name, default, _, help_text in field_docs(sac.Config):
        assert f"{name} = {default if isinstance(default, str) else repr(default)}" in text, name
        assert help_text.split()[0] in text, name


def _args(*argv):
    return cli.build_parser().parse_args(["train", *argv])


def test_presets_and_config_files(tmp_path):
    names = presets.names()
    assert names, "no presets shipped"
    for name in names:  # every shipped preset is a valid config of its algorithm and states what it reaches
        p = presets.load(name)
        _, cfg, _ = cli._base_config(_args(p.algo, "--preset", name))
        assert cfg.env == p.config["env"] and p.reaches, name
    p = presets.load(names[0])
    other = "sac" if p.algo != "sac" else "ppo"
    with pytest.raises(ValueError, match=f"is for {p.algo}"):
        cli._base_config(_args(other, "--preset", names[0]))
    with pytest.raises(ValueError, match="unknown preset"):
        cli._base_config(_args("ppo", "--preset", "no-such-preset"))
    # A run's config.json reproduces its config; --set still wins.
    rundir.write_config(tmp_path, "ppo", TINY, 1, 0)
    _, cfg, _ = cli._base_config(_args("ppo", "--config", str(tmp_path / "config.json")))
    assert cfg == TINY
    _, cfg, _ = cli._base_config(_args("ppo", "--config", str(tmp_path / "config.json"), "--set", "gamma=0.9"))
    assert cfg.gamma == 0.9 and cfg.hidden_sizes == (16, 16)
    (tmp_path / "bad.toml").write_text('algo = "ppo"\n[config]\nlearning_rat = 0.1\n')
    with pytest.raises(ValueError, match="learning_rat"):
        cli._base_config(_args("ppo", "--config", str(tmp_path / "bad.toml")))


def test_wandb_logger_logs_the_mean_over_seeds_against_env_steps(monkeypatch, tmp_path):
    """W&B is optional (not installed here): a stand-in module records what the logger sends."""
    import types

    from purerl.run.loggers import WandbLogger

    logged, finished = [], []

    class FakeRun:
        def log(self, row, step):
            logged.append((step, row))

        def finish(self):
            finished.append(True)

    fake = types.ModuleType("wandb")
    fake.init = lambda **kwargs: (logged.append(("init", kwargs)), FakeRun())[1]
    monkeypatch.setitem(sys.modules, "wandb", fake)
    log = WandbLogger("proj", entity="me")
    log.open(tmp_path, "ppo", TINY, seeds=2)
    log.write({"env_steps": np.array([[128, 256], [128, 256]]),
               "value_loss": np.array([[1.0, 2.0], [3.0, np.nan]])}, first_update=1)
    log.close()
    init = logged[0][1]
    assert init["project"] == "proj" and init["entity"] == "me" and init["config"]["num_steps"] == 32
    (s1, r1), (s2, r2) = logged[1:]
    assert (s1, s2) == (128, 256)
    assert r1["value_loss"] == 2.0 and r1["value_loss/seed_1"] == 3.0
    assert r2["value_loss"] == 2.0 and "value_loss/seed_1" not in r2      # NaN entries are left out
    assert finished == [True]
    monkeypatch.setitem(sys.modules, "wandb", None)                     # as if not installed
    with pytest.raises(ValueError, match="pip install wandb"):
        WandbLogger("proj")
