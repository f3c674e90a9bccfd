"""Rendering an episode (GIF for gymnax, Brax's HTML viewer for Brax) and learning-curve plots."""

import base64
import json
import re
import types
import zlib

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image, ImageSequence
from scipy import stats

from purerl import envs, ppo
from purerl.run import plot, render

# ------------------------------------------------------------------------------------------------ render


@pytest.fixture(scope="module")
def cartpole():
    trainer = ppo.make(ppo.Config(env="CartPole-v1", num_envs=4, num_steps=32, total_timesteps=4 * 32 * 4,
                                  hidden_sizes=(16, 16), num_minibatches=2))
    return trainer, jax.jit(trainer.init)(jax.random.key(0))


def _gif_frames(path):
    with Image.open(path) as im:
        return [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)]


def test_gif_has_one_frame_per_step_of_the_evaluated_episode(cartpole, tmp_path):
    trainer, state = cartpole
    key = jax.random.key(3)
    # A stochastic policy: the rollout must use the keys exactly as evaluation does to give the same episode.
    path = render.render(trainer, state, tmp_path / "episode", key, deterministic=False)
    assert path == tmp_path / "episode.gif" and path.is_file()
    expected = int(trainer.evaluate(state, key, 1, deterministic=False)["lengths"][0])
    frames = _gif_frames(path)
    assert 1 < expected < trainer.eval_env(1).max_episode_steps
    assert len(frames) == expected + 1              # the initial state and the state after each step
    assert frames[0].shape == (400, 600, 3)
    assert not np.array_equal(frames[0], frames[-1])


def test_render_stops_at_max_steps_and_checks_the_suffix(cartpole, tmp_path):
    trainer, state = cartpole
    # No CartPole episode ends in 4 steps (the pole starts within 0.05 rad of upright, it ends past 0.21).
    path = render.render(trainer, state, tmp_path / "short.gif", jax.random.key(1), max_steps=4)
    assert len(_gif_frames(path)) == 5              # after 0, 1, 2, 3 and 4 steps
    with pytest.raises(ValueError, match=r"\.gif"):
        render.render(trainer, state, tmp_path / "short.mp4", jax.random.key(1))


def _scripted(env_id, act):
    """A stand-in trainer whose policy is ``act(obs, key)`` (all record_episode needs is eval_env and
    agent_policy)."""
    return types.SimpleNamespace(eval_env=lambda n: envs.make(env_id, n), agent_policy=lambda state, det: act)


def test_frame_labels_give_the_steps_and_return_of_the_state_drawn():
    from purerl.core.evaluation import evaluate_policy

    theta_limit = float(gymnax.make("CartPole-v1")[1].theta_threshold_radians)
    balance = lambda obs, key: (obs[:, 2] + 0.5 * obs[:, 3] > 0).astype(jnp.int32)   # noqa: E731
    push_right = lambda obs, key: jnp.ones(obs.shape[:1], jnp.int32)                  # noqa: E731
    for act, length in ((balance, 500), (push_right, None)):
        episode = render.record_episode(_scripted("CartPole-v1", act), None, jax.random.key(0))
        evaluated = evaluate_policy(envs.make("CartPole-v1", 1), act, jax.random.key(0))
        n = int(evaluated["lengths"][0])
        assert n == (length or n) and episode.length == n and episode.finished
        assert episode.episode_return == float(evaluated["returns"][0]) == n           # +1 per step
        # frame t is the state after t steps (gymnax counts them in `time`), titled with t and the return so far
        assert [int(f.time) for f in episode.frames] == list(range(n + 1))
        assert render.frame_labels(episode) == [f"CartPole-v1   step {t}   return {t:.2f}" for t in range(n + 1)]
        if length is None:   # pushed over: the last frame is the state past the limit that ended the episode
            assert 2 < n < 50 and abs(float(episode.frames[-1].theta)) > theta_limit
            assert all(abs(float(f.theta)) <= theta_limit for f in episode.frames[:-1])
    assert render.frame_labels(episode)[-1] == f"CartPole-v1   step {n}   return {n:.2f}"
    assert render.frame_labels(episode)[0] == "CartPole-v1   step 0   return 0.00"

    # a continuous env: each frame is the state its step led to, with the env's (clipped) action applied
    push = lambda obs, key: jnp.full((obs.shape[0], 1), 5.0)                         # noqa: E731 - beyond 2.0
    episode = render.record_episode(_scripted("Pendulum-v1", push), None, jax.random.key(1), max_steps=7)
    assert len(episode.frames) == 8 and not episode.finished
    assert [float(f.last_u) for f in episode.frames[1:]] == [2.0] * 7
    returns = np.concatenate([[0.0], np.cumsum(episode.rewards.astype(np.float64))])
    assert render.frame_labels(episode) == [f"Pendulum-v1   step {t}   return {returns[t]:.2f}" for t in range(8)]
    assert returns[-1] < returns[1] < 0                                              # costs accumulate


