"""The package's layers hold: the import-linter contract in pyproject.toml passes, it is the layer table of
docs/architecture.md, and it fails when a lower layer imports a higher one."""

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _lint_imports() -> str:
    exe = Path(sys.executable).parent / "lint-imports"
    if not exe.exists():
        found = shutil.which("lint-imports")
        if found is None:
            pytest.fail("lint-imports is not installed: pip install -e '.[dev]' brings import-linter")
        exe = Path(found)
    return str(exe)


def _contract_layers() -> list[set[str]]:
    """The contract's layers, top first, each as its set of modules."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["type"] == "layers"]
    return [{m.strip() for m in re.split(r"[|:]", layer)} for layer in contract["layers"]]


def _run(cwd: Path) -> subprocess.CompletedProcess:
    # --no-cache: a copy of the package must be read afresh; PYTHONPATH: the package of `cwd`, not the installed one
    return subprocess.run([_lint_imports(), "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={"PATH": str(Path(sys.executable).parent), "PYTHONPATH": str(cwd)})


def test_the_layer_contract_is_kept():
    p = _run(ROOT)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]
    assert "1 kept, 0 broken" in p.stdout


def test_the_architecture_page_table_is_the_contract():
    """docs/architecture.md's layer table (bottom layer first) names the same modules, layer by layer, as the
    contract (top layer first), and every module of the package is in a layer."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text[text.index("## Layers"):text.index("## One agent protocol")]
    rows = [ln for ln in section.splitlines() if ln.startswith("| ") and not ln.startswith("| layer")]
    table = [set(re.findall(r"`(purerl(?:\.\w+)?)`", row.split("|")[2])) for row in rows]
    assert table[::-1] == _contract_layers()
    top_level = {f"purerl.{p.stem}" for p in (ROOT / "purerl").glob("*.py") if p.stem != "__init__"}
    top_level |= {f"purerl.{p.parent.name}" for p in (ROOT / "purerl").glob("*/__init__.py")}
    assert top_level == set().union(*table), top_level ^ set().union(*table)


def test_an_import_up_a_layer_breaks_the_contract(tmp_path):
    """The contract is not vacuous: in a copy of the package where envs imports the core (a layer above it)
    lint-imports fails and names the import."""
    shutil.copytree(ROOT / "purerl", tmp_path / "purerl", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    wrappers = tmp_path / "purerl" / "envs" / "wrappers.py"
    wrappers.write_text(wrappers.read_text() + "\nfrom purerl.core import loop  # noqa: E402,F401\n")
    p = _run(tmp_path)
    assert p.returncode != 0
    assert "purerl.envs.wrappers -> purerl.core.loop" in p.stdout, p.stdout[-3000:]
