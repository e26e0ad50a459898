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
import typing
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
        name: {
            target
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for target in _imported(node)
            if target != name
        }
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
        for function in ast.walk(tree)
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
        for node in ast.walk(function)
        if isinstance(node, ast.Import | ast.ImportFrom) and _imported(node)
    ]
    assert inner == []


def test_modules_and_functions_stay_small():
    long_modules = [
        f"{name} ({lines})"
        for name, path in MODULES.items()
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
        f"{name} ({lines})"
        for name, tree in TREES.items()
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
    found += [
        match.group()
        for match in RELATIVE_PATH.finditer(text)
        if not (path.parent / match.group()).resolve().is_relative_to(ROOT)
    ]
    if path.suffix == ".py":
        depth = len(path.relative_to(ROOT).parts)  # levels from the file up to the root
        found += [match.group() for match in ABOVE_ROOT.finditer(text)]
        found += [
            match.group()
            for match in FROM_THIS_FILE.finditer(text)
            if (match.group(1).count(".parent") if match.group(1) else int(match.group(2)) + 1) > depth
        ]
    return found


def test_the_repository_stands_alone():
    """A clone on its own runs every test and its docs point only at itself."""
    outside = {
        str(path.relative_to(ROOT)): found
        for path, text in _tracked_texts().items()
        if (found := _reaches_outside(path, text))
    }
    assert outside == {}


# One word, one idea (issue 24.3): "routes" are HTTP route tables; choosing a carrier per number is
# "routing". A number's keyed hash is its ``phone_hash`` everywhere, as the store has always called
# it. A class is not named like a ``typing`` name, which it would read as.
HASH_ALIASES = re.compile(r"(?:phone|number)_keys?")


def _identifiers(tree: ast.AST) -> set[str]:
    """Every name a module binds, reads, passes as an argument or defines."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.arg | ast.keyword) and node.arg:
            names.add(node.arg)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.alias):
            names.add(node.asname or node.name.rsplit(".", 1)[-1])
    return names


def _imports_aiohttp(tree: ast.AST) -> bool:
    return any(
        (node.module or "").split(".")[0] == "aiohttp"
        if isinstance(node, ast.ImportFrom)
        else any(alias.name.split(".")[0] == "aiohttp" for alias in node.names)
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
    )


def test_only_http_route_tables_are_named_routes():
    not_http = [
        name
        for name, tree in TREES.items()
        if "routes" in name.rsplit(".", 1)[-1] and not _imports_aiohttp(tree)
    ]
    assert not_http == []


def test_a_number_s_keyed_hash_has_one_name():
    aliases = {
        name: sorted(found)
        for name, tree in TREES.items()
        if (found := {n for n in _identifiers(tree) if HASH_ALIASES.fullmatch(n)})
    }
    windows = next(
        node
        for node in ast.walk(TREES["gateway.sending.windows"])
        if isinstance(node, ast.ClassDef) and node.name == "PhoneWindows"
    )
    methods = {node.name for node in windows.body if isinstance(node, ast.FunctionDef)}
    assert (aliases, methods & {"key", "keys"}) == ({}, set())


def test_no_class_is_named_like_a_typing_name():
    typing_names = set(typing.__all__)
    shadows = [
        f"{name}.{node.name}"
        for name, tree in TREES.items()
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef) and node.name in typing_names
    ]
    assert shadows == []


# Concerns in their own folders (issue 24.4): running the process, accounts, the Redis client.
PROCESS_MODULES = ("cli", "greeting", "listening", "pidfile", "reload", "server", "tls")


def test_the_process_accounts_and_redis_have_their_own_folders():
    top_level = {
        name.split(".")[1] for name in MODULES if name.startswith("gateway.") and name.count(".") == 1
    }
    strays = sorted(
        name
        for name in top_level
        if name.startswith("redis") or "account" in name or name == "credentials" or name in PROCESS_MODULES
    )
    homes = {f"gateway.process.{name}" for name in PROCESS_MODULES} | {"gateway.redis", "gateway.accounts"}
    assert (strays, sorted(homes - MODULES.keys())) == (["accounts", "redis"], [])


# The status view's parts (gateway/status): what the send path may not reach one by one.
STATUS_PARTS = {"CarrierStats", "RouteTally", "RoutingTally", "Timeline"}


def test_the_send_path_feeds_the_status_view_in_one_call():
    """Sending tells the status view what a delivery did in one call (``StatusView.delivered``), so it
    imports none of the view's parts: what ``/status`` keeps is the view's business."""
    reached = sorted(
        f"{name}: {alias.name}"
        for name, tree in TREES.items()
        if name.startswith("gateway.sending")
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if alias.name in STATUS_PARTS
    )
    assert reached == []


# Where an API error's code is given: the argument of each maker that takes one.
CODE_ARGUMENT = {"ApiError": 1, "error_kind": 1, "error_body": 0}
ERRORS_MODULE = "gateway.errors"


def _docstrings(tree: ast.Module) -> set[int]:
    """The ids of the docstring nodes of a module and its classes and functions."""
    owners = [
        tree,
        *(
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        ),
    ]
    return {
        id(first.value)
        for owner in owners
        if owner.body
        if isinstance(first := owner.body[0], ast.Expr) and isinstance(first.value, ast.Constant)
    }


def _public_codes() -> set[str]:
    """The codes ``gateway/errors.py`` declares: each a constant named as it is spelt."""
    return {
        node.value.value
        for node in TREES[ERRORS_MODULE].body
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant)
        and [getattr(target, "id", None) for target in node.targets] == [node.value.value]
    }


def _codes_spelt(tree: ast.Module, codes: set[str]) -> list[str]:
    """Where a module spells a code: as a maker's code argument, or inside any string but a docstring."""
    word = re.compile(r"\b(?:" + "|".join(sorted(codes)) + r")\b") if codes else None
    docstrings = _docstrings(tree)
    spelt = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            place = CODE_ARGUMENT.get(getattr(node.func, "id", ""))
            given = node.args[place] if place is not None and place < len(node.args) else None
            if isinstance(given, ast.Constant):
                spelt.append(f"{node.lineno} {given.value!r}")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and word
            and word.search(node.value)
        ):
            spelt.append(f"{node.lineno} {node.value!r}")
    return spelt


