"""The layers of ARCHITECTURE.md, checked on every import of the package (top level and inside
functions): a module imports only its own package and the layers below it. The few edges that go
up are listed here by file, with the reason, so that a new one is a decision and not an accident."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "resnetlab"

# Bottom to top. A module at the top of the package, or ``checkpoints/atomic.py`` (standard library
# only: the one atomic-write helper, which data/ needs for its cache), sits below everything.
LAYERS = {
    "data": 1,
    "models": 2,
    "checkpoints": 3,
    "evaluation": 4,
    "engine": 5,
    "analysis": 6,
    "detection": 6,
    "inference": 6,
    "cli": 7,
}
LEAVES = {"seeding", "progress", "devices", "export_formats", "_optional", "checkpoints.atomic", "__version__"}
TOP = 8

# (importing file, imported module): why it may go up.
SANCTIONED = {
    # build_model(name, weights=...), the torchvision-style entry point, loads files when called.
    ("models/registry.py", "checkpoints.interop"),
    ("models/registry.py", "checkpoints.pretrained"),
    # HubModel is a model class whose save/load write our files.
    ("models/hub.py", "checkpoints.checkpoint"),
    ("models/hub.py", "checkpoints.loading"),
    ("models/hub.py", "checkpoints.interop"),
}


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every ``resnetlab.X`` module a file imports, as ``X`` (relative imports resolved)."""
    package = path.relative_to(SRC).parent.parts
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if node.module and node.module.startswith("resnetlab"):
                    found.append((node.lineno, node.module.removeprefix("resnetlab").lstrip(".")))
                continue
            base = package[: len(package) - node.level + 1]
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            if node.module is None:  # from . import name: the names may be modules
                found += [(node.lineno, ".".join([*base, a.name])) for a in node.names]
            else:
                found.append((node.lineno, module))
        elif isinstance(node, ast.Import):
            found += [
                (node.lineno, a.name.removeprefix("resnetlab.")) for a in node.names if a.name.startswith("resnetlab.")
            ]
    return found


def _layer(module: str) -> int:
    """The layer of a module named relative to the package (``engine.train``, ``seeding``)."""
    if module in LEAVES or module.split(".")[0] in LEAVES:
        return 0
    return LAYERS.get(module.split(".")[0], TOP)


def _own_layer(relative: str) -> int:
    """The layer of a file (``engine/train.py``); ``__main__.py`` is an entry point, above all."""
    module = relative.removesuffix(".py").replace("/", ".").removesuffix(".__init__")
    return TOP if module == "__main__" else _layer(module)


def test_every_import_goes_down_or_is_sanctioned() -> None:
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        own_package = relative.split("/")[0] if "/" in relative else None
        for line, module in _imports(path):
            if module.split(".")[0] == own_package or _layer(module) < _own_layer(relative):
                continue
            if (relative, ".".join(module.split(".")[:2])) not in SANCTIONED:
                offenders.append(f"{relative}:{line} imports {module}")
    assert offenders == []


def test_the_sanctioned_edges_still_exist() -> None:
    """An exception that the code no longer needs is removed from the list (and from the docs)."""
    used = set()
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        used |= {(relative, ".".join(m.split(".")[:2])) for _, m in _imports(path)}
    assert used >= SANCTIONED


def test_the_checker_sees_an_upward_import(tmp_path, monkeypatch) -> None:
    """The check can fail: a models/ module importing engine/ is caught."""
    fake = tmp_path / "resnetlab"
    (fake / "models").mkdir(parents=True)
    (fake / "models" / "bad.py").write_text("def f():\n    from ..engine.train import train\n")
    monkeypatch.setattr(f"{__name__}.SRC", fake)
    try:
        test_every_import_goes_down_or_is_sanctioned()
    except AssertionError as error:
        assert "models/bad.py:2 imports engine.train" in str(error)
    else:
        raise AssertionError("an upward import went unnoticed")


def test_the_library_never_prints() -> None:
    """Outside ``cli/`` (and ``__main__.py``, the CLI's entry point) nothing writes to stdout: no
    ``print`` (called or passed as a ``log=`` default) and no ``sys.stdout``. Library lines go to the ``resnetlab`` logger (silent unless
    logging is configured); the CLI decides what reaches the terminal."""
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        if relative.startswith("cli/") or relative == "__main__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Name) and node.id == "print":
                offenders.append(f"{relative}:{node.lineno} print")
            elif isinstance(node, ast.Attribute) and node.attr == "stdout" and getattr(node.value, "id", "") == "sys":
                offenders.append(f"{relative}:{node.lineno} sys.stdout")
    assert offenders == []
