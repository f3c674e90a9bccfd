"""benchmarks/peers.py without training: row budgets, argument plumbing (which interpreter and PYTHONPATH each
worker gets), the table's ratios and labels from fake worker results, and the PureJaxRL file preparation."""

import ast
import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def peers():
    sys.path.insert(0, str(BENCHMARKS))
    return importlib.import_module("peers")


def test_rows_same_work_and_whole_updates(peers):
    s = peers.row_spec("ppo2048")
    assert (s["num_envs"], s["num_steps"], s["num_epochs"], s["num_minibatches"], s["seeds"]) == (2048, 32, 4, 8, 1)
    # 2e7 is not a multiple of 2048 x 32: every library gets floor(2e7 / 65536) = 305 updates
    assert s["num_updates"] == 305 and s["total_timesteps"] == 305 * 65536
    assert [peers.row_spec(r)["seeds"] for r in ("ppo1", "ppo16", "ppo256")] == [1, 16, 256]
    assert peers.row_spec("ppo256")["total_timesteps"] == 976 * 512
    cfg = peers.pjr_config(peers.row_spec("ppo2048"))
    assert (cfg["NUM_ENVS"], cfg["NUM_STEPS"], cfg["UPDATE_EPOCHS"], cfg["NUM_MINIBATCHES"]) == (2048, 32, 4, 8)
    assert cfg["TOTAL_TIMESTEPS"] // cfg["NUM_STEPS"] // cfg["NUM_ENVS"] == 305 and not cfg["DEBUG"]
    # tiny: a few thousand steps, two updates at least
    assert peers.row_spec("ppo1", tiny=True)["total_timesteps"] == 2048
    assert peers.row_spec("ppo2048", tiny=True)["num_updates"] == 2
    assert peers.row_spec("sac", tiny=True)["total_timesteps"] < peers.row_spec("sac")["total_timesteps"]
    assert peers.row_label("ppo2048") == ("PPO CartPole-v1, 2048 envs x 32 steps, 4x8 minibatches, 2e7 steps, "
                                          "1 seed")
    assert "256 seeds vmapped" in peers.row_label("ppo256") and "5e5 steps" in peers.row_label("ppo256")
    with pytest.raises(ValueError, match="ppo2048"):
        peers.row_spec("ppo3")


def test_default_rows(peers):
    assert peers.default_rows(None, "cpu") == ["ppo1", "ppo16", "sac", "dqn", "pqn", "cli"]
    assert peers.default_rows(None, "gpu") == ["ppo1", "ppo16", "ppo256", "ppo2048", "sac", "dqn", "pqn", "cli"]
    assert peers.default_rows("ppo2048,sac", "cpu") == ["ppo2048", "sac"]
    with pytest.raises(SystemExit, match="ppo9"):
        peers.default_rows("ppo1,ppo9", "gpu")


