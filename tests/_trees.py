"""Tree comparisons the tests share (``from _trees import assert_tree_close``: pytest puts tests/ on sys.path)."""
import jax
import numpy as np


def assert_tree_close(a, b, rtol=1e-4, atol=1e-5):
    """Every leaf of ``a`` close to the same leaf of ``b``; the two trees have the same structure."""
    leaves_a, tree_a = jax.tree.flatten(a)
    leaves_b, tree_b = jax.tree.flatten(b)
    assert tree_a == tree_b, (tree_a, tree_b)
    for x, y in zip(leaves_a, leaves_b, strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)
