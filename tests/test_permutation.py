"""purerl.core.trajectory.permutation (minibatch shuffling without a sort): a permutation for every size, a
function of its key, and uniform over orderings."""
import itertools

import jax
import numpy as np
import pytest

from purerl.core.trajectory import permutation


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 100, 1000, 1024, 4097])
def test_is_a_permutation_of_every_size_and_depends_on_the_key(n):
    keys = jax.random.split(jax.random.key(n), 16)
    perms = np.asarray(jax.vmap(lambda k: permutation(k, n))(keys))
    assert perms.shape == (16, n) and perms.dtype == np.int32
    for p in perms:
        np.testing.assert_array_equal(np.sort(p), np.arange(n))
    if n >= 5:   # 16 draws of n! >= 120 orderings: not all alike, and not the identity
        assert len({tuple(p) for p in perms}) > 8
        assert not all((p == np.arange(n)).all() for p in perms)
    np.testing.assert_array_equal(perms[3], permutation(keys[3], n))        # a function of the key alone


def test_orderings_are_drawn_uniformly():
    # 6,000 keys, n = 3 and n = 4: every ordering about equally often (integer arithmetic: the same counts on
    # every machine; the bounds are 4+ standard deviations of a multinomial count)
    for n, draws in ((3, 6000), (4, 24000)):
        perms = np.asarray(jax.vmap(lambda k: permutation(k, n))(jax.random.split(jax.random.key(7), draws)))
        counts = {o: 0 for o in itertools.permutations(range(n))}
        for p in map(tuple, perms):
            counts[p] += 1
        expected = draws / len(counts)
        sd = np.sqrt(expected * (1 - 1 / len(counts)))
        assert all(abs(c - expected) < 4.5 * sd for c in counts.values()), counts
        # each position takes each value equally often too
        for pos in range(n):
            freq = np.bincount(perms[:, pos], minlength=n) / draws
            np.testing.assert_allclose(freq, 1 / n, atol=0.02)