def test_dqn_settings_are_the_same_for_every_system(peers):
    """The dqn row's configs, as each worker builds them: purerl's Config, rejax's DQN.create arguments and
    PureJaxRL's dqn.py config dict say the same thing in each library's units (env steps or gradient steps,
    epsilon's anneal as a fraction or in env steps, a hard target copy as tau 1 or polyak 0)."""
    for tiny in (False, True):
        spec = peers.row_spec("dqn", tiny)
        cfg = peers.purerl_config(spec).validate()
        name, rj, widths = peers.rejax_config(spec)
        pj = peers.pjr_config(spec)
        assert name == "dqn" and cfg.env == rj["env"] == pj["ENV_NAME"] == "CartPole-v1"
        assert cfg.num_envs == rj["num_envs"] == pj["NUM_ENVS"] == 10
        assert cfg.total_timesteps == rj["total_timesteps"] == pj["TOTAL_TIMESTEPS"] == spec["total_timesteps"]
        assert cfg.buffer_size == rj["buffer_size"] == pj["BUFFER_SIZE"] == 10_000
        assert cfg.batch_size == rj["batch_size"] == pj["BUFFER_BATCH_SIZE"] == 128
        assert cfg.learning_starts == rj["fill_buffer"] == pj["LEARNING_STARTS"] == spec["learning_starts"]
        # one gradient step per vector step: purerl's and rejax's per iteration, PureJaxRL's every 10 env steps
        assert cfg.gradient_steps == rj["num_epochs"] == 1 and pj["TRAINING_INTERVAL"] == cfg.num_envs
        # the target network: a hard copy every 50 gradient steps = 500 env steps
        assert cfg.tau == 1.0 and rj["polyak"] == 0.0 and pj["TAU"] == 1.0
        assert cfg.target_update_period * cfg.num_envs == rj["target_update_freq"] == pj["TARGET_UPDATE_INTERVAL"]
        assert rj["target_update_freq"] == 500
        assert cfg.learning_rate == rj["learning_rate"] == pj["LR"] == 2.5e-4 and not pj["LR_LINEAR_DECAY"]
        assert cfg.gamma == rj["gamma"] == pj["GAMMA"] == 0.99
        assert cfg.epsilon_start == rj["eps_start"] == pj["EPSILON_START"] == 1.0
        assert cfg.epsilon_finish == rj["eps_end"] == pj["EPSILON_FINISH"] == 0.05
        assert (cfg.epsilon_anneal_fraction == rj["exploration_fraction"]
                == pj["EPSILON_ANNEAL_TIME"] / pj["TOTAL_TIMESTEPS"] == 0.5)
        # the network: PureJaxRL's QNetwork is 120x84 ReLU, fixed in its file; rejax's is rebuilt at these widths
        assert cfg.hidden_sizes == widths == (120, 84) and cfg.activation == rj["agent_kwargs"]["activation"]
        # the same TD rule: the max target (no Double DQN), squared error, no clipping (rejax's default: inf)
        assert not cfg.double and rj["ddqn"] is False and cfg.td_loss == "squared" and cfg.n_step == 1
        assert cfg.max_grad_norm is None and "max_grad_norm" not in rj
        # every system takes (steps - warm-up) / envs gradient steps: 49,000 at the full budget
        learning = (cfg.total_timesteps - cfg.learning_starts) // cfg.num_envs
        assert cfg.iterations_per_log_point * cfg.num_log_points * cfg.gradient_steps == learning
        assert tiny or learning == 49_000
        # one evaluation at the end for rejax; none inside purerl's run, as in PureJaxRL's
        assert rj["eval_freq"] == rj["total_timesteps"] and rj["skip_initial_evaluation"] and cfg.eval_episodes == 0


def test_pqn_settings_are_the_same_for_every_system(peers):
    """The pqn row: purerl's Config and rejax's PQN.create arguments hold the same shapes, schedule and
    numbers, over the same whole number of updates."""
    import math

    for tiny in (False, True):
        spec = peers.row_spec("pqn", tiny)
        cfg = peers.purerl_config(spec).validate()
        name, rj, widths = peers.rejax_config(spec)
        assert name == "pqn" and cfg.env == rj["env"] == "CartPole-v1"
        for mine, theirs in (("num_envs", "num_envs"), ("num_steps", "num_steps"), ("num_epochs", "num_epochs"),
                             ("num_minibatches", "num_minibatches"), ("total_timesteps", "total_timesteps"),
                             ("learning_rate", "learning_rate"), ("gamma", "gamma"), ("q_lambda", "td_lambda"),
                             ("epsilon_start", "eps_start"), ("epsilon_finish", "eps_end"),
                             ("epsilon_anneal_fraction", "exploration_fraction"), ("max_grad_norm", "max_grad_norm")):
            assert getattr(cfg, mine) == rj[theirs] == spec[mine], mine
        assert cfg.hidden_sizes == widths == (128, 128) and cfg.layer_norm and cfg.activation == "relu"
        assert not cfg.anneal_lr and cfg.optimizer == "adam" and cfg.td_loss == "squared"  # rejax: Adam, constant
        # rejax runs ceil(eval_freq / batch) updates per evaluation, ceil(total / eval_freq) evaluations
        batch = cfg.num_envs * cfg.num_steps
        rejax_updates = math.ceil(rj["eval_freq"] / batch) * math.ceil(rj["total_timesteps"] / rj["eval_freq"])
        assert cfg.total_timesteps // batch == rejax_updates == spec["num_updates"] and cfg.total_timesteps % batch == 0
        assert tiny or (spec["num_updates"], cfg.total_timesteps) == (244, 244 * 2048)
    with pytest.raises(ValueError, match="PureJaxRL has no pqn"):
        peers.pjr_config(peers.row_spec("pqn"))


