"""The type stubs name everything the native module has, with the same members."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import corral
import corral._corral as native

STUBS = Path(corral.__file__).with_name("_corral.pyi")


def test_stubs_cover_the_native_module() -> None:
    tree = ast.parse(STUBS.read_text())
    stub_classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    stub_names = set(stub_classes) | {
        n.name for n in tree.body if isinstance(n, ast.FunctionDef)
    } | {n.target.id for n in tree.body if isinstance(n, ast.AnnAssign)}
    public = {n for n in dir(native) if not n.startswith("_")}
    assert public <= stub_names, sorted(public - stub_names)
    for name, cls in stub_classes.items():
        if not hasattr(native, name):
            continue
        members = {n.name for n in cls.body if isinstance(n, ast.FunctionDef)}
        real = {m for m, _ in inspect.getmembers(getattr(native, name)) if not m.startswith("__")}
        assert real <= members, (name, sorted(real - members))


def test_everything_has_a_docstring() -> None:
    for name in corral.__all__:
        obj = getattr(corral, name)
        if inspect.isclass(obj) or inspect.isfunction(obj) or inspect.isbuiltin(obj):
            assert (obj.__doc__ or "").strip(), name
