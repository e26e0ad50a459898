"""The shape of the house (docs/design.md): what a newcomer can rely on when reading the code.

No import circle between the gateway's and the plugins' modules, and no import tucked into a
function to dodge one; no module over 300 lines and no function over 60, so each fits on a screen
or two; no module docstring over 10 lines, it says why and points to docs/ for the rest. Read
from the source with ``ast``, nothing is imported.
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

from tests.conftest import ROOT

MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60
MAX_DOCSTRING_LINES = 10
PACKAGES = ("gateway", "plugins")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()
TREES = {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in MODULES.items()}


def _imported(node: ast.Import | ast.ImportFrom) -> set[str]:
    """The project modules an import statement loads."""
    if isinstance(node, ast.Import):
        names = {alias.name for alias in node.names}
    else:
        base = node.module or ""
        names = {base} | {f"{base}.{alias.name}" for alias in node.names}
    return {name for name in names if name in MODULES}


def _graph() -> dict[str, set[str]]:
    return {
        name: {target for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)
               for target in _imported(node) if target != name}
        for name, tree in TREES.items()
    }


def _cycle_from(start: str, graph: dict[str, set[str]]) -> list[str] | None:
    """One import path that leads from ``start`` back to it, if there is one."""
    stack, seen = [(start, [start])], set()
    while stack:
        node, path = stack.pop()
        for target in graph[node]:
            if target == start:
                return [*path, start]
            if target not in seen:
                seen.add(target)
                stack.append((target, [*path, target]))
    return None


def test_no_import_circle():
    graph = _graph()
    circles = [cycle for name in graph if (cycle := _cycle_from(name, graph))]
    assert circles == [], " → ".join(circles[0]) if circles else ""


def test_project_imports_stand_at_the_top_of_their_module():
    inner = [
        f"{name}:{node.lineno}"
        for name, tree in TREES.items()
        for function in ast.walk(tree) if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
        for node in ast.walk(function)
        if isinstance(node, ast.Import | ast.ImportFrom) and _imported(node)
    ]
    assert inner == []


def test_modules_and_functions_stay_small():
    long_modules = [
        f"{name} ({lines})" for name, path in MODULES.items()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    ]
    long_functions = [
        f"{name}.{node.name} ({node.end_lineno - node.lineno + 1})"
        for name, tree in TREES.items()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert (long_modules, long_functions) == ([], [])


def test_module_docstrings_say_why_in_a_few_lines():
    long_docstrings = [
        f"{name} ({lines})" for name, tree in TREES.items()
        if (lines := len((ast.get_docstring(tree) or "").splitlines())) > MAX_DOCSTRING_LINES
    ]
    assert long_docstrings == []


# What a checkout may not lean on: the folder handed out beside it (its spec and seed pages), a
# relative path that climbs out of the repository, a Python path built above its root.
OUTSIDE_FOLDERS = re.compile(r"(?:\.\./)+shared\b|\bshared/(?:spec|api|research|hooks)\b")
RELATIVE_PATH = re.compile(r"(?:\.\./)+[\w./-]*")
ABOVE_ROOT = re.compile(r"\bROOT\s*(?:\.parent\b|/\s*[\"']\.\.)")
FROM_THIS_FILE = re.compile(r"Path\(__file__\)(?:\.resolve\(\))?(?:((?:\.parent\b)+)|\.parents\[(\d+)\])")


def _tracked_texts() -> dict[Path, str]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    texts = {}
    for name in listed.stdout.decode().split("\0"):
        path = ROOT / name
        if name and path.is_file():
            try:
                texts[path] = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue  # an image: it points nowhere
    return texts


def _reaches_outside(path: Path, text: str) -> list[str]:
    """Where one file names or builds a path that is not inside the repository."""
    found = [match.group() for match in OUTSIDE_FOLDERS.finditer(text)]
    found += [match.group() for match in RELATIVE_PATH.finditer(text)
              if not (path.parent / match.group()).resolve().is_relative_to(ROOT)]
    if path.suffix == ".py":
        depth = len(path.relative_to(ROOT).parts)  # levels from the file up to the root
        found += [match.group() for match in ABOVE_ROOT.finditer(text)]
        found += [match.group() for match in FROM_THIS_FILE.finditer(text)
                  if (match.group(1).count(".parent") if match.group(1) else int(match.group(2)) + 1) > depth]
    return found


def test_the_repository_stands_alone():
    """A clone on its own runs every test and its docs point only at itself."""
    outside = {str(path.relative_to(ROOT)): found for path, text in _tracked_texts().items()
               if (found := _reaches_outside(path, text))}
    assert outside == {}


# A `type: ignore` names the error it silences and says why on the same line:
# `# type: ignore[misc]  # aiohttp declares the class attribute Final`.
EXPLAINED_IGNORE = re.compile(r"type:\s*ignore\[[\w-]+(?:,\s*[\w-]+)*\]\s*#\s*\S")


def test_every_type_ignore_names_its_error_and_says_why():
    bare = [
        f"{name}:{number}: {line.strip()}"
        for name, path in MODULES.items()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"type:\s*ignore", line) and not EXPLAINED_IGNORE.search(line)
    ]
    assert bare == []