def test_ppo_settings_are_the_same_for_every_system(peers):
    spec = peers.row_spec("ppo16")
    cfg = peers.purerl_config(spec).validate()
    name, rj, widths = peers.rejax_config(spec)
    pj = peers.pjr_config(spec)
    assert name == "ppo" and widths is None
    assert cfg.num_envs == rj["num_envs"] == pj["NUM_ENVS"] and cfg.num_steps == rj["num_steps"] == pj["NUM_STEPS"]
    assert cfg.num_epochs == rj["num_epochs"] == pj["UPDATE_EPOCHS"]
    assert cfg.num_minibatches == rj["num_minibatches"] == pj["NUM_MINIBATCHES"]
    assert cfg.total_timesteps == rj["total_timesteps"] == pj["TOTAL_TIMESTEPS"]
    assert cfg.learning_rate == rj["learning_rate"] == pj["LR"] and cfg.max_grad_norm == rj["max_grad_norm"]
    assert cfg.hidden_sizes == rj["agent_kwargs"]["hidden_layer_sizes"] == (64, 64)


def test_new_rows_labels_and_tiny_budgets(peers):
    assert peers.row_label("dqn") == "DQN CartPole-v1, 10 envs, replay 10k, batch 128, 120x84 ReLU, 5e5 steps, 1 seed"
    assert peers.row_label("pqn") == ("PQN CartPole-v1, 32 envs x 64 steps, 4x16 minibatches, 128x128 LayerNorm "
                                      "ReLU, 5e5 steps, 1 seed")
    # --tiny: a few thousand steps, still past the warm-up, two PQN updates
    dqn, pqn = peers.row_spec("dqn", tiny=True), peers.row_spec("pqn", tiny=True)
    assert dqn["learning_starts"] < dqn["total_timesteps"] <= 5_000 and pqn["num_updates"] == 2
    assert "4,000 steps" in peers.row_label("dqn", tiny=True)


@pytest.mark.slow
@pytest.mark.parametrize("row", ["dqn", "pqn"])
def test_purerl_worker_answers_the_protocol_tiny(row):
    """The purerl worker of a value-based row at --tiny budgets, as peers.py drives it: info, compile, a run
    whose final return is a CartPole return (training episodes of the last 5%), quit."""
    env = dict(os.environ, JAX_ENABLE_COMPILATION_CACHE="false",
               PYTHONPATH=os.pathsep.join(p for p in (str(BENCHMARKS.parent), os.environ.get("PYTHONPATH")) if p))
    out = subprocess.run([sys.executable, str(BENCHMARKS / "peers.py"), "--worker", "purerl", row, "--tiny"],
                         input="info\ncompile\nrun\nquit\n", capture_output=True, text=True, env=env, timeout=600)
    info, compiled, ran = (json.loads(ln) for ln in out.stdout.splitlines())
    assert {"backend", "device", "jax", "python", "version"} <= set(info)
    assert compiled["compile_s"] > 0 and ran["run_s"] > 0
    assert 8 <= ran["return"] <= 500   # CartPole-v1's episodes last 8 to 500 steps, one reward each