def test_unrenderable_env_is_a_value_error_naming_the_renderable_ones(tmp_path):
    fake = types.SimpleNamespace(eval_env=lambda n: envs.make("DeepSea-bsuite", n))
    with pytest.raises(ValueError, match="DeepSea-bsuite") as err:
        render.render(fake, None, tmp_path / "x", jax.random.key(0))
    assert "CartPole-v1" in str(err.value) and "Breakout-MinAtar" in str(err.value) and "brax/" in str(err.value)
    assert not list(tmp_path.iterdir())


def _episode(env_id, states):
    return render.Episode(envs.GymnaxEnv(env_id, 1), states, np.ones(len(states), np.float32), False)


def _centroid(frame, colour, rows=slice(None)):
    """Mean (row, column) of the pixels of exactly ``colour``."""
    r, c = np.nonzero(np.all(frame[rows] == colour, axis=-1))
    assert r.size, f"no pixels of colour {colour}"
    return r.mean() + (rows.start or 0), c.mean()


def test_classic_control_frames_follow_the_state():
    env, params = gymnax.make("CartPole-v1")
    s = env.reset(jax.random.key(0), params)[1]
    f = render.draw_frames(_episode("CartPole-v1", [s.replace(x=jnp.float32(-1.0), theta=jnp.float32(0.0)),
                                                    s.replace(x=jnp.float32(1.0), theta=jnp.float32(0.15))]))
    cart_rows = slice(255, 276)   # the cart (black) between the track and the pole's pivot
    left, right = _centroid(f[0], (0, 0, 0), cart_rows)[1], _centroid(f[1], (0, 0, 0), cart_rows)[1]
    assert right - left > 150   # the cart moved right by 2 of the world's 5.8 units (600 px)
    pole = (202, 152, 101)
    assert abs(_centroid(f[0], pole)[1] - left) < 3           # upright pole above the cart
    assert _centroid(f[1], pole)[1] > right + 5                # positive theta leans right, as in Gym

    env, params = gymnax.make("Pendulum-v1")
    s = env.reset(jax.random.key(0), params)[1]
    f = render.draw_frames(_episode("Pendulum-v1", [s.replace(theta=jnp.float32(a)) for a in (0.0, np.pi, 1.5)]))
    rod = (204, 77, 77)
    up, down, left = (_centroid(x, rod) for x in f)
    assert up[0] < 200 < down[0]                             # theta 0 is upright (pivot at row 200)
    assert left[1] < 300 - 40 and abs(left[0] - 200) < 15    # counter-clockwise: +pi/2 points left

    for env_id in render.CLASSIC_CONTROL:
        env, params = gymnax.make(env_id)
        states = [env.reset(k, params)[1] for k in jax.random.split(jax.random.key(1), 2)]
        frames = render.draw_frames(_episode(env_id, states))
        assert len(frames) == 2 and frames[0].shape == (400, 600, 3) and frames[0].dtype == np.uint8
        assert not np.array_equal(frames[0], frames[1]), env_id


