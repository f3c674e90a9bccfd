"""benchmarks/peers.py without training: row budgets, argument plumbing (which interpreter and PYTHONPATH each
worker gets), the table's ratios and labels from fake worker results, and the PureJaxRL file preparation."""

import ast
import importlib
import os
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
    assert peers.default_rows(None, "cpu") == ["ppo1", "ppo16", "sac", "cli"]
    assert peers.default_rows(None, "gpu") == ["ppo1", "ppo16", "ppo256", "ppo2048", "sac", "cli"]
    assert peers.default_rows("ppo2048,sac", "cpu") == ["ppo2048", "sac"]
    with pytest.raises(SystemExit, match="ppo9"):
        peers.default_rows("ppo1,ppo9", "gpu")


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


def test_table_quoted_never_in_ratio(peers):
    res = {"ppo1": _res((2.0, 3.0, 500.0), (4.0, 3.5, 480.0))}
    lines, table = peers.build_table(res, {"backend": "cpu", "pjr_live": False, "header": "H"})
    pj = table[0]["systems"]["purejaxrl"]
    assert pj["quoted"] and pj["run_s"] == peers.PUREJAXRL_QUOTED["ppo1"]["run_s"]
    assert table[0]["ratio_run"] == pytest.approx(3.0 / 3.5) and table[0]["fastest_peer_run"] == "rejax"
    assert "quoted" in lines[2]
    # quoted CPU figures never stand beside GPU or tiny-budget measurements
    for meta in ({"backend": "gpu"}, {"backend": "cpu", "tiny": True}):
        _, table = peers.build_table(res, {**meta, "pjr_live": False})
        assert "purejaxrl" not in table[0]["systems"]


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


def test_prepare_pjr(peers, tmp_path):
    src = tmp_path / "checkout" / "purejaxrl"
    src.mkdir(parents=True)
    (src / "ppo.py").write_text("from wrappers import LogWrapper\n")
    (src / "wrappers.py").write_text(WRAPPERS)
    peers.prepare_pjr(tmp_path / "out", tmp_path / "checkout")
    assert (tmp_path / "out" / "pjr_ppo.py").read_text() == "from wrappers import LogWrapper\n"
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