def test_launches(peers, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/inherited")
    a = peers.parse_args([])
    got = peers.launches(a)
    assert got["peers"] == (str(peers.ROOT / ".peers-venv" / "bin" / "python"), None)  # the venv, as before
    assert got["purerl"] == (sys.executable, f"{peers.ROOT}{os.pathsep}/inherited")
    a = peers.parse_args(["--peers-pythonpath", "/tmp/site_old:/tmp/site", "--purerl-pythonpath", "rel:/tmp/site"])
    got = peers.launches(a)
    assert got["peers"] == (sys.executable, "/tmp/site_old:/tmp/site")
    assert got["purerl"] == (sys.executable, f"{os.path.abspath('rel')}:/tmp/site")  # workers run elsewhere
    a = peers.parse_args(["--peers-pythonpath", "/x", "--peers-python", "/usr/bin/python3"])
    assert peers.launches(a)["peers"] == ("/usr/bin/python3", "/x")


def _res(purerl, rejax, pjr=None, plain=5.0):
    def sys_(c, r, ret):
        return {"compile_s": c, "run_s": r, "return": ret}
    out = {"purerl": sys_(*purerl), "purerl-jax.jit": {"compile_s": plain, "run_s": None}, "rejax": sys_(*rejax)}
    if pjr is not None:
        out["purejaxrl"] = pjr if isinstance(pjr, dict) else sys_(*pjr)
    return out


def test_table_live_peers(peers):
    res = {"ppo1": _res((2.0, 3.0, 500.0), (4.0, 6.0, 480.0), (8.0, 4.0, 490.0)),
           "sac": _res((6.0, 10.0, -150.0), (6.0, 30.0, -1000.0))}
    lines, table = peers.build_table(res, {"backend": "gpu", "pjr_live": True, "header": "H"})
    ppo1 = next(t for t in table if t["row"] == "ppo1")
    assert ppo1["ratio_run"] == pytest.approx(3.0 / 4.0) and ppo1["fastest_peer_run"] == "purejaxrl"
    assert ppo1["ratio_compile"] == pytest.approx(2.0 / 4.0) and ppo1["fastest_peer_compile"] == "rejax"
    assert ppo1["ratio_compile_jax_jit"] == pytest.approx(5.0 / 4.0)
    assert ppo1["systems"]["purejaxrl"]["return"] == 490.0
    assert "| PureJaxRL |" in lines[2]
    run_line = next(ln for ln in lines if "1 seed (`ppo1`): run" in ln)
    assert run_line.split("|")[2:6] == [" 4.00 s ", " 6.00 s ", " 3.00 s ", " 0.75 (purejaxrl) "]
    ret_line = next(ln for ln in lines if "`ppo1`: final return" in ln)
    assert ret_line.split("|")[2:5] == [" 490 ", " 480 ", " 500 "]
    sac_run = next(ln for ln in lines if ln.startswith("| SAC") and ": run" in ln)
    assert sac_run.split("|")[2] == " - " and "0.33 (rejax)" in sac_run  # PureJaxRL has no SAC


def test_table_without_pjr_says_not_run(peers):
    """Without --pjr the PureJaxRL column says "not run" in the PPO rows (no figures from elsewhere stand in),
    and the ratio is over the peers measured."""
    res = {"ppo1": _res((2.0, 3.0, 500.0), (4.0, 3.5, 480.0)), "sac": _res((6.0, 10.0, -150.0), (6.0, 30.0, -1000.0))}
    for meta in ({"backend": "cpu"}, {"backend": "gpu"}, {"backend": "cpu", "tiny": True}):
        lines, table = peers.build_table(res, {**meta, "pjr_live": False, "header": "H"})
        assert not hasattr(peers, "PUREJAXRL_QUOTED") and "purejaxrl" not in table[0]["systems"]
        assert table[0]["ratio_run"] == pytest.approx(3.0 / 3.5) and table[0]["fastest_peer_run"] == "rejax"
        assert lines[2].split("|")[2] == " PureJaxRL "
        for ln in lines:
            if ln.startswith("| PPO") or ln.startswith("| `ppo1`: compile (") or "`ppo1`: final return" in ln:
                assert ln.split("|")[2] == " not run ", ln
            if ln.startswith("| SAC") or ln.startswith("| `sac`: compile ("):
                assert ln.split("|")[2] == " - ", ln   # PureJaxRL has no SAC: nothing to run


def test_table_value_rows(peers):
    """The dqn row has a PureJaxRL column (its dqn.py), "not run" without --pjr; the pqn row has none (PureJaxRL
    has no PQN); the README's table gains both rows."""
    res = {"dqn": _res((2.0, 9.0, 500.0), (3.0, 12.0, 500.0), (2.5, 10.0, 490.0)),
           "pqn": _res((4.0, 5.0, 500.0), (6.0, 6.0, 130.0))}
    lines, table = peers.build_table(res, {"backend": "cpu", "pjr_live": True, "header": "H"})
    dqn_run = next(ln for ln in lines if "(`dqn`): run" in ln).split("|")
    assert dqn_run[2:6] == [" 10.00 s ", " 12.00 s ", " 9.00 s ", " 0.90 (purejaxrl) "]
    pqn_run = next(ln for ln in lines if "(`pqn`): run" in ln).split("|")
    assert pqn_run[2] == " - " and pqn_run[5] == " 0.83 (rejax) "
    assert next(ln for ln in lines if "`pqn`: final return" in ln).split("|")[2:5] == [" - ", " 130 ", " 500 "]
    res["dqn"].pop("purejaxrl")
    lines, _ = peers.build_table(res, {"backend": "cpu", "pjr_live": False, "header": "H"})
    for ln in lines:
        if "`dqn`" in ln and "plain" not in ln:
            assert ln.split("|")[2] == " not run ", ln
        if "`pqn`" in ln and "plain" not in ln:
            assert ln.split("|")[2] == " - ", ln
    text = peers.readme_table({"table": table, "rounds": 3, "date": "D",
                               "systems": {"purerl": {"cores": 2, "cpu": "C", "jax": "0.9.2"}}})
    assert "| DQN CartPole-v1, 1 seed | PureJaxRL: 0.90x | PureJaxRL: 0.80x |" in text.splitlines()
    assert "| PQN CartPole-v1, 1 seed | rejax: 0.83x | rejax: 0.67x |" in text.splitlines()


def test_table_shows_the_spread_of_rounds(peers):
    """Three rounds: every time is the median with the range of the single timings, every ratio the ratio of
    medians with the range of the ratios of timings taken side by side; the header names rounds and runs."""
    def timed(compile_s, run_s):
        return {"compile_s": sorted(compile_s)[1], "run_s": sorted(run_s)[1], "return": 500.0,
                "all_compile_s": compile_s, "all_run_s": run_s}
    res = {"ppo1": {"purerl": timed([2.0, 2.2, 1.9], [3.0, 2.8, 3.3]),
                    "purerl-jax.jit": {"compile_s": 4.0, "run_s": None, "all_compile_s": [4.0, 3.9, 4.4]},
                    "rejax": timed([4.0, 4.1, 3.8], [4.0, 3.5, 4.4])},
           "cli": {"first_s": 10.0, "repeat_s": 7.0, "all_first_s": [9.5, 10.0, 11.0], "all_repeat_s": [7.0, 6.9, 7.2]}}
    meta = {"backend": "cpu", "pjr_live": False, "rounds": 3, "runs": 1, "date": "D", "load_average": 5.0,
            "systems": {"purerl": {"backend": "cpu", "cpu": "C", "cores": 2, "jax": "0.9.2", "python": "3.11"}}}
    lines, table = peers.build_table(res, {**meta, "header": peers.header(meta)})
    assert "3 rounds x 1 timed run: medians, the range of the single timings in brackets" in lines[0]
    assert "load average 5.0 at the start (shared" in lines[0]
    run = next(ln for ln in lines if "(`ppo1`): run" in ln).split("|")
    assert run[3:6] == [" 4.00 s (3.50-4.40) ", " 3.00 s (2.80-3.30) ", " 0.75 (rejax; 0.75-0.80) "]
    # ratios side by side: 3.0/4.0, 2.8/3.5, 3.3/4.4 = 0.75, 0.80, 0.75 -> 0.75-0.80
    assert table[0]["ratio_run_range"] == pytest.approx((0.75, 0.8))
    comp = next(ln for ln in lines if "`ppo1`: compile (" in ln).split("|")
    assert comp[4] == " 2.00 s (1.90-2.20) " and table[0]["ratio_compile_range"] == pytest.approx((0.5, 2.2 / 4.1))
    plain = next(ln for ln in lines if "plain `jax.jit`" in ln).split("|")
    assert plain[4] == " 4.00 s (3.90-4.40) "
    cli = next(ln for ln in lines if "empty cache" in ln).split("|")
    assert cli[4] == " 10.00 s (9.50-11.00) "
    # one round: single timings, said so, and refused for the docs' results
    meta1 = {**meta, "rounds": 1, "load_average": 0.5}
    assert "1 round x 1 timed run: single timings, no spread (fewer rounds than the 3" in peers.header(meta1)
    assert "shared" not in peers.header(meta1)
    with pytest.raises(SystemExit, match="need --rounds 3 or more"):
        peers.main(["--rounds", "2"])
    with pytest.raises(SystemExit, match="need --rounds 3 or more"):
        peers.main(["--rounds", "1", "--out", str(peers.RESULTS / "peers-cpu.json")])


def test_readme_table_shows_ratios_with_their_range(peers):
    """The README's speed table: per workload the fastest peer, purerl's time over its time and, with several
    rounds, the range of the side-by-side ratios."""
    def timed(c, r):
        return {"compile_s": sorted(c)[1], "run_s": sorted(r)[1], "return": 1.0, "all_compile_s": c, "all_run_s": r}
    res = {row: {"purerl": timed([2.0, 2.0, 2.0], [1.0, 1.2, 0.9]), "rejax": timed([4.0, 4.0, 4.0], [2.0, 2.0, 2.0]),
                 "purejaxrl": timed([1.0, 1.0, 1.0], [4.0, 4.0, 4.0])} for row in ("ppo1", "ppo16", "sac")}
    meta = {"backend": "cpu", "pjr_live": True}
    _, table = peers.build_table(res, meta)
    results = {"table": table, "rounds": 3, "date": "2026-01-02",
               "systems": {"purerl": {"cores": 2, "cpu": "AMD EPYC", "jax": "0.9.2"}}}
    text = peers.readme_table(results)
    assert "`python benchmarks/peers.py --small` on 2026-01-02 on a 2-core AMD EPYC CPU" in " ".join(text.split())
    assert "3 rounds, the range over them in brackets" in " ".join(text.split())
    assert "| PPO CartPole-v1, 1 seed | rejax: 0.50x (0.45-0.60) | PureJaxRL: 2.00x (2.00-2.00) |" in text.splitlines()
    assert all(len(ln) <= 110 for ln in text.splitlines() if not ln.startswith("|"))


def test_rebuild_rewrites_the_table_from_the_timings(peers, tmp_path):
    """--rebuild shows a results file's timings as this version does and leaves every timing as it was."""
    data = json.loads((peers.RESULTS / "peers-cpu.json").read_text())
    old = {**data, "markdown": ["stale"], "table": [], "header": "stale"}
    path = tmp_path / "peers.json"
    path.write_text(json.dumps(old))
    peers.main(["--rebuild", str(path)])
    new = json.loads(path.read_text())
    assert new["results"] == data["results"] and new["date"] == data["date"]
    assert new["markdown"] == peers.build_table(data["results"], {**data, "header": peers.header(data)})[0]
    assert new["markdown"][0] == new["header"] == peers.header(data)


def test_table_failed_peer(peers):
    err = {"compile_s": None, "run_s": None, "return": None, "error": "purejaxrl worker died"}
    res = {"ppo2048": _res((2.0, 1.0, 500.0), (3.0, 2.0, 500.0), err)}
    lines, table = peers.build_table(res, {"backend": "gpu", "pjr_live": True})
    run_line = next(ln for ln in lines if ": run" in ln)
    assert run_line.split("|")[2] == " failed " and "0.50 (rejax)" in run_line
    assert table[0]["systems"]["purejaxrl"]["error"] == "purejaxrl worker died"


WRAPPERS = """import jax
from gymnax.environments import environment, spaces
from brax import envs
from brax.envs.wrappers.training import EpisodeWrapper, AutoResetWrapper
import navix as nx


class BraxGymnaxWrapper:
    def __init__(self, env_name):
        env = envs.get_environment(env_name=env_name)
"""


DQN = """import jax
import wandb
import flashbax as fbx


def make_train(config):
    def train(rng):
        target = jax.tree_map(lambda x: x, rng)
        return target
    return train
"""


def test_prepare_pjr(peers, tmp_path):
    src = tmp_path / "checkout" / "purejaxrl"
    src.mkdir(parents=True)
    (src / "ppo.py").write_text("from wrappers import LogWrapper\n")
    (src / "wrappers.py").write_text(WRAPPERS)
    (src / "dqn.py").write_text(DQN)
    peers.prepare_pjr(tmp_path / "out", tmp_path / "checkout")
    assert (tmp_path / "out" / "pjr_ppo.py").read_text() == "from wrappers import LogWrapper\n"
    # dqn.py: wandb (only its main logs there) no longer imported; jax.tree_map, gone since jax 0.6, is jax.tree.map
    dqn = (tmp_path / "out" / "pjr_dqn.py").read_text()
    tree = ast.parse(dqn)
    assert {a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names} == {"jax", "flashbax"}
    assert "jax.tree_map" not in dqn and "target = jax.tree.map(lambda x: x, rng)" in dqn
    assert dqn.replace("jax.tree.map", "jax.tree_map").replace(peers.DQN_EDITS["import wandb"], "import wandb") == DQN
    assert "dqn.py saved as pjr_dqn.py" in (tmp_path / "out" / "SOURCE.txt").read_text()
    text = (tmp_path / "out" / "wrappers.py").read_text()
    tree = ast.parse(text)
    imported = {a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names}
    assert "navix" not in imported and "# import navix as nx" in text
    tries = [n for n in tree.body if isinstance(n, ast.Try)]
    assert len(tries) == 1 and [type(n).__name__ for n in tries[0].body] == ["ImportFrom", "ImportFrom"]
    assert tries[0].handlers[0].type.id == "ImportError"
    (src / "wrappers.py").write_text(WRAPPERS.replace("import navix as nx\n", ""))
    with pytest.raises(SystemExit, match="navix"):
        peers.prepare_pjr(tmp_path / "out2", tmp_path / "checkout")
    (src / "wrappers.py").write_text(WRAPPERS)
    (src / "dqn.py").unlink()   # a checkout without dqn.py is not PureJaxRL as peers.py knows it
    with pytest.raises(SystemExit, match="purejaxrl/dqn.py"):
        peers.prepare_pjr(tmp_path / "out3", tmp_path / "checkout")


def _git(*args, cwd):
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                          capture_output=True, text=True).stdout.strip()