@pytest.mark.parametrize("env_id", ["Catch-bsuite", "Breakout-MinAtar"])
def test_gymnax_visualizer_frames(env_id, tmp_path):
    env, params = gymnax.make(env_id)
    key = jax.random.key(0)
    states = [jax.jit(env.reset)(key, params)[1]]
    step = jax.jit(env.step_env)
    for k in jax.random.split(key, 3):
        states.append(step(k, states[-1], 1, params)[1])
    frames = render.draw_frames(_episode(env_id, states))
    assert len(frames) == 4 and frames[0].ndim == 3
    assert len({f.tobytes() for f in frames}) == 4
    path = render.write_gif(frames, tmp_path / "g.gif", fps=10)
    assert len(_gif_frames(path)) == 4


@pytest.fixture(scope="module")
def brax_page(tmp_path_factory):
    """A Brax episode of 8 steps rendered to HTML. A stand-in for an algorithm's trainer (all render needs is
    `eval_env` and `agent_policy`): building and initialising a real one for a Brax env costs ~20 s more on CPU;
    the CartPole tests use the real thing."""
    trainer = types.SimpleNamespace(
        eval_env=lambda n: envs.make("brax/inverted_pendulum", n, episode_length=8),
        agent_policy=lambda state, deterministic=True: lambda obs, key: jnp.full((obs.shape[0], 1), state))
    return render.render(trainer, jnp.float32(0.05), tmp_path_factory.mktemp("brax") / "pendulum",
                         jax.random.key(1))


def test_brax_renders_to_braxs_html_viewer(brax_page):
    path = brax_page
    assert path.name == "pendulum.html"
    text = path.read_text()
    assert "<title>Brax visualizer</title>" in text and 'id="brax-viewer"' in text
    system = json.loads(zlib.decompress(base64.b64decode(re.search(r'var system = "([^"]+)"', text).group(1))))
    assert "pole" in system["link_names"] and system["geoms"]
    xs = system["states"]["x"]
    # The pendulum takes longer than 8 steps to fall: the episode ends at the time limit.
    assert len(xs) == 8
    assert np.asarray(xs[0]["pos"]).shape == (len(system["link_names"]), 3)
    assert xs[-1]["pos"][0][0] > xs[0]["pos"][0][0] + 0.02   # the cart, pushed gently right, moved right


def test_brax_page_and_the_render_note_name_the_hosts_its_scripts_come_from(brax_page, tmp_path):
    text = brax_page.read_text()
    assert render.remote_hosts(text) == ["cdn.jsdelivr.net", "unpkg.com"]   # Brax's template, read at render time
    status = re.search(r'<div id="purerl-viewer-status"[^>]*>\s*([^<]+)</div>', text).group(1)
    assert "needs an internet connection" in status and "cdn.jsdelivr.net and unpkg.com" in status
    assert text.index('id="purerl-viewer-status"') < text.index('<div id="brax-viewer">')   # above the viewer
    assert render.note(brax_page) == (" (open it in a browser with an internet connection: the viewer loads "
                                      "three.js and its other scripts from cdn.jsdelivr.net and unpkg.com)")
    gif = render.write_gif([np.zeros((4, 4, 3), np.uint8)], tmp_path / "x.gif")
    assert render.note(gif) == ""


# What the viewer's hosts answer in the browser test where they are reachable: stand-ins that decompress the
# episode to an empty system and draw a canvas into the viewer element, as Brax's viewer does.
_STAND_INS = {"pako": "var pako = {inflate: function () { return new TextEncoder().encode('{}'); }};",
              "viewer.js": "export class Viewer { constructor(el, system) { "
                           "el.appendChild(document.createElement('canvas')); } }"}


