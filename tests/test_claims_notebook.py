"""notebooks/claims.ipynb measures and draws every claim in its small mode and ends with the table of claims 1..9.

The notebook runs in a fresh kernel of the interpreter running the tests (notebooks/execute.py), with
``PURERL_NOTEBOOK_SMALL=1`` (it then measures, with the claims' tiny budgets) and ``JAX_PLATFORMS=cpu``, started
in ``notebooks/`` as Jupyter would (its first cell walks up from there to find ``benchmarks/claims.py``). The
executed copy stays in memory: the stored notebook keeps the outputs that draw the stored results
(tests/test_notebooks.py checks them). Slow: the tiny claims (8 seeds each) take several minutes on two cores.
The tiny verdicts themselves are asserted by tests/test_claims.py; here only that every cell runs, every
claim appears in the final table and every section drew its figure.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def _table_claims(text: str) -> list[int]:
    """The claim numbers of the rows of a ``claims.table`` printout (lines starting with a number)."""
    numbers = []
    for line in text.splitlines():
        first = line.split(maxsplit=1)[0] if line.strip() else ""
        if first.isdigit():
            numbers.append(int(first))
    return numbers


@pytest.mark.slow
def test_claims_notebook_small():
    spec = importlib.util.spec_from_file_location("purerl_notebooks_execute", NOTEBOOKS / "execute.py")
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    # Run from notebooks/ (where jupyter starts it): the first cell walks up to the repository root.
    nb = runner.execute(NOTEBOOKS / "claims.ipynb", NOTEBOOKS, small=True)

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
    assert set(numbers) == set(range(1, 10)), text
    assert numbers == sorted(numbers), text
    # every row has a verdict word
    rows = [line for line in text.splitlines() if line.split(maxsplit=1) and line.split(maxsplit=1)[0].isdigit()]
    assert all(line.rstrip().endswith(("holds", "FAILS", "inconclusive", "(reported)")) for line in rows), text

    # one figure per claim section: 1-2, 3 (scatter), 4, 5, 6, 7, 8, 9
    pngs = sum("image/png" in o.get("data", {}) for c in code for o in c.outputs)
    assert pngs >= 8, pngs
