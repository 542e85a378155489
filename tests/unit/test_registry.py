"""Registry: register/get, duplicates rejected, unknown names list the known ones, lazy "module:attr"."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from rewardkit.registry import Registry


def test_register_and_get() -> None:
    reg: Registry[object] = Registry("scorer")

    @reg.register("double")
    def double(x: int) -> int:
        return 2 * x

    assert double(3) == 6  # the decorator returns the function unchanged
    assert reg.get("double") is double
    assert "double" in reg
    assert "triple" not in reg
    assert reg.names() == ["double"]


def test_names_are_sorted_and_iterable() -> None:
    reg: Registry[int] = Registry("thing")
    for name, value in [("b", 2), ("c", 3), ("a", 1)]:
        reg.register(name)(value)
    assert reg.names() == ["a", "b", "c"]
    assert list(reg) == ["a", "b", "c"]


def test_duplicates_are_rejected() -> None:
    reg: Registry[int] = Registry("loss")
    reg.register("bt")(1)
    with pytest.raises(KeyError, match="loss 'bt' is already registered"):
        reg.register("bt")(2)
    with pytest.raises(KeyError, match="loss 'bt' is already registered"):
        reg.register_lazy("bt", "json:dumps")
    assert reg.get("bt") == 1  # the first entry is kept


def test_unknown_name_lists_the_known_ones() -> None:
    reg: Registry[int] = Registry("head")
    with pytest.raises(KeyError, match="unknown head 'linear'; known: none"):
        reg.get("linear")
    reg.register("mlp")(1)
    reg.register_lazy("gaussian", "json:loads")
    with pytest.raises(KeyError) as info:
        reg.get("linear")
    assert info.value.args == ("unknown head 'linear'; known: gaussian, mlp",)


def test_lazy_entry_is_imported_on_first_get_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = "rk_test_lazy_target"
    (tmp_path / f"{module}.py").write_text("LOADS = []\nLOADS.append(1)\n\ndef scorer(x):\n    return x + 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, module, raising=False)

    reg: Registry[object] = Registry("scorer")
    reg.register_lazy("plus_one", f"{module}:scorer")
    assert "plus_one" in reg
    assert reg.names() == ["plus_one"]
    assert module not in sys.modules  # registering imports nothing

    fn = reg.get("plus_one")
    assert module in sys.modules
    assert fn(1) == 2
    assert reg.get("plus_one") is fn
    assert sys.modules[module].LOADS == [1]  # imported once
    monkeypatch.delitem(sys.modules, module)


def test_lazy_entry_must_name_module_and_attribute() -> None:
    reg: Registry[object] = Registry("benchmark")
    message = "lazy benchmark entry 'rb' must look like 'module:attr', got 'json.dumps'"
    with pytest.raises(ValueError, match=re.escape(message)):
        reg.register_lazy("rb", "json.dumps")
    assert "rb" not in reg


def test_lazy_entry_with_missing_attribute_fails_on_get() -> None:
    reg: Registry[object] = Registry("scorer")
    reg.register_lazy("nope", "json:no_such_function")
    with pytest.raises(AttributeError, match="no_such_function"):
        reg.get("nope")
