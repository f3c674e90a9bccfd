"""notebooks/claims.ipynb executes end to end in its small mode and ends with the table of claims 1..8.

The notebook runs in a fresh kernel of the interpreter running the tests (a kernelspec written to a temporary
Jupyter path), with ``PURERL_NOTEBOOK_SMALL=1`` (the claims' tiny budgets) and ``JAX_PLATFORMS=cpu``, started in
``notebooks/`` as Jupyter would (its first cell walks up from there to find ``benchmarks/claims.py``). The executed
copy stays in memory: the stored notebook keeps its full-budget outputs. Slow: the tiny claims (8 seeds each) take
several minutes on two cores. The tiny verdicts themselves are asserted by tests/test_claims.py; here only that every
cell runs, every claim appears in the final table and every section drew its figure.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "claims.ipynb"
KERNEL = "purerl-claims-notebook-test"
CELL_TIMEOUT_S = 1800


def _table_claims(text: str) -> list[int]:
    """The claim numbers of the rows of a ``claims.table`` printout (lines starting with a number)."""
    numbers = []
    for line in text.splitlines():
        first = line.split(maxsplit=1)[0] if line.strip() else ""
        if first.isdigit():
            numbers.append(int(first))
    return numbers


@pytest.mark.slow
def test_claims_notebook_small(tmp_path, monkeypatch):
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "purerl claims notebook test",
        "language": "python",
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("PURERL_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # Run from notebooks/ (where jupyter starts it): the first cell walks up to the repository root.
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name=KERNEL,
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()  # raises CellExecutionError (with the cell and its traceback) if any cell fails

    code = [c for c in nb.cells if c.cell_type == "code"]
    assert 'SMALL = os.environ.get("PURERL_NOTEBOOK_SMALL") == "1"' in code[0].source
    assert "tiny budgets" in "".join(o.get("text", "") for o in code[0].outputs)
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, errors

    last = code[-1]
    assert "claims.table(rows)" in last.source
    text = "".join(o.get("text", "") for o in last.outputs if o.output_type == "stream")
    assert "measured quantity" in text and "verdict" in text, text
    numbers = _table_claims(text)
    assert set(numbers) == set(range(1, 9)), text
    assert numbers == sorted(numbers), text
    # every row has a verdict word
    rows = [line for line in text.splitlines() if line.split(maxsplit=1) and line.split(maxsplit=1)[0].isdigit()]
    assert all(line.rstrip().endswith(("holds", "FAILS", "inconclusive", "(reported)")) for line in rows), text

    # one figure per claim section: 1-2, 3 (scatter), 4, 5, 6, 7, 8
    pngs = sum("image/png" in o.get("data", {}) for c in code for o in c.outputs)
    assert pngs >= 7, pngs
