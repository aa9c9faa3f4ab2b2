"""optcompat/__init__.pyi (the public API's types; the lint env type-checks a user's calls against
it with mypy) says what the code does: the same parameters, in the same order, for AdamW, SGDW
and the package's functions, and every public name declared."""
import ast
import inspect
import os

import optcompat

STUB = os.path.join(os.path.dirname(optcompat.__file__), "__init__.pyi")


def declared():
    """{name: [parameter names]} of the stub's classes' __init__ (without self) and functions."""
    tree = ast.parse(open(STUB).read())
    out = {}

    def params(fn):
        a = fn.args
        names = [p.arg for p in getattr(a, "posonlyargs", []) + a.args + a.kwonlyargs]  # 3.7: none
        names += ["**" + a.kwarg.arg] if a.kwarg else []
        return [n for n in names if n not in ("self", "cls")]

    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            out[node.name] = params(node)
        elif isinstance(node, ast.ClassDef):
            init = [n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"]
            out[node.name] = params(init[0]) if init else None
        elif isinstance(node, ast.AnnAssign):
            out[node.target.id] = None
    return out


def actual(obj):
    sig = inspect.signature(obj.__init__ if inspect.isclass(obj) else obj)
    return [("**" + p.name) if p.kind is p.VAR_KEYWORD else p.name for p in sig.parameters.values()
            if p.name not in ("self", "cls")]


def test_stub_declares_every_public_name():
    assert set(optcompat.__all__) <= set(declared()), set(optcompat.__all__) - set(declared())


def test_stub_signatures_are_the_codes(host):
    stub = declared()
    module = host.module
    for name in ("AdamW", "SGDW"):
        assert stub[name] == actual(getattr(module, name)), name
    for name in ("family_module", "decoupled", "normalized_weight_decay", "weight_decays_from", "describe",
                 "default_family", "available_families"):
        assert stub[name] == actual(getattr(optcompat, name)), name
