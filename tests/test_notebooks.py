"""The example notebooks execute end to end (in their small mode) and produce what they promise.

Each notebook runs in a fresh kernel of the interpreter running the tests (a kernelspec written to a
temporary Jupyter path, so no installed ``python3`` kernelspec is needed), with ``PURERL_NOTEBOOK_SMALL=1``
(tiny budgets) and ``JAX_PLATFORMS=cpu``, in a temporary working directory that receives its ``runs/``.
The last cell of each notebook evaluates a summary dict; the tests read it from the executed notebook.
"""

from __future__ import annotations

import ast
import json
import math
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
KERNEL = "purerl-notebook-test"
CELL_TIMEOUT_S = 600


def _kernelspec(root: Path) -> None:
    """A kernelspec named KERNEL under ``root/kernels`` that starts this interpreter's ipykernel."""
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "purerl notebook test",
        "language": "python",
    }))


def execute(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Execute ``notebooks/<name>`` in small mode in ``tmp_path/work``; return the executed notebook."""
    jupyter = tmp_path / "jupyter"
    _kernelspec(jupyter)
    work = tmp_path / "work"
    work.mkdir()
    # The kernel inherits this process's environment.
    monkeypatch.setenv("JUPYTER_PATH", str(jupyter))
    monkeypatch.setenv("PURERL_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name=KERNEL,
                                     resources={"metadata": {"path": str(work)}})
    client.execute()  # raises CellExecutionError (with the cell and its traceback) if any cell fails
    return nb, work


def summary(nb) -> dict:
    """The dict the notebook's last code cell evaluates to."""
    last = [c for c in nb.cells if c.cell_type == "code"][-1]
    results = [o for o in last.outputs if o.output_type == "execute_result"]
    assert results, f"the last cell displayed no result: {last.outputs}"
    return ast.literal_eval(results[-1]["data"]["text/plain"])


def _images(nb, mime: str) -> int:
    return sum(mime in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)


# Stored with its outputs on purpose: its plots and table are what it is for (a full run takes minutes).
WITH_OUTPUTS = {"claims.ipynb"}


def test_notebooks_are_committed_without_outputs():
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert nb.metadata["kernelspec"]["name"] == "python3", path.name
        for cell in nb.cells:
            if cell.cell_type == "code" and path.name not in WITH_OUTPUTS:
                assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: a cell has outputs"
        first = next(c for c in nb.cells if c.cell_type == "code")
        assert 'SMALL = os.environ.get("PURERL_NOTEBOOK_SMALL") == "1"' in first.source, path.name


def test_quickstart_notebook(tmp_path, monkeypatch):
    nb, work = execute("quickstart.ipynb", tmp_path, monkeypatch)
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


def test_sac_pendulum_notebook(tmp_path, monkeypatch):
    nb, work = execute("sac_pendulum.ipynb", tmp_path, monkeypatch)
    s = summary(nb)
    assert s["small"] is True
    assert s["num_evals"] == len(s["eval_returns"]) == 3
    # Pendulum-v1 rewards are in [-16.3, 0]: an episode of 200 steps returns between about -3300 and 0
    for value in s["eval_returns"] + [s["final_eval_return"], s["eval_deterministic"], s["eval_stochastic"]]:
        assert math.isfinite(value) and -3300 < value <= 0, value
    assert s["final_alpha"] > 0 and math.isfinite(s["final_entropy"])
    assert s["target_entropy"] == -1.0
    gif = work / s["gif"]
    assert gif.suffix == ".gif" and gif.read_bytes()[:6] in (b"GIF87a", b"GIF89a")
    assert _images(nb, "image/png") >= 1
    assert _images(nb, "image/gif") == 1
