"""What several test files share (``from _helpers import ...``: pytest puts tests/ on sys.path)."""
import functools
import importlib.util
from pathlib import Path

import jax
import numpy as np

DOCS = Path(__file__).resolve().parent.parent / "docs"


def assert_tree_close(a, b, rtol=1e-4, atol=1e-5):
    """Every leaf of ``a`` close to the same leaf of ``b``; the two trees have the same structure."""
    leaves_a, tree_a = jax.tree.flatten(a)
    leaves_b, tree_b = jax.tree.flatten(b)
    assert tree_a == tree_b, (tree_a, tree_b)
    for x, y in zip(leaves_a, leaves_b, strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


@functools.lru_cache(maxsize=None)
def docs_hooks():
    """docs/hooks.py (the site's build hooks), imported once."""
    spec = importlib.util.spec_from_file_location("purerl_docs_hooks", DOCS / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def digest(path: Path) -> dict[str, str]:
    """Every entry under directory ``path``: a file's SHA-256, ``"dir"`` for a directory (to check that a
    refused or failed write left a directory byte-identical, nothing added or removed)."""
    import hashlib

    path = Path(path)
    return {str(p.relative_to(path)): "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*"))}
