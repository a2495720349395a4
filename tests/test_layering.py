"""The package's shape: no import cycles, no private name imported across modules, the README's API runs."""

from __future__ import annotations

import ast
from pathlib import Path

import grimp

SRC = Path(__file__).resolve().parents[1] / "src" / "hsiclip"


def test_no_import_cycles():
    graph = grimp.build_graph("hsiclip")
    cycles = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            if graph.chain_exists(imported=module, importer=imported):
                cycles.append(f"{module} -> {imported} -> ... -> {module}")
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_private_name_is_imported_across_modules():
    offences = []
    for path in sorted(SRC.rglob("*.py")):
        package = _module_name(path).rsplit(".", 0 if path.name == "__init__.py" else 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom):
                continue
            source = node.module or ""
            if node.level:  # relative: resolve it against this module's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            if source.startswith("hsiclip"):
                offences += [f"{path.relative_to(SRC)}: {a.name} from {source}" for a in node.names
                             if a.name.startswith("_") and a.name != "__version__"]
    assert not offences, "\n".join(offences)