def test_brax_page_says_when_its_scripts_do_not_load_and_drops_the_line_when_they_do(brax_page, tmp_path):
    """The viewer page in headless Chromium, served from a local folder: every request to another host failed
    as offline, then answered by :data:`_STAND_INS`."""
    from _browser import fulfill, headless, serve

    online = False

    def answer(cdp, event):
        if event.get("method") != "Fetch.requestPaused":
            return
        request_id, url = event["params"]["requestId"], event["params"]["request"]["url"]
        if online:
            fulfill(cdp, request_id, next((body for name, body in _STAND_INS.items() if name in url), ""))
        else:
            cdp.send("Fetch.failRequest", requestId=request_id, errorReason="InternetDisconnected")

    shows = """(() => {
        const s = document.getElementById('purerl-viewer-status');
        const r = s && s.getBoundingClientRect();
        return {status: s ? s.innerText : null, visible: !!r && r.width > 0 && r.height > 0 && r.top < 600,
                canvas: document.querySelectorAll('#brax-viewer canvas').length};
    })()"""
    with headless(tmp_path / "profile") as cdp, serve(brax_page.parent) as base:
        cdp.on_event = answer
        cdp.call("Fetch.enable", patterns=[{"urlPattern": "https://*"}])
        cdp.load(f"{base}/{brax_page.name}", settle=0.3)
        offline = cdp.evaluate(shows)
        online = True
        cdp.load(f"{base}/{brax_page.name}", settle=0.3)
        reached = cdp.evaluate(shows)
    assert offline["canvas"] == 0 and offline["visible"], offline
    assert offline["status"].startswith("The Brax viewer could not be loaded: its scripts (three.js, lil-gui, "
                                        "pako and the viewer) come from cdn.jsdelivr.net and unpkg.com"), offline
    assert reached == {"status": None, "visible": False, "canvas": 1}


# -------------------------------------------------------------------------------------------------- plot


def test_mean_and_band_is_a_bootstrap_interval_of_the_mean_ignoring_nans():
    values = np.array([[1.0, 2.0, np.nan, np.nan],
                       [2.0, 4.0, 5.0, np.nan],
                       [4.0, 9.0, 7.0, np.nan]])
    mean, low, high = plot.mean_and_band(values, reps=500)
    np.testing.assert_allclose(mean[:3], [7 / 3, 5.0, 6.0])                 # the NaN seed left out at point 2
    assert np.all(low[:3] < mean[:3]) and np.all(mean[:3] < high[:3])
    assert np.all(np.nanmin(values[:, :3], axis=0) <= low[:3]) and np.all(high[:3] <= np.nanmax(values[:, :3], axis=0))
    assert np.isnan([mean[3], low[3], high[3]]).all()
    # the percentiles of the resampled means: every resample of point 0 is a mean of three of {1, 2, 4}
    boot = np.random.RandomState(0).randint(0, 3, size=(500, 3, 1, 4))
    means = np.take_along_axis(values[None, :, None, :], boot, axis=1)[:, :, 0, 0].mean(axis=1)
    np.testing.assert_allclose([low[0], high[0]], np.percentile(means, [2.5, 97.5]))

    one = np.array([[1.0, np.nan, 3.0]])
    m, lo, hi = plot.mean_and_band(one)
    np.testing.assert_array_equal(m, one[0])
    np.testing.assert_array_equal(lo, m)
    np.testing.assert_array_equal(hi, m)
    m, lo, hi = plot.mean_and_band(np.array([[1.0], [np.nan]]))   # one value left at a point: no band
    assert m[0] == lo[0] == hi[0] == 1.0

    # many seeds: the bootstrap interval of the mean is the normal one (1.96 standard errors either side)
    x = np.random.default_rng(1).normal(0.0, 1.0, (400, 2))
    m, lo, hi = plot.mean_and_band(x, reps=4000)
    se = x.std(axis=0) / np.sqrt(400)
    np.testing.assert_allclose(hi - m, 1.96 * se, rtol=0.1)
    np.testing.assert_allclose(m - lo, 1.96 * se, rtol=0.1)


def _fake_run(path, algo, env, returns):
    path.mkdir()
    seeds, points = returns.shape
    (path / "config.json").write_text(json.dumps({"algo": algo, "seeds": seeds, "seed": 0,
                                                  "config": {"env": env, "num_envs": 4}}))
    steps = np.tile(np.arange(1, points + 1) * 1000.0, (seeds, 1))
    (path / "metrics.json").write_text(json.dumps({"env_steps": steps.tolist(), "episode_return": returns.tolist()}))
    return path


