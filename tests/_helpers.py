"""What several test files share (``from _helpers import ...``: pytest puts tests/ on sys.path)."""
import functools
import importlib.util
import signal
from pathlib import Path

import jax
import numpy as np

from purerl.run import lifecycle

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


class StopIn(lifecycle.NoStops):
    """Ctrl-C while chunk ``k`` runs (in place of purerl.run.signals.Stops, which a signal would feed)."""

    def __init__(self, k):
        self.k, self.calls, self.received = k, 0, []

    def run(self, fn):
        self.calls += 1
        if self.calls == self.k:
            self.received.append(signal.SIGINT)
        return fn()

    stop = property(lambda self: bool(self.received))


def stop_in(monkeypatch, k):
    """Make the next run that purerl's runner starts see a Ctrl-C while its chunk ``k`` runs (:class:`StopIn`)."""
    monkeypatch.setattr(lifecycle, "Stops", lambda describe, starting: StopIn(k))
