"""The README's Python blocks run as written: every ```python block, in order, in one namespace (a later block
uses what an earlier one built, as a reader following the page would), in a fresh working directory. After
each block the results its comments state are checked (shapes, bounds, keys of either kind giving the same
numbers). A block that cannot run here (it needs a GPU or several hosts) is marked on the line above its fence
with ``<!-- not run: REASON -->``; the set of such blocks is pinned in ``NOT_RUN``, so a block cannot drop out
of the test unnoticed.

The README's budgets are the ones run here (the test substitutes nothing), so they are kept small: the test
is part of the default suite, and most of its time is compiling the dozen programs the blocks build.
"""

from __future__ import annotations

import ast
import dataclasses
import re
import time
from pathlib import Path

import jax
import numpy as np
import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
MARK = re.compile(r"^<!--\s*not run:\s*(.*?)\s*-->$")

# (section, index of the block within its section) of every block marked `<!-- not run: ... -->`
NOT_RUN: set[tuple[str, int]] = {("Several processes (hosts)", 0)}   # tests/test_multihost.py runs it


@dataclasses.dataclass(frozen=True)
class Block:
    section: str      # the nearest heading above the block
    index: int        # its position among the section's Python blocks
    line: int         # 1-based line of its first line of code
    code: str
    not_run: str | None   # the reason given by a `<!-- not run: ... -->` line right above it


def python_blocks(text: str) -> list[Block]:
    """The ```python blocks of a markdown text, in order. Headings inside fences are not headings; a
    ``<!-- not run: -->`` mark must sit right above a Python block, with a reason."""
    lines = text.splitlines()
    blocks, section, counts, i = [], "", {}, 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("```"):
            end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == "```"), None)
            if end is None:
                raise ValueError(f"line {i + 1}: a code fence that is never closed")
            if line[3:].strip() == "python":
                prev = lines[i - 1].strip() if i else ""
                mark = MARK.match(prev)
                if mark and not mark.group(1):
                    raise ValueError(f"line {i}: a `not run` mark without a reason")
                index = counts.get(section, 0)
                counts[section] = index + 1
                blocks.append(Block(section, index, i + 2, "\n".join(lines[i + 1:end]) + "\n",
                                    mark.group(1) if mark else None))
            i = end + 1
            continue
        if MARK.match(line) and not (i + 1 < len(lines) and lines[i + 1].strip() == "```python"):
            raise ValueError(f"line {i + 1}: a `not run` mark that is not right above a ```python block")
        if m := re.match(r"^#+\s+(.+?)\s*$", lines[i]):
            section = m.group(1)
        i += 1
    return blocks


def test_blocks_and_not_run_marks_are_found():
    text = "\n".join([
        "# A", "```python", "x = 1", "```", "```bash", "# B (a comment, not a heading)", "```",
        "<!-- not run: needs a GPU -->", "```python", "y = 2", "```",
        "## C", "```python", "z = 3", "```", "```python", "w = 4", "```"])
    got = [(b.section, b.index, b.line, b.code, b.not_run) for b in python_blocks(text)]
    assert got == [("A", 0, 3, "x = 1\n", None), ("A", 1, 10, "y = 2\n", "needs a GPU"),
                   ("C", 0, 14, "z = 3\n", None), ("C", 1, 17, "w = 4\n", None)]
    with pytest.raises(ValueError, match="not right above"):
        python_blocks("<!-- not run: GPU -->\n\n```python\nx = 1\n```")
    with pytest.raises(ValueError, match="without a reason"):
        python_blocks("<!-- not run: -->\n```python\nx = 1\n```")
    with pytest.raises(ValueError, match="never closed"):
        python_blocks("```python\nx = 1\n")


def _leaves_equal(a, b) -> bool:
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    if len(la) != len(lb):
        return False
    for x, y in zip(la, lb):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        if np.asarray(x).dtype != np.asarray(y).dtype or not np.array_equal(np.asarray(x), np.asarray(y)):
            return False
    return True


# What each block's comments state, checked on the namespace right after it ran.
def _check_api(ns: dict) -> None:
    cfg, trainer = ns["cfg"], ns["trainer"]
    n = cfg.total_timesteps // (cfg.num_envs * cfg.num_steps)
    assert n == 97 == trainer.num_log_points                      # "97 = 50_000 // (4 envs x 128 steps)"
    assert ns["result"].metrics["episode_return"].shape == (97,)
    assert ns["results"].metrics["episode_return"].shape == (8, 97)
    assert ns["by_lr"].metrics["episode_return"].shape == (3, 97)
    ev = ns["_"]
    assert {"mean", "std", "min", "max", "returns"} <= set(ev) and np.shape(ev["returns"]) == (10,)
    assert float(ev["min"]) <= float(ev["mean"]) <= float(ev["max"])


def _check_purejaxrl(ns: dict) -> None:
    assert ns["rng"].dtype == np.uint32 and ns["rng"].shape == (2,)          # a legacy key, as PureJaxRL makes
    typed = ns["train_jit"](jax.random.key(0))
    assert _leaves_equal(ns["out"], typed), "PRNGKey(0) and key(0) gave different results"
    # plain jax.jit against purerl.jit's `result`: the same program, its numbers apart by float rounding only
    np.testing.assert_allclose(ns["out"].metrics["policy_loss"][:4], ns["result"].metrics["policy_loss"][:4],
                               rtol=1e-4)
    assert ns["outs"].metrics["episode_return"].shape == (8, 97)
    np.testing.assert_allclose(ns["outs"].metrics["policy_loss"][:, :4], ns["results"].metrics["policy_loss"][:, :4],
                               rtol=1e-4, atol=1e-6)


