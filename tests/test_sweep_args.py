"""sweep.run's arguments: the seed as an int or a key (the same result), counts checked before anything is
compiled, the swept values kept as given; `purerl sweep`'s flags. A stand-in algorithm (a random draw per
key scaled by the learning rate) keeps every program tiny; tests/test_sweep.py runs the real ones."""

import json
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purerl import ppo, sweep

CFG = ppo.Config(env="CartPole-v1")   # only its type and validation are used: the stand-in never builds PPO
GRID = {"learning_rate": [1e-4, 3e-4]}
SPACE = {"gamma": (0.9, 0.99)}


def _fake_algo(calls):
    def make_train(cfg):
        calls.append(cfg)

        def train(key):
            ret = jax.random.uniform(key, (3,)) * 1e6 * cfg.learning_rate * cfg.gamma
            return types.SimpleNamespace(metrics={"episode_return": ret, "env_steps": jnp.arange(1.0, 4.0)})

        return train

    return types.SimpleNamespace(__name__="purerl.fake", make_train=make_train)


def test_a_key_seed_gives_the_int_seeds_result_bit_for_bit():
    calls = []
    algo = _fake_algo(calls)
    runs = [sweep.run(algo, CFG, GRID, space=SPACE, samples=2, seeds=3, seed=s, log=None)
            for s in (7, np.int64(7), jax.random.key(7), jax.random.PRNGKey(7))]
    for other in runs[1:]:
        for name in runs[0].values:
            np.testing.assert_array_equal(other.values[name], runs[0].values[name])   # the same random draws
        np.testing.assert_array_equal(other.metrics["episode_return"], runs[0].metrics["episode_return"])
    assert runs[0].seed == 7 and runs[2].seed is None
    # seed k of every config trains with split(key(7), seeds)[k], the key `purerl train --seed 7` gives seed k
    res, keys = runs[0], jax.random.split(jax.random.key(7), 3)
    assert res.values["learning_rate"].tolist() == [1e-4, 1e-4, 3e-4, 3e-4]
    for c in range(4):
        lr, gamma = np.float32(res.values["learning_rate"][c]), np.float32(res.values["gamma"][c])
        for k in range(3):
            want = jax.random.uniform(keys[k], (3,)) * 1e6 * lr * gamma
            np.testing.assert_allclose(res.metrics["episode_return"][c, k], want, rtol=1e-6)
    other = sweep.run(algo, CFG, GRID, space=SPACE, samples=2, seeds=3, seed=8, log=None)
    assert not np.array_equal(other.metrics["episode_return"], res.metrics["episode_return"])
    assert not np.array_equal(other.values["gamma"], res.values["gamma"])


@pytest.mark.parametrize("seed", [1.5, "0", True, None, np.zeros(3, np.uint32), np.zeros(2, np.int32),
                                  jax.random.split(jax.random.PRNGKey(0), 2), jax.random.split(jax.random.key(0), 2)],
                         ids=["float", "str", "bool", "none", "uint32x3", "int32x2", "legacy-batch", "typed-batch"])
def test_a_seed_that_is_neither_an_int_nor_one_key_is_a_type_error_naming_seed(seed):
    calls = []
    with pytest.raises(TypeError, match=r"`seed`.*jax\.random\.key\(s\).*jax\.random\.PRNGKey\(s\)"):
        sweep.run(_fake_algo(calls), CFG, GRID, seeds=2, seed=seed, log=None)
    assert calls == []    # nothing was traced