def test_plot_runs_draws_each_run_and_names_missing_metrics(tmp_path):
    rng = np.random.default_rng(0)
    a = _fake_run(tmp_path / "a", "ppo", "CartPole-v1", np.cumsum(rng.uniform(0, 10, (3, 20)), axis=1))
    b = _fake_run(tmp_path / "b", "a2c", "CartPole-v1", np.cumsum(rng.uniform(0, 5, (2, 20)), axis=1))
    out = plot.plot_runs([a, b], tmp_path / "plots" / "curves.png")
    assert out == tmp_path / "plots" / "curves.png"
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size == (700, 450)
        pixels = np.asarray(im.convert("RGB"))
    for colour in ((31, 119, 180), (255, 127, 14)):   # matplotlib's first two line colours: one curve per run
        assert np.all(pixels == colour, axis=-1).sum() > 200, colour

    with pytest.raises(ValueError, match=r"eval_return.*env_steps, episode_return"):
        plot.plot_runs([a, b], tmp_path / "x.png", metric="eval_return")
    with pytest.raises(ValueError, match="labels"):
        plot.plot_runs([a, b], tmp_path / "x.png", labels=["only one"])


def test_aggregate_plot_draws_the_iqm_and_its_bootstrap_band(tmp_path):
    """8 seeds of integer returns: the IQM drawn at each log point is the mean of the middle four seeds, and the
    band is the stratified bootstrap of it (purerl.run.stats, checked against a hand computation there)."""
    from purerl.run import stats

    rng = np.random.default_rng(0)
    returns = rng.integers(0, 500, (8, 30)).astype(float)
    run = _fake_run(tmp_path / "run", "ppo", "CartPole-v1", returns)
    out = plot.plot_runs([run], tmp_path / "iqm.png", aggregate=True, reps=300, seed=2, max_points=10)
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size == (700, 450)
        assert np.all(np.asarray(im.convert("RGB")) == (31, 119, 180), axis=-1).sum() > 200   # the IQM line
    drawn = json.loads(out.with_suffix(".json").read_text())["curves"][0]
    at = drawn["log_points"]
    assert at[0] == 0 and at[-1] == 29 and len(at) == 10                 # the first, the last, evenly between
    hand = [np.sort(returns[:, p])[2:6].mean() for p in at]
    assert drawn["iqm"] == hand and drawn["seeds"] == 8
    assert drawn["env_steps"] == [1000.0 * (p + 1) for p in at]
    ci = stats.iqm_ci(returns[:, None, at], reps=300, seed=2)
    assert drawn["low"] == ci.low.tolist() and drawn["high"] == ci.high.tolist()
    assert all(lo <= m <= hi for lo, m, hi in zip(drawn["low"], hand, drawn["high"]))
    assert any(lo < hi for lo, hi in zip(drawn["low"], drawn["high"]))


def test_performance_profile_over_tasks_from_run_directories(tmp_path):
    pts = np.ones((1, 20))
    runs = [_fake_run(tmp_path / "pc", "ppo", "CartPole-v1", np.array([[100.0], [300.0]]) * pts),
            _fake_run(tmp_path / "ac", "a2c", "CartPole-v1", np.array([[500.0], [200.0]]) * pts),
            _fake_run(tmp_path / "pp", "ppo", "Pendulum-v1", np.array([[-1000.0], [-200.0]]) * pts),
            _fake_run(tmp_path / "ap", "a2c", "Pendulum-v1", np.array([[-600.0], [-400.0]]) * pts)]
    prof = plot.performance_profiles(runs, taus=[0.0, 0.5, 0.99], reps=100)
    assert prof["tasks"] == ["CartPole-v1", "Pendulum-v1"]
    assert prof["ranges"] == {"CartPole-v1": (100.0, 500.0), "Pendulum-v1": (-1000.0, -200.0)}
    # normalised: ppo 0, 0.5 | 0, 1; a2c 1, 0.25 | 0.5, 0.75
    np.testing.assert_array_equal(prof["methods"]["ppo"].point, [0.5, 0.25, 0.25])
    np.testing.assert_array_equal(prof["methods"]["a2c"].point, [1.0, 0.5, 0.25])
    png = plot.plot_profile(runs, tmp_path / "profile.png", reps=100)
    with Image.open(png) as im:
        assert im.format == "PNG"
    with pytest.raises(ValueError, match="a2c has no run on Pendulum-v1"):
        plot.performance_profiles(runs[:3])
    with pytest.raises(ValueError, match="at least two envs"):
        plot.performance_profiles(runs[:2])