def _check_purerl_jit_leads(text: str) -> None:
    """Every training program the README's run blocks compile is compiled with purerl.jit (what a CPU user
    should type); plain jax.jit appears only in the PureJaxRL tour, the one-off init and the block that is not
    run here."""
    for b in python_blocks(text):
        if b.not_run or b.section == "Python API" and b.index == 1:
            continue
        for line in b.code.splitlines():
            code = line.split("#")[0]
            assert "jax.jit(" not in code.replace("purerl.jit(", "") or "jax.jit(trainer.init)" in code, (
                b.section, line)


def _check_offpolicy(ns: dict) -> None:
    trainer, result = ns["sac_trainer"], ns["result"]
    assert result.metrics["eval_return"].shape == (20,) and trainer.config.num_log_points == 20
    act = ns["_"]
    assert act.shape == (1, 1)
    obs = jax.random.uniform(jax.random.key(7), (64, 3), minval=-8.0, maxval=8.0)
    env_actions = np.asarray(ns["act"](obs))
    agent_actions = np.asarray(trainer.agent_policy(result.state)(obs))
    assert np.abs(env_actions).max() <= 2.0 and np.abs(agent_actions).max() <= 1.0     # Pendulum-v1: [-2, 2]
    assert np.abs(env_actions).max() > 1.0             # rescaled, not the agent's [-1, 1] actions
    np.testing.assert_allclose(env_actions, 2.0 * agent_actions, rtol=1e-6)


def _check_checkpoints(ns: dict) -> None:
    where = Path("runs/example/checkpoints")
    assert sorted(p.name for p in where.iterdir()) == ["50"]
    assert ns["meta"] == {"algo": "ppo"}
    assert int(ns["state"].update_step) == 50 and ns["metrics"]["episode_return"].shape == (50,)


def _check_sweeps(ns: dict) -> None:
    res = ns["res"]
    assert res.metrics["episode_return"].shape == (6, 4, 39)              # "(6, 4, 39)"
    assert set(res.best) == {"learning_rate", "ent_coef"}
    assert res.best["learning_rate"] in (1e-4, 3e-4, 1e-3) and 1e-4 <= res.best["ent_coef"] <= 1e-1


CHECKS = {("Python API", 0): _check_api, ("Python API", 1): _check_purejaxrl,
          ("Off-policy: DDPG, TD3, SAC", 0): _check_offpolicy, ("Checkpoints", 0): _check_checkpoints,
          ("Sweeps and devices", 0): _check_sweeps}
RUN_TWICE = {("Checkpoints", 0)}   # running it again must work too (the same checkpoint step is replaced)


def _run(block: Block, ns: dict) -> None:
    """Execute a block as a notebook would: its last line's value, if an expression, is kept as ``ns["_"]``.
    Line numbers in tracebacks are the README's."""
    tree = ast.parse("\n" * (block.line - 1) + block.code, filename=str(README))
    last = tree.body[-1] if tree.body else None
    ns.pop("_", None)
    if isinstance(last, ast.Expr):
        tree.body[-1] = ast.Assign(targets=[ast.Name("_", ast.Store())], value=last.value)
        ast.fix_missing_locations(tree)
    exec(compile(tree, str(README), "exec"), ns)  # noqa: S102 - the README's own code


def test_readme_python_blocks_run_as_written(tmp_path, monkeypatch, capsys):
    blocks = python_blocks(README.read_text())
    assert {(b.section, b.index) for b in blocks if b.not_run} == NOT_RUN
    _check_purerl_jit_leads(README.read_text())
    ran = {(b.section, b.index) for b in blocks if not b.not_run}
    assert set(CHECKS) <= ran and RUN_TWICE <= ran, f"README blocks moved or renamed: {sorted(ran)}"
    monkeypatch.chdir(tmp_path)
    ns: dict = {"__name__": "__readme__"}
    times = []
    for block in blocks:
        if block.not_run:
            continue
        for _ in range(2 if (block.section, block.index) in RUN_TWICE else 1):
            t0 = time.perf_counter()
            _run(block, ns)
            if (check := CHECKS.get((block.section, block.index))) is not None:
                check(ns)
            times.append(f"{block.section}[{block.index}] {time.perf_counter() - t0:.1f}s")
    # everything the README writes goes under runs/, which .gitignore lists
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]
    assert "runs/" in (README.parent / ".gitignore").read_text().split()
    assert "iqm 95% CI" in capsys.readouterr().out       # the sweep block prints its ranked table
    print("README blocks:", ", ".join(times))


def test_readme_case_against_rliable_holds():
    """The README's reasons for not depending on rliable are the ones that hold: pandas (and seaborn) come with
    purerl's own install through gymnax, so no download size is claimed; rliable 1.2.0 fails with pandas 3."""
    from importlib import metadata

    def requires(dist: str) -> set[str]:
        return {re.split(r"[ ;<>=!~\[(]", r, maxsplit=1)[0].lower() for r in metadata.requires(dist) or ()
                if "extra ==" not in r}

    assert "seaborn" in requires("gymnax") and "pandas" in requires("seaborn")
    text = " ".join(README.read_text().split())
    assert "MB" not in text[text.index("purerl does not depend on rliable"):text.index("## Exporting")]
    assert "gymnax requires seaborn, which requires pandas" in text
    assert "fails to import with pandas 3 (through arch 7.2)" in text