@pytest.mark.parametrize("kwargs, error, needle", [
    ({"seeds": 0}, ValueError, "`seeds` must be at least 1"),
    ({"seeds": 2.0}, TypeError, "`seeds` must be a whole number"),
    ({"chunk_size": 0}, ValueError, "`chunk_size` must be at least 1"),
    ({"space": SPACE, "samples": 0}, ValueError, "samples >= 1"),
    ({"space": SPACE, "samples": -2}, ValueError, "`samples` must be at least 0"),
    ({"samples": 3}, ValueError, "samples=3 draws from `space`"),
    ({"grid": {"learning_rate": []}}, ValueError, r"grid\['learning_rate'\] has no values"),
    ({"grid": {"learning_rate": 1e-3}}, TypeError, r"grid\['learning_rate'\] must be a list"),
    ({"grid": {"learning_rate": ["1e-3"]}}, TypeError, r"grid\['learning_rate'\]'s value must be a number"),
    ({"space": {"gamma": 0.9}, "samples": 2}, ValueError, r"space\['gamma'\]"),
    ({"devices": []}, ValueError, "`devices` is empty"),
], ids=["seeds0", "seeds-float", "chunk0", "samples0", "samples-neg", "samples-no-space", "grid-empty",
        "grid-scalar", "grid-str", "space-scalar", "devices-empty"])
def test_every_count_is_checked_before_anything_is_traced(kwargs, error, needle):
    calls = []
    kwargs = {"grid": GRID, **kwargs}
    with pytest.raises(error, match=needle):
        sweep.run(_fake_algo(calls), CFG, log=None, **kwargs)
    assert calls == []


def test_an_unknown_metric_is_named_before_compiling():
    with pytest.raises(ValueError, match="metric 'eval_return' is not among.*env_steps, episode_return"):
        sweep.run(_fake_algo([]), CFG, GRID, metric="eval_return", log=None)


def test_swept_values_are_stored_as_given_not_as_float32(tmp_path):
    res = sweep.run(_fake_algo([]), CFG, GRID, seeds=2, log=None)
    assert res.values["learning_rate"].tolist() == [1e-4, 3e-4]          # not 9.999999747378752e-05
    assert [r["learning_rate"] for r in res.summary()] in ([1e-4, 3e-4], [3e-4, 1e-4])
    assert res.best["learning_rate"] in (1e-4, 3e-4)
    res.save(tmp_path / "sw")
    body = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    assert body["values"] == {"learning_rate": [1e-4, 3e-4]}
    assert {r["learning_rate"] for r in body["summary"]} == {1e-4, 3e-4} and body["best"] == res.best
    assert body["algo"] == "fake" and body["env"] == "CartPole-v1" and body["seed"] == 0
    assert body["metric"] == "episode_return" and body["config"]["num_envs"] == CFG.num_envs
    with np.load(tmp_path / "sw" / "metrics.npz") as npz:
        np.testing.assert_array_equal(npz["episode_return"], res.metrics["episode_return"])
        assert sorted(npz.files) == sorted(res.metrics)      # metrics only: the values live in sweep.json
    # random draws: the float64 values drawn, within their bounds (a float32 round trip can leave them)
    drawn = sweep.sample_space({"learning_rate": (1e-5, 1e-1, "log")}, 50, jax.random.key(3))["learning_rate"]
    vals = sweep.combinations(space={"learning_rate": (1e-5, 1e-1, "log")}, samples=50, key=jax.random.key(3))
    assert vals["learning_rate"].dtype == np.float64
    np.testing.assert_array_equal(vals["learning_rate"], drawn)
    assert drawn.min() >= 1e-5 and drawn.max() <= 1e-1


@pytest.mark.parametrize("args, needle", [
    (["--seeds", "0"], "--seeds must be at least 1"),
    (["--chunk-size", "0"], "--chunk-size must be at least 1"),
    (["--samples", "-1"], "--samples must be at least 0"),
    (["--samples", "2"], "--samples 2 draws from --random"),
    (["--random", "gamma=0.9:0.99"], "--random needs --samples"),
    (["--random", "gamma=a:b", "--samples", "2"], "--random gamma: low and high must be numbers"),
    (["--grid", "gamma="], "--grid gamma: give at least one value"),
], ids=["seeds", "chunk", "samples-neg", "samples-alone", "random-alone", "random-nan", "grid-empty"])
def test_bad_sweep_flags_are_one_line_before_building_anything(args, needle, capsys, monkeypatch):
    from purerl import cli

    def boom(*a, **k):
        raise AssertionError("sweep.run was reached")

    monkeypatch.setattr(sweep, "run", boom)
    code = cli.main(["sweep", "ppo", "--no-cache", "--grid", "learning_rate=1e-3", *args])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
