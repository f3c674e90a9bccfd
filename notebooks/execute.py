"""Execute the example notebooks in a fresh kernel and, on request, store their outputs in the .ipynb files.

    python notebooks/execute.py                     # every notebook, outputs stored
    python notebooks/execute.py quickstart.ipynb    # one of them

The kernel is this interpreter's ipykernel (a kernelspec written to a temporary Jupyter path, so no installed
``python3`` kernelspec is needed), run with ``JAX_PLATFORMS=cpu``, in the mode :data:`STORED` names:

* ``small``: with ``PURERL_NOTEBOOK_SMALL=1`` (tiny budgets: a few seconds a notebook, outputs of a few hundred
  kB), started in a temporary folder that receives the notebook's ``runs/``;
* ``results``: ``claims.ipynb``, started in ``notebooks/``, reads the results ``benchmarks/claims.py`` stored
  (``docs/results/claims.json``) and measures nothing.

The stored notebook records how it was executed in its metadata (``purerl.executed``: the mode and a hash of
its code cells' sources), so a test can tell stored outputs that no longer belong to the code above them.
Outputs that name a path of the executing machine (the checkout, the interpreter, the temporary folder) are
refused.

``tests/test_notebooks.py`` and ``tests/test_claims_notebook.py`` execute the notebooks with :func:`execute`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parent
ROOT = NOTEBOOKS.parent
STORED = {"quickstart.ipynb": "small", "sac_pendulum.ipynb": "small", "claims.ipynb": "results"}
SMALL_OUTPUTS = tuple(name for name, mode in STORED.items() if mode == "small")
KERNEL = "purerl-notebook"
CELL_TIMEOUT_S = 1800
MAX_STORED_BYTES = 450_000


def sources_sha256(nb) -> str:
    """A hash of the notebook's code cells' sources, in order (what the stored outputs were computed from)."""
    h = hashlib.sha256()
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            h.update(source.encode() + b"\0")
    return h.hexdigest()


def _kernelspec(root: Path) -> None:
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "purerl notebook", "language": "python",
        "env": {"JAX_PLATFORMS": "cpu", "MPLBACKEND": "module://matplotlib_inline.backend_inline"},
    }))


def execute(path: Path, cwd: Path, small: bool = True):
    """``path`` executed top to bottom in a fresh kernel started in ``cwd``; returns the executed notebook
    (``nbformat``'s node). A failing cell raises nbclient's ``CellExecutionError`` with its traceback."""
    import nbclient
    import nbformat

    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as jupyter:
        _kernelspec(Path(jupyter))
        env = {"JUPYTER_PATH": jupyter}
        if small:
            env["PURERL_NOTEBOOK_SMALL"] = "1"
        saved = {k: os.environ.get(k) for k in (*env, "PURERL_NOTEBOOK_SMALL")}
        os.environ.update(env)          # the kernel inherits this process's environment
        if not small:
            os.environ.pop("PURERL_NOTEBOOK_SMALL", None)
        try:
            client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name=KERNEL,
                                             resources={"metadata": {"path": str(cwd)}})
            client.execute()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    return nb


def machine_paths(*extra: Path) -> list[str]:
    """Paths of the executing machine that stored outputs must not name."""
    paths = {str(ROOT), sys.prefix, sys.base_prefix, str(Path.home()), tempfile.gettempdir(), *map(str, extra)}
    return sorted(p for p in paths if len(p) > 1)


def store(name: str) -> Path:
    """Execute ``notebooks/<name>`` in its :data:`STORED` mode and write it back with its outputs and
    ``purerl.executed`` metadata."""
    import nbformat

    path = NOTEBOOKS / name
    mode = STORED[name]
    small = mode == "small"
    with tempfile.TemporaryDirectory() as work:
        nb = execute(path, Path(work) if small else NOTEBOOKS, small=small)
        # The kernel's own metadata is the executing machine's; the stored notebook keeps the generic one.
        nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python",
                                     "name": "python3"}
        nb.metadata["purerl"] = {"executed": {"mode": mode,
                                              "sources_sha256": sources_sha256(nb)}}
        for cell in nb.cells:
            cell.metadata.pop("execution", None)     # timestamps of this execution
        text = nbformat.writes(nb) + "\n"
        named = [p for p in machine_paths(Path(work)) if p in text]
    if named:
        raise SystemExit(f"{name}: the outputs name paths of this machine ({', '.join(named)}); not stored")
    if len(text.encode()) > MAX_STORED_BYTES:
        raise SystemExit(f"{name}: {len(text.encode()) / 1e3:.0f} kB with outputs, over {MAX_STORED_BYTES / 1e3:.0f} "
                         f"kB; not stored")
    path.write_text(text)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("notebooks", nargs="*", default=list(STORED),
                   help=f"notebook file names in notebooks/: {', '.join(STORED)} (default: all)")
    args = p.parse_args(argv)
    unknown = [name for name in args.notebooks if name not in STORED]
    if unknown:
        p.error(f"unknown notebook {unknown[0]!r}: choose from {', '.join(STORED)}")
    for name in args.notebooks:
        path = store(name)
        print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
