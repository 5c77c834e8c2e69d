"""The one dotted key-path helper (`sim.keypath`): get, set and exists over dicts and lists."""

import copy

import pytest

from sim import keypath
from sim.keypath import KeyPathError

DATA = {"a": {"b": [{"c": 1}, {"c": 2}], "t": "text"}, "n": None}


def test_get_reads_through_mappings_and_lists():
    assert keypath.get(DATA, "a.b.1.c") == 2
    assert keypath.get(DATA, ("a", "b", 0)) == {"c": 1}
    assert keypath.get(DATA, "n") is None


@pytest.mark.parametrize(
    "path, message",
    [
        ("a.x", "no key 'x' in a"),
        ("a.b.x", "a.b is a list; use an item number instead of 'x'"),
        ("a.b.5", "index 5 is out of range (a.b has 2 items)"),
        ("a.b.-1", "use an item number instead of '-1'"),
        ("a.b.²", "use an item number instead of '²'"),
        ("a.t.x", "inside a.t: it is text ('text'), not a mapping or list"),
        ("a..b", "empty key in path 'a..b'"),
        ("", "empty key"),
    ],
)
def test_get_says_why_a_path_leads_nowhere(path, message):
    with pytest.raises(KeyPathError, match=message.replace("(", r"\(").replace(")", r"\)")):
        keypath.get(DATA, path)
    assert not keypath.exists(DATA, path)


def test_set_replaces_adds_and_returns_the_resolved_path():
    data = copy.deepcopy(DATA)
    assert keypath.set(data, "a.b.1.c", 5) == ("a", "b", 1, "c")
    assert keypath.set(data, "a.new", [1]) == ("a", "new")
    assert data["a"]["b"][1]["c"] == 5 and data["a"]["new"] == [1]


def test_set_creates_mappings_only_when_asked():
    data = copy.deepcopy(DATA)
    with pytest.raises(KeyPathError, match="no key 'x'"):
        keypath.set(data, "x.y.z", 1)
    assert data == DATA
    assert keypath.set(data, "x.y.0", 1, create=True) == ("x", "y", "0")
    assert data["x"] == {"y": {"0": 1}}


def test_set_never_grows_a_list_and_leaves_data_alone_on_error():
    data = copy.deepcopy(DATA)
    for path in ("a.b.2", "a.b.2.c", "a.t.x", "a.b.x"):
        with pytest.raises(KeyPathError):
            keypath.set(data, path, 0, create=True)
    assert data == DATA


def test_join_and_parts_are_inverse():
    assert keypath.join(("a", 0, "b")) == "a.0.b"
    assert keypath.parts("a.0.b") == ("a", "0", "b")
