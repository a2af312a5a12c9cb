"""The test session's shared builds (tests/conftest.py): built once however often asked; a failed build is not
taken for a finished one."""

import pytest

from tests.conftest import built_once, pytest_collection_modifyitems


def test_a_build_runs_once_and_a_failed_one_is_redone_from_an_empty_folder(tmp_path_factory):
    calls = []

    def build(folder):
        calls.append(sorted(path.name for path in folder.iterdir()))
        (folder / "made").write_text("x")

    first = built_once(tmp_path_factory, "once-check", build)
    assert built_once(tmp_path_factory, "once-check", build) == first and calls == [[]]
    assert (first / "made").read_text() == "x"

    def failing(folder):
        (folder / "half").write_text("x")
        raise RuntimeError("build failed")

    with pytest.raises(RuntimeError):
        built_once(tmp_path_factory, "failing-check", failing)
    again = built_once(tmp_path_factory, "failing-check", build)
    assert calls == [[], []] and not (again / "half").exists()  # the half-made folder was cleared first


class FakeItem:
    def __init__(self, nodeid: str, slow: bool = False):
        self.nodeid, self.slow = nodeid, slow

    def get_closest_marker(self, name: str):
        return name if name == "slow" and self.slow else None


def test_modules_with_a_slow_test_are_collected_first_in_their_order():
    items = [FakeItem("tests/a.py::one"), FakeItem("tests/b.py::fast"), FakeItem("tests/b.py::slow", slow=True),
             FakeItem("tests/c.py::one"), FakeItem("tests/d.py::slow", slow=True), FakeItem("tests/d.py::fast")]
    pytest_collection_modifyitems(items)
    assert [item.nodeid for item in items] == ["tests/b.py::fast", "tests/b.py::slow", "tests/d.py::slow",
                                               "tests/d.py::fast", "tests/a.py::one", "tests/c.py::one"]