# ------------------------------------------------------------------------- plot: bands, labels, sweep dirs


def _fake_sweep(path, returns, lrs, ranking):
    """A sweep directory as `purerl sweep` writes it: ``returns [configs, seeds, points]``."""
    path.mkdir()
    configs, seeds, points = returns.shape
    steps = np.broadcast_to(np.arange(1, points + 1) * 100.0, returns.shape)
    (path / "sweep.json").write_text(json.dumps({
        "algo": "ppo", "env": "CartPole-v1", "config": {"env": "CartPole-v1", "learning_rate": 2.5e-4},
        "seeds": seeds, "seed": 0, "metric": "episode_return", "values": {"learning_rate": lrs},
        "summary": [{"learning_rate": lrs[c], "config_index": c} for c in ranking]}))
    np.savez_compressed(path / "metrics.npz", episode_return=returns, env_steps=steps,
                        value_learning_rate=np.asarray(lrs))
    return path


def test_the_mean_band_stays_within_the_returns_cartpole_can_give(tmp_path):
    # 4 seeds, returns in [0, 500]: at point 0 three seeds balance and one falls at once
    returns = np.array([[500.0, 0.0, 250.0], [500.0, 0.0, 260.0], [500.0, 0.0, 240.0], [10.0, 490.0, 250.0]])
    half = stats.t.ppf(0.975, 3) * returns.std(axis=0, ddof=1) / 2
    assert returns[:, 0].mean() + half[0] > 500 and returns[:, 1].mean() - half[1] < 0   # a t-band would
    mean, low, high = plot.mean_and_band(returns)
    assert low.min() >= 0 and high.max() <= 500
    run = _fake_run(tmp_path / "run", "ppo", "CartPole-v1", returns)
    out = plot.plot_runs([run], tmp_path / "mean.png")
    body = json.loads(out.with_suffix(".json").read_text())
    assert body["statistic"] == "mean" and "bootstrap" in body["interval"]
    drawn = body["curves"][0]
    np.testing.assert_allclose(drawn["mean"], returns.mean(axis=0))
    assert min(drawn["low"]) >= 0 and max(drawn["high"]) <= 500
    assert drawn["low"][0] < drawn["mean"][0] < drawn["high"][0] == 500
    assert drawn["low"][1] == 0 < drawn["mean"][1] < drawn["high"][1]


def test_runs_of_one_algo_and_env_get_distinct_labels(tmp_path):
    def run(name, lr, seed=0):
        d = _fake_run(tmp_path / name, "ppo", "CartPole-v1", np.ones((2, 5)))
        body = json.loads((d / "config.json").read_text())
        body["seed"], body["config"]["learning_rate"] = seed, lr
        (d / "config.json").write_text(json.dumps(body))
        return d

    a, b, c = run("a", 1e-3), run("b", 3e-4), run("c", 3e-4, seed=1)
    d = _fake_run(tmp_path / "d", "a2c", "CartPole-v1", np.ones((2, 5)))
    labels = [x["label"] for x in plot.load_curves([a, b, c, d])]
    assert labels == ["ppo on CartPole-v1 (learning_rate=0.001, seed=0)",
                      "ppo on CartPole-v1 (learning_rate=0.0003, seed=0)",
                      "ppo on CartPole-v1 (learning_rate=0.0003, seed=1)", "a2c on CartPole-v1"]
    same = [run("x", 1e-3), run("y", 1e-3)]        # nothing in the configs differs: the directories do
    assert [x["label"] for x in plot.load_curves(same)] == ["ppo on CartPole-v1 [x]", "ppo on CartPole-v1 [y]"]
    out = plot.plot_runs([a, b, c, d], tmp_path / "p.png")
    drawn = [x["label"] for x in json.loads(out.with_suffix(".json").read_text())["curves"]]
    assert drawn == labels


