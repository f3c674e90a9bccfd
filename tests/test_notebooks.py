"""The example notebooks: stored with the outputs of their current code, and they execute end to end (in their
small mode) and produce what they promise.

Each notebook runs in a fresh kernel of the interpreter running the tests (``notebooks/execute.py``: a kernelspec
written to a temporary Jupyter path, so no installed ``python3`` kernelspec is needed), with
``PURERL_NOTEBOOK_SMALL=1`` (tiny budgets) and ``JAX_PLATFORMS=cpu``, in a temporary working directory that
receives its ``runs/``. The last cell of each notebook evaluates a summary dict; the tests read it from the
executed notebook.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import json
import math
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


@functools.cache
def notebook_runner():
    """notebooks/execute.py, which executes the notebooks and stores their outputs."""
    spec = importlib.util.spec_from_file_location("purerl_notebooks_execute", NOTEBOOKS / "execute.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def execute(name: str, tmp_path: Path):
    """Execute ``notebooks/<name>`` in small mode in ``tmp_path/work``; return the executed notebook."""
    work = tmp_path / "work"
    work.mkdir()
    return notebook_runner().execute(NOTEBOOKS / name, work, small=True), work


def summary(nb) -> dict:
    """The dict the notebook's last code cell evaluates to."""
    last = [c for c in nb.cells if c.cell_type == "code"][-1]
    results = [o for o in last.outputs if o.output_type == "execute_result"]
    assert results, f"the last cell displayed no result: {last.outputs}"
    return ast.literal_eval(results[-1]["data"]["text/plain"])


def _images(nb, mime: str) -> int:
    return sum(mime in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_notebooks_are_stored_with_the_outputs_of_their_current_code():
    runner = notebook_runner()
    assert set(runner.STORED) == {p.name for p in NOTEBOOKS.glob("*.ipynb")}
    for name, mode in runner.STORED.items():
        path = NOTEBOOKS / name
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert nb.metadata["kernelspec"]["name"] == "python3", name
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert 'SMALL = os.environ.get("PURERL_NOTEBOOK_SMALL") == "1"' in code[0].source, name
        executed = nb.metadata.get("purerl", {}).get("executed")
        redo = f"python notebooks/execute.py {name}"
        assert executed, f"{name} holds no record of its execution: {redo}"
        assert executed["mode"] == mode, name
        assert executed["sources_sha256"] == runner.sources_sha256(nb), \
            f"{name}: the stored outputs were computed from older code: {redo}"
        # one execution, top to bottom, that failed nowhere and showed every promised output
        assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), name
        assert not [o for c in code for o in c.outputs if o.output_type == "error"], name
        if mode == "small":
            assert "small mode" in "".join(o.get("text", "") for o in code[0].outputs), name
            assert _images(nb, "image/png") >= 1 and _images(nb, "image/gif") == 1, name
        text = path.read_text()
        assert len(text.encode()) <= runner.MAX_STORED_BYTES, f"{name}: {len(text.encode())} bytes"
        named = [p for p in runner.machine_paths() if p in text]
        assert not named, f"{name} names paths of the machine it was executed on: {named}"


def test_claims_notebook_shows_the_stored_results_as_todays_rules_read_them():
    """The claims notebook's table is the stored results file's rows, with today's verdicts: rerunning
    benchmarks/claims.py or changing a rule leaves it stale until `python notebooks/execute.py claims.ipynb`."""
    import sys

    sys.path.insert(0, str(NOTEBOOKS.parent / "benchmarks"))
    import claims

    nb = nbformat.read(NOTEBOOKS / "claims.ipynb", as_version=4)
    last = [c for c in nb.cells if c.cell_type == "code"][-1]
    shown = "".join(o.get("text", "") for o in last.outputs if o.output_type == "stream")
    expected = claims.table(claims.load(NOTEBOOKS.parent / "docs" / "results" / "claims.json"))
    assert shown.strip() == expected.strip(), "python notebooks/execute.py claims.ipynb"
    assert _images(nb, "image/png") >= 7      # one figure per claim section: 1-2, 3, 4, 5, 6, 7, 8


def test_quickstart_notebook(tmp_path):
    nb, work = execute("quickstart.ipynb", tmp_path)
    s = summary(nb)
    assert s["small"] is True
    # one sweep row per learning rate, and the best one is among them
    assert s["sweep_rows"] == len(s["sweep_learning_rates"]) == 3
    assert s["sweep_best_learning_rate"] in s["sweep_learning_rates"]
    # CartPole returns are positive and at most 500 per episode
    for key in ("final_return", "seeds_final_return_mean", "eval_deterministic", "eval_stochastic", "eval_run_dir"):
        assert math.isfinite(s[key]) and 0 < s[key] <= 500, (key, s[key])
    gif = work / s["gif"]
    assert gif.suffix == ".gif" and gif.read_bytes()[:6] in (b"GIF87a", b"GIF89a")
    run_dir = work / "runs" / "quickstart"
    for name in ("config.json", "metrics.json", "metrics.csv", "checkpoints"):
        assert (run_dir / name).exists(), name
    assert json.loads((run_dir / "config.json").read_text())["seeds"] == 2
    assert (work / s["curve"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the learning curves (single run, seeds, sweep), the GIF and the run-directory curve were displayed
    assert _images(nb, "image/png") >= 4
    assert _images(nb, "image/gif") == 1


def test_sac_pendulum_notebook(tmp_path):
    nb, work = execute("sac_pendulum.ipynb", tmp_path)
    s = summary(nb)
    assert s["small"] is True
    assert s["num_log_points"] == len(s["eval_returns"]) == 3
    # Pendulum-v1 rewards are in [-16.3, 0]: an episode of 200 steps returns between about -3300 and 0
    for value in s["eval_returns"] + [s["final_eval_return"], s["eval_deterministic"], s["eval_stochastic"]]:
        assert math.isfinite(value) and -3300 < value <= 0, value
    assert s["final_alpha"] > 0 and math.isfinite(s["final_entropy"])
    assert s["target_entropy"] == -1.0
    gif = work / s["gif"]
    assert gif.suffix == ".gif" and gif.read_bytes()[:6] in (b"GIF87a", b"GIF89a")
    assert _images(nb, "image/png") >= 1
    assert _images(nb, "image/gif") == 1
