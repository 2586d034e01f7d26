"""The package's imports, read from the code: the levels of docs/architecture.md, checked
and drawn.

Each part of pconv (a top-level module, or a subpackage taken whole) has a level; a part
may import only parts on its own level or below. :func:`upward_imports` lists the
imports that break this (tests/test_architecture.py requires none), and :func:`mermaid`
draws every import between parts as a Mermaid flowchart, which GitHub renders.

    python docs/architecture.py          # rewrite the diagram in docs/architecture.md
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "pconv"
DOC = ROOT / "docs" / "architecture.md"

#: The level of each part, as in the table of docs/architecture.md (0 = the leaves).
LEVELS = {
    "cli": 6, "__main__": 6, "bench": 6,
    "serve": 5, "train": 5,
    "eval": 4, "losses": 4, "data": 4,
    "inference": 3,
    "weights": 2, "checkpoints": 2, "export": 2, "masks": 2, "environment": 2,
    "models": 1, "reference": 1, "superres": 1, "images": 1,
    "layers": 0, "functional": 0, "devices": 0, "files": 0, "heap": 0, "version": 0,
}  # fmt: skip

_BEGIN, _END = "<!-- imports: begin (python docs/architecture.py) -->", "<!-- imports: end -->"


def part_of(module: str) -> str | None:
    """The part of a dotted module name inside pconv (``pconv.inference.windows`` →
    ``inference``); None for ``pconv`` itself and for modules outside it."""
    names = module.split(".")
    return names[1] if names[0] == "pconv" and len(names) > 1 else None


def _module_name(path: Path) -> str:
    names = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(names[:-1] if names[-1] == "__init__" else names)


def _imported_modules(path: Path) -> set[str]:
    """Every pconv module ``path`` imports, at its top or inside functions."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, one level up per extra dot
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            modules.add(base)
            modules.update(f"{base}.{alias.name}" for alias in node.names)
    return {module for module in modules if module == "pconv" or module.startswith("pconv.")}


def part_imports() -> dict[str, set[str]]:
    """part → the other parts it imports (pconv/__init__.py, the re-exports, left out)."""
    files = {path: part_of(_module_name(path)) for path in sorted(PACKAGE.rglob("*.py"))}
    imports: dict[str, set[str]] = {part: set() for part in files.values() if part is not None}
    for path, part in files.items():
        if part is not None:
            targets = {part_of(module) for module in _imported_modules(path)}
            imports[part] |= {target for target in targets if target in imports and target != part}
    return imports


def upward_imports() -> list[str]:
    """The imports from a part to a part on a higher level, and parts without a level."""
    problems = []
    for part, targets in sorted(part_imports().items()):
        if part not in LEVELS:
            problems.append(f"pconv/{part} has no level in docs/architecture.py")
            continue
        problems += [
            f"{part} (level {LEVELS[part]}) imports {target} (level {LEVELS[target]})"
            for target in sorted(targets)
            if target in LEVELS and LEVELS[target] > LEVELS[part]
        ]
    return problems


def mermaid() -> str:
    """A Mermaid flowchart of the imports: one row per level, arrows from importer to imported."""
    imports = part_imports()
    lines = ["```mermaid", "flowchart TB"]
    for level in sorted(set(LEVELS.values()), reverse=True):
        parts = sorted(part for part in imports if LEVELS.get(part) == level)
        lines.append(f'    subgraph L{level}["level {level}"]')
        lines += [f'        {_node(part)}["{part}"]' for part in parts]
        lines.append("    end")
    for part, targets in sorted(imports.items()):
        lines += [f"    {_node(part)} --> {_node(target)}" for target in sorted(targets)]
    lines.append("```")
    return "\n".join(lines)


def _node(part: str) -> str:
    return "m_" + part.strip("_")


def document_with_diagram(text: str) -> str:
    """``text`` (docs/architecture.md) with the diagram between its markers redrawn."""
    pattern = re.compile(re.escape(_BEGIN) + r".*?" + re.escape(_END), re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"docs/architecture.md lacks the markers {_BEGIN} … {_END}")
    return pattern.sub(lambda _: f"{_BEGIN}\n{mermaid()}\n{_END}", text)


if __name__ == "__main__":
    DOC.write_text(document_with_diagram(DOC.read_text()))
    print(f"wrote the import diagram into {DOC.relative_to(ROOT)}")
    for problem in upward_imports():
        print("upward import:", problem)
