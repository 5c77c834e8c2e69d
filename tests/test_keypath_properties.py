"""Property tests of `sim.keypath` (hypothesis, from the `test` extra): any path found in a
random tree of dicts and lists reads back, writes in place, and a failed write changes nothing."""

import copy

import pytest

pytest.importorskip(
    "hypothesis",
    reason="hypothesis is not installed (it comes with the test extra: pip install -e '.[test]'): these "
    "property tests of key paths are skipped; the example-based ones in test_keypath.py still run",
)

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from sim import keypath  # noqa: E402
from sim.keypath import KeyPathError  # noqa: E402

KEYS = st.text(alphabet="abcxyz_", min_size=1, max_size=4)
LEAVES = st.none() | st.booleans() | st.integers() | st.text(max_size=3)
TREES = st.recursive(
    LEAVES, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3), max_leaves=12
)


def _paths(node, prefix=()):
    """Every key path in a tree (as tuples of strings), the empty path excluded."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        path = (*prefix, str(key))
        yield path
        yield from _paths(child, path)


@given(TREES, st.data())
def test_every_path_in_a_tree_exists_and_set_then_get_round_trips(tree, data):
    paths = list(_paths(tree))
    for path in paths:
        assert keypath.exists(tree, path)
        assert keypath.exists(tree, keypath.join(path))
    if paths:
        path = data.draw(st.sampled_from(paths))
        value = data.draw(LEAVES)
        changed = copy.deepcopy(tree)
        resolved = keypath.set(changed, keypath.join(path), value)
        assert keypath.join(resolved) == keypath.join(path)
        assert keypath.get(changed, path) == value
        # Everything not under the changed path is as it was.
        for other in paths:
            if other[: len(path)] != path and path[: len(other)] != other:
                assert keypath.get(changed, other) == keypath.get(tree, other)


@given(TREES, st.lists(KEYS | st.integers(0, 4).map(str), min_size=1, max_size=4))
def test_exists_agrees_with_get_and_set_fails_cleanly(tree, path):
    try:
        keypath.get(tree, path)
        found = True
    except KeyPathError:
        found = False
    assert keypath.exists(tree, path) == found
    before = copy.deepcopy(tree)
    try:
        keypath.set(tree, path, "new", create=True)
    except KeyPathError:
        assert tree == before
    else:
        assert keypath.get(tree, path) == "new"
