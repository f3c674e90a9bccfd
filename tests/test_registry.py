"""The registries everything reads: algorithms (purerl.algorithms) and env suites (purerl.envs.SUITES)."""
import subprocess
import sys

import pytest

from purerl import algorithms, envs
from purerl.core.offpolicy import OffPolicyConfig
from purerl.core.onpolicy import OnPolicyConfig


@pytest.mark.parametrize("algo", algorithms.ALGORITHMS, ids=lambda a: a.name)
def test_every_registered_algorithm_is_a_module_of_its_family(algo):
    mod = algo.module
    assert callable(mod.make) and callable(mod.make_train)
    base = OnPolicyConfig if algo.family == "on-policy" else OffPolicyConfig
    assert issubclass(mod.Config, base), (algo.name, mod.Config.__mro__)
    # the action spaces it says it takes: an env of the other kind is refused before compiling
    if algo.actions == ("continuous",):
        with pytest.raises(ValueError, match="needs continuous"):
            mod.make(mod.Config(env="CartPole-v1"))
    if algo.actions == ("discrete",):
        with pytest.raises(ValueError, match="needs discrete"):
            mod.make(mod.Config(env="Pendulum-v1"))


def test_the_command_line_offers_exactly_the_registered_algorithms():
    out = subprocess.run([sys.executable, "-m", "purerl.cli", "train", "--help"], capture_output=True, text=True)
    listed = [line.split()[0] for line in out.stdout.splitlines() if line.strip().startswith("train ")]
    assert out.returncode == 0
    for name in algorithms.NAMES:
        assert f"    {name}" in out.stdout, (name, listed)
    with pytest.raises(ValueError, match="unknown algorithm 'rainbow'; available: a2c, a3c, ddpg, dqn"):
        algorithms.module("rainbow")


def test_import_purerl_is_cheap_and_imports_each_algorithm_on_first_use():
    """``import purerl`` imports no algorithm module and no jax; ``purerl.NAME`` imports the registered module."""
    code = ("import sys, purerl; before = sorted(m for m in sys.modules if m.startswith('purerl.') or m == 'jax'); "
            "mods = [getattr(purerl, a.name).__name__ for a in purerl.algorithms.ALGORITHMS]; print(before, mods)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == \
        f"['purerl.algorithms'] {[f'purerl.{a.name}' for a in algorithms.ALGORITHMS]}"


def test_every_env_id_belongs_to_exactly_the_suite_of_its_prefix():
    prefixes = [s.prefix for s in envs.SUITES]
    assert prefixes[-1] == "" and len(set(prefixes)) == len(prefixes)   # the bare-name suite matches last
    for env_id in envs.list_envs():
        suite = envs.suite_of(env_id)
        assert env_id in suite.ids(), env_id
    assert envs.PURERL_TIME_LIMIT == ("brax/", "playground/")
    assert envs.suite_of("brax/ant").renderer == "brax" and envs.suite_of("CartPole-v1").title == "gymnax"


def test_readme_and_docs_home_list_every_registered_algorithm():
    """The hand-written lists of algorithms (the README's and the docs home page's tables, the command line's
    ALGO line, the docs navigation) name exactly the registry's."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text()
    assert set(re.findall(r"^\| [^|]+ \| \[`purerl/(\w+)\.py`\]", readme, re.M)) == set(algorithms.NAMES)
    line = re.search(r"`ALGO` is one of `([^`]+)`", readme).group(1)
    assert sorted(line.split()) == sorted(algorithms.NAMES)
    index = (root / "docs" / "index.md").read_text()
    assert set(re.findall(r"^\| [^|]+ \| \[\w+\]\(algorithms/(\w+)\.md\)", index, re.M)) == set(algorithms.NAMES)
    nav = (root / "mkdocs.yml").read_text()
    assert set(re.findall(r"^\s+- [^:]+: algorithms/(\w+)\.md$", nav, re.M)) == set(algorithms.NAMES)