def test_a_sweep_directory_plots_one_curve_per_config(tmp_path, capsys):
    from purerl import cli

    rng = np.random.default_rng(0)
    returns = rng.uniform(0, 500, (3, 4, 12))
    sw = _fake_sweep(tmp_path / "sw", returns, [1e-4, 3e-4, 1e-3], ranking=[2, 0, 1])
    out = plot.plot_runs([sw], tmp_path / "sweep.png", reps=200)
    curves = json.loads(out.with_suffix(".json").read_text())["curves"]
    assert [c["config_index"] for c in curves] == [2, 0, 1]                 # the sweep's ranking
    assert [c["label"] for c in curves] == [f"ppo on CartPole-v1 (learning_rate={v})" for v in ("0.001", "0.0001", "0.0003")]
    for c in curves:
        np.testing.assert_allclose(c["mean"], returns[c["config_index"]].mean(axis=0))   # over its 4 seeds
        assert c["seeds"] == 4 and c["env_steps"] == [100.0 * (p + 1) for p in range(12)]
    with Image.open(out) as im:
        pixels = np.asarray(im.convert("RGB"))
    for colour in ((31, 119, 180), (255, 127, 14), (44, 160, 44)):        # three curves drawn
        assert np.all(pixels == colour, axis=-1).sum() > 100, colour
    top = plot.plot_runs([sw], tmp_path / "top.png", top=1, aggregate=True, reps=100)
    assert [c["config_index"] for c in json.loads(top.with_suffix(".json").read_text())["curves"]] == [2]

    code = cli.main(["plot", str(sw), "--top", "2", "--reps", "100"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0 and (sw / "episode_return.png").is_file()
    assert lines[0].startswith(f"{sw} config 2 (ppo on CartPole-v1 (learning_rate=0.001)): final episode_return IQM")
    assert any("a sweep of 3 configs; drawing its best 2" in line for line in lines)
    for bad, needle in ((["--top", "0"], "argument --top: must be at least 1, got 0"),
                        (["--points", "1"], "argument --points: must be at least 2, got 1")):
        with pytest.raises(SystemExit) as e:   # argparse's one-line error
            cli.main(["plot", str(sw), *bad])
        assert e.value.code == 2 and needle in capsys.readouterr().err
    with pytest.raises(ValueError, match="`max_points` must be at least 2"):
        plot.plot_runs([sw], tmp_path / "x.png", max_points=1)
    with pytest.raises(ValueError, match="`reps` must be at least 1"):
        plot.plot_runs([sw], tmp_path / "x.png", reps=0)
    (sw / "metrics.npz").unlink()
    with pytest.raises(ValueError, match="sweep.json but no metrics.npz"):
        plot.plot_runs([sw], tmp_path / "x.png")


def test_aggregate_plot_of_runs_no_profile_can_compare_skips_the_profile_with_a_note(tmp_path, capsys):
    """`purerl plot A B --aggregate` over two tasks whose runs a performance profile cannot compare (ppo only on
    one, a2c only on the other): the IQM plot is written and the optional profile skipped with a note, exit 0."""
    from purerl import cli

    pts = np.ones((1, 20))
    a = _fake_run(tmp_path / "a", "ppo", "CartPole-v1", np.array([[100.0], [300.0]]) * pts)
    b = _fake_run(tmp_path / "b", "a2c", "Pendulum-v1", np.array([[-900.0], [-300.0]]) * pts)
    code = cli.main(["plot", str(a), str(b), "--aggregate", "--reps", "20", "--out", str(tmp_path / "p.png")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert (tmp_path / "p.png").is_file() and not (tmp_path / "p_profile.png").exists()
    assert "no performance profile: ppo has no run on Pendulum-v1" in out, out
