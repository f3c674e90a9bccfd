"""Rendering one episode of a trained policy: an HTML viewer for Brax envs, an animated GIF for gymnax envs.

    from purerl.run import render
    path = render.render(trainer, seed_state, "out/episode", key=jax.random.key(0))   # -> out/episode.gif

The episode is rolled out in one jitted program by the evaluation loop itself (``trainer.agent_policy`` in
``trainer.eval_env(1)``, every step up to the env's time limit) and cut on the host at the episode's end or
after ``max_steps``; the loop records the underlying env state: for
gymnax envs the initial state and the state each step ended in (before the automatic reset of the step that
ends the episode), for Brax the state before every step. Drawing happens afterwards on the host; a GIF
frame's title gives the steps taken to reach the state drawn and the return collected in them, so the last
frame of a 500-step CartPole episode reads "step 500   return 500.00":

* ``brax/<name>``: Brax's own viewer (:func:`brax.io.html.render`), an HTML page holding the episode that
  loads its scripts (three.js, lil-gui, pako and Brax's viewer) from unpkg.com and cdn.jsdelivr.net when
  opened: it needs an internet connection. No installed package ships three.js, so the page cannot be made
  whole offline; it says so itself (a line above the viewer that reads "could not load" when the scripts did
  not arrive), as does ``purerl render`` (:func:`note`).
* classic control (CartPole-v1, Pendulum-v1, Acrobot-v1, MountainCar-v0, MountainCarContinuous-v0): frames
  drawn here with Pillow (gymnax 1.0.1's renderer for these goes through gymnasium + pygame, which purerl
  does not install).
* MinAtar, Pong-misc, Catch-bsuite, PointRobot-misc, FourRooms-misc, MetaMaze-misc: gymnax's own
  :class:`gymnax.visualize.Visualizer` (matplotlib), one frame per recorded state.

Every other env raises a ``ValueError`` naming the ones that can be rendered.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
from collections.abc import Callable
from html import escape as _html_escape
from pathlib import Path
from typing import Any

import jax
import numpy as np

from flax import struct

from purerl.core.evaluation import evaluate_policy
from purerl.envs import suite_of
from purerl.envs.base import Wrapper, WrapperState

__all__ = ["CLASSIC_CONTROL", "GYMNAX_VISUALIZER", "Episode", "draw_frames", "frame_labels", "note",
           "record_episode", "remote_hosts", "render", "render_format", "renderable_envs", "write_gif", "write_html"]

CLASSIC_CONTROL = ("CartPole-v1", "Pendulum-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0")
GYMNAX_VISUALIZER = ("Asterix-MinAtar", "Breakout-MinAtar", "Freeway-MinAtar", "Seaquest-MinAtar",
                     "SpaceInvaders-MinAtar", "Pong-misc", "Catch-bsuite", "PointRobot-misc", "FourRooms-misc",
                     "MetaMaze-misc")


def renderable_envs() -> str:
    """A human-readable list of the envs :func:`render` supports."""
    return ", ".join(CLASSIC_CONTROL + GYMNAX_VISUALIZER) + " and every Brax env ('brax/<name>', e.g. brax/ant)"


def render_format(env_id: str) -> str:
    """``".html"`` for Brax envs, ``".gif"`` for renderable gymnax envs; ``ValueError`` otherwise."""
    if suite_of(env_id).renderer == "brax":
        return ".html"
    if env_id in CLASSIC_CONTROL or env_id in GYMNAX_VISUALIZER:
        return ".gif"
    raise ValueError(f"cannot render env {env_id!r}: there is no renderer for it. Renderable envs: "
                     f"{renderable_envs()}.")


# --------------------------------------------------------------------------------------------- rollout


@dataclasses.dataclass
class Episode:
    """One recorded episode. ``rewards[t]``: the raw reward of step ``t + 1``; ``frames[t]``: the underlying
    env state after ``t`` steps (host numpy pytrees, unbatched: gymnax env states, or for Brax the pipeline
    state's body transforms ``x``). A gymnax episode holds ``len(rewards) + 1`` frames, from the initial state
    to the state its last step ended in; a Brax episode ``len(rewards)``, the states before each step.
    ``finished``: whether it ended (terminal or time limit) within ``max_steps``, else it was cut there;
    ``env``: the suite adapter (``GymnaxEnv``/``BraxEnv``) it ran in."""

    env: Any
    frames: list
    rewards: np.ndarray
    finished: bool

    @property
    def env_id(self) -> str:
        return self.env.env_id

    @property
    def length(self) -> int:
        """Steps taken."""
        return len(self.rewards)

    @property
    def episode_return(self) -> float:
        return float(self.rewards.sum())


def _base_state(state: Any) -> Any:
    """The suite adapter's state under any stack of stateful wrappers."""
    while isinstance(state, WrapperState):
        state = state.inner
    return state


def _extractor(base_env: Any) -> Callable[[Any], Any]:
    """What to record of the adapter's (batched) state: the gymnax env state, or Brax's body transforms."""
    from purerl.envs.suites import BraxEnv

    if isinstance(base_env, BraxEnv):
        return lambda s: s.core.pipeline_state.x
    return lambda s: s


@struct.dataclass
class _EndStateRecord(WrapperState):
    after: Any  # the gymnax states the latest step ended in, before an automatic reset


class _RecordEndStates(Wrapper):
    """The outermost wrapper of a gymnax env stack while an episode is recorded: its state also holds the gymnax
    state each step ended in, which the adapter replaces by a fresh initial state when the step ends the episode
    (it steps the gymnax env a second time, with the same key and action: the same transition). The evaluation
    loop runs one step more than the time limit, so that the state after the limit's last step is recorded too;
    the keys of the steps before it are unchanged (split keys do not depend on their count)."""

    def __init__(self, env: Any):
        super().__init__(env)
        self.max_episode_steps = env.max_episode_steps + 1

    def reset(self, key):
        inner, obs = self.env.reset(key)
        return _EndStateRecord(inner, _base_state(inner)), obs

    def step(self, key, state, action):
        from purerl.envs.suites import step_noise_of

        base = self.env.unwrapped
        keys = step_noise_of(base, key).keys
        after = jax.vmap(base.gymnax_env.step_env, in_axes=(0, 0, 0, None))(
            keys, _base_state(state.inner), base._cast_action(self.env.to_env_action(action)), base.env_params)[1]
        inner, ts = self.env.step(key, state.inner, action)
        return _EndStateRecord(inner, after), ts


def _records_end_states(base_env: Any) -> bool:
    """Whether :class:`_RecordEndStates` applies: the gymnax envs drawn to GIFs (plain gymnax steps, and env
    randomness drawn in one piece for both loop lengths, so the recorded episode is the evaluated one)."""
    from purerl.envs.suites import GymnaxEnv

    return (isinstance(base_env, GymnaxEnv) and not base_env._custom_step
            and base_env.env_id in CLASSIC_CONTROL + GYMNAX_VISUALIZER)


def record_episode(trainer: Any, state: Any, key: jax.Array | int, max_steps: int | None = None,
                   deterministic: bool = True) -> Episode:
    """Roll out one episode of ``trainer.agent_policy(state, deterministic)`` in ``trainer.eval_env(1)``.

    ``state`` is one seed's (unvmapped) train state. The episode is recorded by the evaluation loop itself
    (:func:`purerl.core.evaluation.evaluate_policy`), so it is the episode that
    ``trainer.evaluate(state, key, num_episodes=1, deterministic=deterministic)`` evaluates, cut at
    ``max_steps``. See :class:`Episode` for the frames recorded.
    """
    if isinstance(key, int):
        key = jax.random.key(key)
    env = trainer.eval_env(1)
    base = env.unwrapped
    max_steps = int(env.max_episode_steps if max_steps is None else max_steps)
    if max_steps < 1:
        raise ValueError(f"max_steps must be at least 1, got {max_steps}")
    extract = _extractor(base)
    end_states = _records_end_states(base)
    if end_states:
        env, record = _RecordEndStates(env), lambda s: s.after       # trace state t: after t steps
    else:
        record = lambda s: extract(_base_state(s))                   # noqa: E731 - before step t + 1

    def run(train_state, key):
        act = trainer.agent_policy(train_state, deterministic)  # the agent's actions: eval_env transforms them
        return evaluate_policy(env, act, key, record=record)["trace"]

    trace = jax.device_get(jax.jit(run)(state, key))
    done = np.asarray(trace["done"])[:, 0]
    ends = np.flatnonzero(done)
    length = min(max_steps, int(ends[0]) + 1 if ends.size else len(done))
    n_frames = length + 1 if end_states else length
    # Drop the batch axis of the single env and split the time axis into a list of per-step states.
    frames = jax.tree.map(lambda x: np.asarray(x)[:n_frames, 0], trace["state"])
    frame_list = [jax.tree.map(lambda x, i=i: x[i], frames) for i in range(n_frames)]
    rewards = np.asarray(trace["reward"])[:length, 0]
    return Episode(base, frame_list, rewards, bool(done[:length].any()))


# --------------------------------------------------------------------------------------------- output


def render(trainer: Any, state: Any, path: str | Path, key: jax.Array | int, max_steps: int | None = None,
           deterministic: bool = True, fps: int | None = None) -> Path:
    """Render one episode of the trained policy (``state``: one seed's train state) to ``path``.

    Brax envs give an HTML page (Brax's viewer), gymnax envs an animated GIF of the initial state and the state
    after each step (titled by :func:`frame_labels`: the steps taken and the return so far). ``path`` gets the
    right suffix
    if it has none; a different suffix is a ``ValueError``. ``max_steps`` defaults to the env's time limit;
    ``fps`` (GIF only) to 20 for classic control and 10 for the grid games. Returns the written path.
    """
    env_id = trainer.eval_env(1).env_id
    suffix = render_format(env_id)  # fails fast, before any rollout, for envs without a renderer
    path = Path(path)
    if path.suffix == "":
        path = path.with_name(path.name + suffix)
    elif path.suffix.lower() != suffix:
        raise ValueError(f"render of {env_id!r} writes a {suffix} file, but path {str(path)!r} ends in "
                         f"{path.suffix!r}")
    episode = record_episode(trainer, state, key, max_steps=max_steps, deterministic=deterministic)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".html":
        write_html(episode, path)
    else:
        write_gif(draw_frames(episode), path, fps or (20 if env_id in CLASSIC_CONTROL else 10))
    return path


@dataclasses.dataclass
class _BraxFrame:
    """The part of a Brax pipeline state that the viewer reads (``x``: every body's position and rotation)."""

    x: Any


def write_html(episode: Episode, path: str | Path) -> Path:
    """Brax's HTML viewer (:func:`brax.io.html.render`) of a Brax episode, with a status line above the viewer:
    while the page loads it names the hosts the viewer's scripts come from; once the page has loaded it is
    removed if the viewer drew its canvas, and otherwise says that the scripts could not be loaded (offline,
    or the hosts blocked)."""
    from brax.io import html

    if suite_of(episode.env_id).renderer != "brax":
        raise ValueError(f"{episode.env_id} is not a Brax env: it renders to a GIF (draw_frames, write_gif)")
    sys = episode.env.brax_env.sys
    path = Path(path)
    path.write_text(_with_status_line(html.render(sys, [_BraxFrame(x) for x in episode.frames])))
    return path


_VIEWER_DIV = '<div id="brax-viewer"></div>'
# The viewer appends its WebGL canvas to #brax-viewer. Module scripts run before the window's load event, so
# at that event a viewer without a canvas did not load; a canvas that still arrives later removes the line.
_STATUS = """<div id="purerl-viewer-status" style="font: 15px sans-serif; padding: 12px; background: #fff3cd;">
{loading}</div>
"""
_WATCH = """
<script>
(function () {{
  var status = document.getElementById('purerl-viewer-status');
  var viewer = document.getElementById('brax-viewer');
  function loaded() {{ return viewer.querySelector('canvas') !== null; }}
  new MutationObserver(function () {{ if (loaded()) status.remove(); }}).observe(viewer, {{childList: true}});
  window.addEventListener('load', function () {{
    if (loaded()) status.remove();
    else status.textContent = {failed};
  }});
}})();
</script>
"""


def remote_hosts(page: str) -> list[str]:
    """The hosts an HTML page loads scripts from (``src="https://HOST/..."`` and the import map's URLs)."""
    return sorted(set(re.findall(r'"https?://([^/"]+)/[^"]*"', page)))


def _with_status_line(page: str) -> str:
    hosts = " and ".join(remote_hosts(page)) or "the internet"
    loading = (f"Loading the Brax viewer: its scripts (three.js, lil-gui, pako and the viewer) come from {hosts}, "
               f"so this page needs an internet connection.")
    failed = (f"The Brax viewer could not be loaded: its scripts (three.js, lil-gui, pako and the viewer) come "
              f"from {hosts}, which this browser could not reach. Open this file again with an internet "
              f"connection; the episode itself is stored in the file.")
    if _VIEWER_DIV not in page:
        raise ValueError(f"brax.io.html.render's page has no {_VIEWER_DIV}: this version of Brax is not supported "
                         f"by purerl.run.render.write_html")
    status = _STATUS.format(loading=_html_escape(loading))
    watch = _WATCH.format(failed=json.dumps(failed))
    return page.replace(_VIEWER_DIV, status + _VIEWER_DIV + watch, 1)


def note(path: str | Path) -> str:
    """What to know about opening a written render: for Brax's HTML page, the hosts its scripts load from
    (it needs an internet connection); ``""`` for a GIF. ``purerl render`` prints it after the path."""
    path = Path(path)
    if path.suffix.lower() != ".html":
        return ""
    hosts = " and ".join(remote_hosts(path.read_text())) or "the internet"
    return (f" (open it in a browser with an internet connection: the viewer loads three.js and its other "
            f"scripts from {hosts})")


def write_gif(frames: list[np.ndarray], path: str | Path, fps: int = 20) -> Path:
    """An animated GIF (looping) of RGB ``frames`` ``[H, W, 3]`` uint8."""
    from PIL import Image

    if not frames:
        raise ValueError("write_gif: no frames")
    path = Path(path)
    images = [Image.fromarray(f) for f in frames]
    # GIF frame delays are in 10 ms units; pillow merges identical consecutive frames, but every frame
    # carries its step number, so none are.
    images[0].save(path, save_all=True, append_images=images[1:], duration=max(10, round(1000 / fps)), loop=0)
    return path


def frame_labels(episode: Episode) -> list[str]:
    """The title of each GIF frame: the env id, the steps taken to reach the frame's state and the raw return
    collected in them (``frames[t]`` is the state after ``t`` steps)."""
    returns = np.concatenate([[0.0], np.cumsum(np.asarray(episode.rewards, dtype=np.float64))])
    if len(episode.frames) > len(returns):
        raise ValueError(f"an episode of {len(episode.rewards)} rewards holds at most {len(returns)} frames (the "
                         f"states after 0..{len(episode.rewards)} steps), got {len(episode.frames)}")
    return [f"{episode.env_id}   step {t}   return {returns[t]:.2f}" for t in range(len(episode.frames))]


def draw_frames(episode: Episode) -> list[np.ndarray]:
    """One RGB frame ``[H, W, 3]`` per recorded state of a gymnax episode, titled by :func:`frame_labels`."""
    render_format(episode.env_id)
    if suite_of(episode.env_id).renderer == "brax":
        raise ValueError(f"{episode.env_id} is a Brax env: it renders to HTML (write_html), not to frames")
    base = episode.env
    labels = frame_labels(episode)
    if episode.env_id in CLASSIC_CONTROL:
        draw = _CLASSIC[episode.env_id]
        return [_classic_frame(draw, s, base.env_params, label)
                for s, label in zip(episode.frames, labels, strict=True)]
    return _visualizer_frames(base.gymnax_env, base.env_params, episode.frames, labels)


def _visualizer_frames(env: Any, params: Any, states: list, labels: list[str]) -> list[np.ndarray]:
    """Frames from gymnax's own matplotlib visualiser (its ``init``/``update``), read off the canvas; the title
    its ``update`` sets is replaced by ``labels``."""
    import matplotlib.pyplot as plt
    from gymnax.visualize import Visualizer

    vis = Visualizer(_JitObserve(env), params, states)
    try:
        vis.init()
        frames = []
        for i in range(len(states)):
            vis.update(i)
            vis.ax.set_title(labels[i], fontsize=15)
            vis.fig.canvas.draw()
            frames.append(np.asarray(vis.fig.canvas.buffer_rgba())[..., :3].copy())
    finally:
        plt.close(vis.fig)
    return frames


class _JitObserve:
    """A gymnax env whose ``observe`` is jitted: the MinAtar visualiser calls it once per frame, and eagerly
    that costs ~0.1 s a frame. Everything else is the env's own."""

    def __init__(self, env: Any):
        self._wrapped = env
        self._observe = jax.jit(lambda key, state, params: env.observe(key, state, None, params))

    def observe(self, key, state, action, params):
        return self._observe(key, state, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._wrapped, name)


# ------------------------------------------------------------------------- classic control, drawn here

_W, _H = 600, 400


class _Canvas:
    """World coordinates (y up) on a Pillow image, ``scale`` pixels per unit, world ``origin`` at a pixel."""

    def __init__(self, scale: float, origin: tuple[float, float]):
        from PIL import Image, ImageDraw

        self.image = Image.new("RGB", (_W, _H), (255, 255, 255))
        self.draw = ImageDraw.Draw(self.image)
        self.scale = scale
        self.origin = origin

    def px(self, x: float, y: float) -> tuple[float, float]:
        return self.origin[0] + x * self.scale, self.origin[1] - y * self.scale

    def line(self, a, b, fill, width_px: int) -> None:
        self.draw.line([self.px(*a), self.px(*b)], fill=fill, width=width_px)

    def polygon(self, points, fill, outline=None) -> None:
        self.draw.polygon([self.px(*p) for p in points], fill=fill, outline=outline)

    def circle(self, centre, radius_px: float, fill) -> None:
        cx, cy = self.px(*centre)
        self.draw.ellipse([cx - radius_px, cy - radius_px, cx + radius_px, cy + radius_px], fill=fill)


def _f(x: Any) -> float:
    return float(np.asarray(x))


def _draw_cartpole(s: Any, p: Any) -> _Canvas:
    half = _f(p.x_threshold) * 1.2
    c = _Canvas(_W / (2 * half), (_W / 2, _H * 0.7))
    x, theta = _f(s.x), _f(s.theta)
    cart_w, cart_h = 0.5, 0.3
    c.line((-half, 0.0), (half, 0.0), (0, 0, 0), 1)
    for edge in (-_f(p.x_threshold), _f(p.x_threshold)):  # termination bounds
        c.line((edge, -0.1), (edge, 0.1), (200, 0, 0), 2)
    c.polygon([(x - cart_w / 2, 0.0), (x + cart_w / 2, 0.0), (x + cart_w / 2, cart_h), (x - cart_w / 2, cart_h)],
              (0, 0, 0))
    pivot = (x, cart_h * 0.75)
    pole = 2 * _f(p.length)  # gymnax's `length` is half the pole's
    tip = (x + pole * math.sin(theta), pivot[1] + pole * math.cos(theta))
    c.line(pivot, tip, (202, 152, 101), max(3, round(0.1 * c.scale)))
    c.circle(pivot, 0.05 * c.scale, (129, 132, 203))
    return c


def _draw_pendulum(s: Any, p: Any) -> _Canvas:
    length = _f(p.l)
    c = _Canvas(_H / (2.6 * length), (_W / 2, _H / 2))
    theta = _f(s.theta)  # 0 is upright, counter-clockwise positive
    tip = (-length * math.sin(theta), length * math.cos(theta))
    c.line((0.0, 0.0), tip, (204, 77, 77), max(4, round(0.2 * c.scale)))
    c.circle((0.0, 0.0), 0.06 * c.scale, (0, 0, 0))
    # the last torque as a bar under the pivot: right of centre for positive (counter-clockwise) torque
    u = _f(s.last_u) / _f(p.max_torque)
    c.line((0.0, -1.15 * length), (u * length, -1.15 * length), (60, 60, 200), 6)
    return c


def _draw_acrobot(s: Any, p: Any) -> _Canvas:
    l1, l2 = _f(p.link_length_1), _f(p.link_length_2)
    c = _Canvas(_H / (2.4 * (l1 + l2)), (_W / 2, _H / 2))
    a1, a2 = _f(s.joint_angle1), _f(s.joint_angle2)  # 0, 0 hangs straight down
    p1 = (l1 * math.sin(a1), -l1 * math.cos(a1))
    p2 = (p1[0] + l2 * math.sin(a1 + a2), p1[1] - l2 * math.cos(a1 + a2))
    c.line((-(l1 + l2) * 1.1, 1.0), ((l1 + l2) * 1.1, 1.0), (0, 0, 0), 1)  # the height to swing above
    width = max(4, round(0.1 * c.scale))
    c.line((0.0, 0.0), p1, (0, 204, 204), width)
    c.line(p1, p2, (0, 204, 204), width)
    for joint in ((0.0, 0.0), p1):
        c.circle(joint, 0.05 * c.scale, (204, 204, 0))
    return c


def _draw_mountain_car(s: Any, p: Any) -> _Canvas:
    lo, hi = _f(p.min_position), _f(p.max_position)
    scale = min(_W / (hi - lo), (_H - 40) / 1.15)  # the track spans heights 0.1 to 1.0, the flag 0.1 more
    c = _Canvas(scale, ((_W - (hi - lo) * scale) / 2 - lo * scale, _H))

    def height(x):
        return math.sin(3 * x) * 0.45 + 0.55

    xs = np.linspace(lo, hi, 100)
    c.draw.line([c.px(x, height(x)) for x in xs], fill=(0, 0, 0), width=2)
    goal = _f(p.goal_position)
    flag_bottom = (goal, height(goal))
    c.line(flag_bottom, (goal, height(goal) + 0.1), (0, 0, 0), 2)
    c.polygon([(goal, height(goal) + 0.1), (goal, height(goal) + 0.07), (goal + 0.05, height(goal) + 0.085)],
              (204, 204, 0))
    pos = _f(s.position)
    angle = math.atan(math.cos(3 * pos) * 1.35)  # slope of the track
    w, h = 0.12, 0.05
    along, normal = (math.cos(angle), math.sin(angle)), (-math.sin(angle), math.cos(angle))
    base = (pos, height(pos))
    corners = [(base[0] + a * along[0] + b * normal[0], base[1] + a * along[1] + b * normal[1])
               for a, b in ((-w / 2, 0.01), (w / 2, 0.01), (w / 2, h), (-w / 2, h))]
    c.polygon(corners, (0, 0, 0))
    return c


_CLASSIC: dict[str, Callable[[Any, Any], _Canvas]] = {
    "CartPole-v1": _draw_cartpole,
    "Pendulum-v1": _draw_pendulum,
    "Acrobot-v1": _draw_acrobot,
    "MountainCar-v0": _draw_mountain_car,
    "MountainCarContinuous-v0": _draw_mountain_car,
}


@functools.cache
def _font() -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=16)  # a scalable font (Pillow >= 10.1 with FreeType)
    except (TypeError, ImportError, OSError):
        return ImageFont.load_default()


def _classic_frame(draw: Callable, state: Any, params: Any, label: str) -> np.ndarray:
    canvas = draw(state, params)
    canvas.draw.text((10, 8), label, fill=(0, 0, 0), font=_font())
    return np.asarray(canvas.image)
