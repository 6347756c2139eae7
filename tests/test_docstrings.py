"""Every public function, method, property and class of the package says what it computes.

The walk reads each module's source (``ast``): the module-level functions and classes, and the
methods and properties of public classes. A name that starts with ``_`` is private (dunders
included), and so is everything inside a private class or inside a function. A method without a
docstring of its own counts as documented when ``inspect.getdoc`` finds one on the same name in a
base class (a ``Callback`` hook, a ``Loss``'s ``value``): the base states the contract once.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from collections.abc import Iterator
from pathlib import Path

import pytest

import nnmath

PACKAGE = Path(nnmath.__file__).resolve().parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = sorted(module_name(path) for path in PACKAGE.rglob("*.py"))


def is_public(name: str) -> bool:
    return not name.startswith("_")


def public_definitions(tree: ast.Module) -> Iterator[tuple[str, ast.AST, str | None]]:
    """(qualified name, node, enclosing class name) of each public def and class, in order."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and is_public(node.name):
            yield node.name, node, None
        elif isinstance(node, ast.ClassDef) and is_public(node.name):
            yield node.name, node, None
            for member in node.body:
                if isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef)) and is_public(
                    member.name
                ):
                    yield f"{node.name}.{member.name}", member, node.name


def is_property_setter(node: ast.AST) -> bool:
    """``@x.setter`` / ``@x.deleter``: the property's getter carries its docstring."""
    decorators = getattr(node, "decorator_list", [])
    return any(isinstance(d, ast.Attribute) and d.attr in ("setter", "deleter") for d in decorators)


def inherited_doc(cls: type, member: str) -> str | None:
    """The docstring of ``member`` on the nearest base class of ``cls`` that defines it, as
    ``inspect.getdoc`` finds it."""
    for base in cls.__mro__[1:]:
        attribute = vars(base).get(member)
        if attribute is not None:  # a staticmethod or classmethod: the function it wraps
            return inspect.getdoc(getattr(attribute, "__func__", attribute))
    return None


def undocumented(module: str) -> list[str]:
    path = PACKAGE.parent.joinpath(*module.split("."))
    source = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    tree = ast.parse(source.read_text(encoding="utf-8"))
    missing = []
    for qualified, node, owner in public_definitions(tree):
        if ast.get_docstring(node) or is_property_setter(node):
            continue
        owner_class = None if owner is None else getattr(importlib.import_module(module), owner)
        if owner_class is not None and inherited_doc(owner_class, qualified.split(".")[-1]):
            continue
        missing.append(f"{module}.{qualified} (line {node.lineno})")
    return missing


def test_the_walk_finds_the_package_and_its_subpackages() -> None:
    assert {"nnmath", "nnmath.training", "nnmath.cli", "nnmath.derivation.typeset"} <= set(MODULES)
    assert len(MODULES) > 80


@pytest.mark.parametrize("module", MODULES)
def test_every_public_object_has_a_docstring(module: str) -> None:
    missing = undocumented(module)
    assert not missing, f"{len(missing)} public objects without a docstring:\n" + "\n".join(missing)


def test_the_check_sees_a_missing_docstring_and_accepts_an_inherited_one(tmp_path: Path) -> None:
    source = (
        "class Base:\n"
        "    '''A base.'''\n"
        "    def value(self):\n"
        "        '''The value.'''\n"
        "class Child(Base):\n"
        "    '''A child.'''\n"
        "    def value(self):\n"
        "        return 1\n"
        "    def grad(self):\n"
        "        return 2\n"
        "    @property\n"
        "    def size(self):\n"
        "        return 3\n"
        "def helper():\n"
        "    return 4\n"
        "def _private():\n"
        "    return 5\n"
    )
    names = [
        q for q, node, _ in public_definitions(ast.parse(source)) if not ast.get_docstring(node)
    ]
    assert names == ["Child.value", "Child.grad", "Child.size", "helper"]
    namespace: dict[str, object] = {}
    exec(compile(source, "<test>", "exec"), namespace)
    child = namespace["Child"]
    assert inherited_doc(child, "value") == "The value."
    assert inherited_doc(child, "grad") is None and inherited_doc(child, "size") is None