def test_peers_env_prepares_purejaxrl_at_the_pinned_commit(tmp_path):
    """benchmarks/peers_env.sh --pjr-only URL clones URL with git, checks out PUREJAXRL_COMMIT (not the newest
    commit) and prepares the folder as --prepare-pjr does; a commit the URL lacks is one error line."""
    repo = tmp_path / "upstream"
    (repo / "purejaxrl").mkdir(parents=True)
    _git("init", "-q", cwd=repo)
    (repo / "purejaxrl" / "ppo.py").write_text("# pinned\nfrom wrappers import LogWrapper\n")
    (repo / "purejaxrl" / "wrappers.py").write_text(WRAPPERS)
    (repo / "purejaxrl" / "dqn.py").write_text(DQN)
    _git("add", ".", cwd=repo)
    _git("commit", "-q", "-m", "pinned", cwd=repo)
    pinned = _git("rev-parse", "HEAD", cwd=repo)
    (repo / "purejaxrl" / "ppo.py").write_text("# newer\n")
    _git("commit", "-q", "-am", "newer", cwd=repo)
    env = dict(os.environ, PUREJAXRL_COMMIT=pinned, PEERS_DIR=str(tmp_path / "peers"),
               PEERS_VENV=str(tmp_path / "no-venv"), PEERS_PYTHON=sys.executable)
    script = BENCHMARKS / "peers_env.sh"
    subprocess.run(["bash", str(script), "--pjr-only", str(repo)], env=env, check=True, cwd=tmp_path,
                   capture_output=True, text=True)
    out = tmp_path / "peers" / "purejaxrl"
    assert (out / "pjr_ppo.py").read_text() == "# pinned\nfrom wrappers import LogWrapper\n"
    assert "# import navix as nx" in (out / "wrappers.py").read_text()
    assert "jax.tree.map" in (out / "pjr_dqn.py").read_text()
    assert f"commit {pinned}" in (out / "SOURCE.txt").read_text().splitlines()
    assert not (tmp_path / "no-venv").exists()                      # --pjr-only makes no venv
    missing = subprocess.run(["bash", str(script), "--pjr-only", str(repo)], cwd=tmp_path, capture_output=True,
                             text=True, env={**env, "PUREJAXRL_COMMIT": "0" * 40})
    assert missing.returncode == 1 and f"commit {'0' * 40} is not in {repo}" in missing.stderr


def test_peers_env_pins_its_versions():
    """Every package the peers' environment installs is pinned, and PureJaxRL's pinned commit is the one the
    CPU results file names."""
    text = (BENCHMARKS / "peers_env.sh").read_text()
    packages = re.search(r"^PEERS_PACKAGES=\((.*)\)$", text, re.MULTILINE).group(1).split()
    assert packages and all(re.fullmatch(r'"[a-z0-9_-]+==[0-9][0-9a-z.]*"', p) for p in packages), packages
    assert '"rejax==0.1.3"' in packages and '"gymnax==0.0.9"' in packages
    assert '"flashbax==0.1.3"' in packages   # PureJaxRL's dqn.py imports it
    assert 'jax="jax==$PEERS_JAX"' in text and '"jaxlib==$PEERS_JAX"' in text and "PEERS_JAX:-0.9.2" in text
    commit = re.search(r"PUREJAXRL_COMMIT:-([0-9a-f]+)\}", text).group(1)
    assert len(commit) == 40
    results = json.loads((BENCHMARKS.parent / "docs" / "results" / "peers-cpu.json").read_text())
    named = results["systems"]["purejaxrl"]["version"]                 # "commit 31756b1"
    assert named.startswith("commit ") and commit.startswith(named.split()[1])