def test_public_error_codes_are_written_in_errors_py_only():
    """A code of the public API (docs/api.md, "Status and error codes") never changes once
    published: it is spelt once, in ``gateway/errors.py``, and used by name everywhere else."""
    codes = _public_codes()
    spelt = {
        name: sorted(set(found))
        for name, tree in TREES.items()
        if name.startswith("gateway.") and name != ERRORS_MODULE and (found := _codes_spelt(tree, codes))
    }
    assert spelt == {}
    assert codes, "gateway/errors.py declares no code"


def test_idempotency_keys_are_claimed_by_one_loop():
    """Every route that takes an Idempotency-Key (the sends, the admin top-up) claims it with the one
    claim loop, ``gateway.api.idempotency.claim_key``: outside the store, nothing else calls the
    store's ``claim_idempotency``."""
    callers = sorted(
        name
        for name, tree in TREES.items()
        if not name.startswith("gateway.store")
        and any(
            isinstance(node, ast.Attribute) and node.attr == "claim_idempotency" for node in ast.walk(tree)
        )
    )
    assert callers == ["gateway.api.idempotency"]


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


# -- the config is declared once (docs/configuration.md, "One declaration per key") --------------

SETTINGS_CLASS = re.compile(r"\w+(?:Config|Options)|AccountSeed|AdminToken")
STRUCT_BASES = {"Struct", "msgspec.Struct", "Settings"}


def _settings_classes() -> dict[str, ast.ClassDef]:
    return {
        f"{name}.{node.name}": node
        for name, tree in TREES.items()
        if name.startswith(("gateway.config", "gateway.carriers", "plugins"))
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef) and SETTINGS_CLASS.fullmatch(node.name)
    }


def _declared_keys(classes: dict[str, ast.ClassDef]) -> set[str]:
    """Every field of a settings class, by attribute name and by YAML key (``field(name=...)``)."""
    keys = set()
    for node in classes.values():
        for statement in node.body:
            if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
                keys.add(statement.target.id)
                keys.update(
                    keyword.value.value
                    for call in ast.walk(statement)
                    if isinstance(call, ast.Call)
                    for keyword in call.keywords
                    if keyword.arg == "name" and isinstance(keyword.value, ast.Constant)
                )
    return keys


def test_settings_are_msgspec_structs_with_no_dataclass_twin():
    classes = _settings_classes()
    loose = [
        name
        for name, node in classes.items()
        if not {ast.unparse(base) for base in node.bases} & STRUCT_BASES
        or any("dataclass" in ast.unparse(decorator) for decorator in node.decorator_list)
    ]
    assert len(classes) >= 15 and loose == []


def test_no_code_restates_a_key_with_a_default_or_a_bound():
    """A call naming a config key beside a number (``reader.ranged("port", int, 0, 65535, 8080)``)
    is a second declaration of that key's bounds or default: they belong to its Struct field."""
    classes = _settings_classes()
    keys = _declared_keys(classes)
    inside = {id(node) for node in classes.values() for node in ast.walk(node)}
    restated = [
        f"{name}:{node.lineno} {ast.unparse(node)[:60]}"
        for name, tree in TREES.items()
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and id(node) not in inside
        and any(isinstance(arg, ast.Constant) and arg.value in keys for arg in node.args)
        and any(isinstance(arg, ast.Constant) and type(arg.value) in (int, float) for arg in node.args)
    ]
    assert restated == []
