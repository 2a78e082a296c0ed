"""resdsl.generated: importing generated code from memory or from a file."""

from __future__ import annotations

import inspect
import sys
import traceback

import pytest

from resdsl.generated import import_file, import_source, module_name

CODE = """\
from dataclasses import dataclass


@dataclass
class Box:
    size: int


def double(x: int) -> int:
    return 2 * x
"""


def test_import_source_registers_the_module_and_keeps_its_lines():
    module = import_source(CODE, "_resdsl_test_box", "<resdsl test box>")
    try:
        assert sys.modules["_resdsl_test_box"] is module
        assert module.Box(3).size == 3  # dataclasses found the module in sys.modules
        assert module.double(4) == 8
        assert "return 2 * x" in inspect.getsource(module.double)
    finally:
        sys.modules.pop("_resdsl_test_box", None)


def test_a_failing_import_leaves_nothing_registered():
    with pytest.raises(ZeroDivisionError) as error:
        import_source("x = 1\ny = 1 / 0\n", "_resdsl_test_broken", "<resdsl test broken>")
    assert "_resdsl_test_broken" not in sys.modules
    assert "y = 1 / 0" in "".join(traceback.format_exception(error.value))


def test_import_file_names_each_path_apart_and_rereads_a_rewritten_file(tmp_path):
    first, second = tmp_path / "a" / "model.py", tmp_path / "b" / "model.py"
    for path in (first, second):
        path.parent.mkdir()
        path.write_text(CODE)
    one, two = import_file(first), import_file(second)
    try:
        assert one.__name__ != two.__name__
        assert one.__name__ == module_name(first) and one.__name__.isidentifier()
        assert one.__file__ == str(first)
        assert "class Box" in inspect.getsource(one.Box)
        first.write_text(CODE.replace("2 * x", "3 * x"))  # same size, same second
        again = import_file(first)
        assert again.double(1) == 3
        assert sys.modules[again.__name__] is again
    finally:
        for module in (one, two):
            sys.modules.pop(module.__name__, None)


def test_import_file_of_broken_code_leaves_nothing_registered(tmp_path):
    path = tmp_path / "broken-model.py"
    path.write_text("import no_such_module_anywhere\n")
    with pytest.raises(ModuleNotFoundError):
        import_file(path)
    assert module_name(path) not in sys.modules
