"""The docs read as docs: every page reachable, every pointer into them lands, pages by topic.

A link, an anchor or a "section" named after a page (``docs/api.md, "Admin API"``) must land on a
page and a heading that exist, from the docs themselves and from the code's docstrings and comments;
headings name topics, not modules (a module moves, its topic stays); ``docs/design.md`` stays the
overview that leads to every other page; the README's index names every page. Read as text only.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from tests.conftest import ROOT

DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
MARKDOWN = [ROOT / "README.md", ROOT / "SECURITY.md", ROOT / "CHANGELOG.md", *PAGES]
CODE = sorted(path for folder in ("gateway", "plugins", "bench") for path in (ROOT / folder).rglob("*.py"))
DESIGN_MAX_LINES = 120

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
NAMED_PAGE = re.compile(r"\b(docs/[\w-]+\.md)\b")
# a page, then a quoted section of it: docs/api.md, "Admin API" / [x](deployment.md), "Redis persistence"
NAMED_SECTION = re.compile(r"((?:docs/)?[\w-]+\.md)[`)\]]*,\s*\"([^\"]+)\"")
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
MODULE_PATH = re.compile(r"\b(?:gateway|plugins)/[\w/]+\.py\b")


def _headings(path: Path) -> list[str]:
    """The headings of a Markdown page, outside its code blocks, as written (backticks dropped)."""
    found, fenced = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced and (match := HEADING.match(line)):
            found.append(match.group(2).replace("`", ""))
    return found


def _anchors(path: Path) -> set[str]:
    """GitHub's anchors for a page's headings: lower case, punctuation dropped, blanks as hyphens."""
    anchors: set[str] = set()
    for heading in _headings(path):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        anchor, n = slug, 0
        while anchor in anchors:
            n += 1
            anchor = f"{slug}-{n}"
        anchors.add(anchor)
    return anchors


def _page(name: str, seen_from: Path) -> Path:
    """The file a reference names: ``docs/…`` from the root, a bare name beside its referrer or at root."""
    if name.startswith("docs/"):
        return ROOT / name
    beside = seen_from.parent / name
    return beside if beside.exists() else ROOT / name


def _broken_pointers(path: Path) -> list[str]:
    """Pages, sections, links and anchors one file names that do not exist."""
    text = path.read_text(encoding="utf-8")
    flat = re.sub(r"\s+", " ", text.replace("``", "").replace("#: ", ""))  # a pointer may wrap
    broken = [name for name in NAMED_PAGE.findall(text) if not (ROOT / name).is_file()]
    for name, section in NAMED_SECTION.findall(flat):
        page = _page(name, path)
        if not page.is_file() or not any(h.lower().startswith(section.lower()) for h in _headings(page)):
            broken.append(f'{name}, "{section}"')
    if path.suffix == ".md":
        for target in LINK.findall(text):
            if re.match(r"[a-z]+:", target):
                continue  # a web address
            file, _, anchor = target.partition("#")
            page = (path.parent / file) if file else path
            if not page.exists() or (anchor and anchor not in _anchors(page)):
                broken.append(target)
    return broken


def test_every_link_and_named_section_in_the_docs_lands():
    broken = {str(path.relative_to(ROOT)): found for path in MARKDOWN if (found := _broken_pointers(path))}
    assert broken == {}


def test_every_docs_pointer_in_the_code_lands():
    """What a docstring or comment says is in docs/ is there: moving a section moves its pointers."""
    broken = {str(path.relative_to(ROOT)): found for path in CODE if (found := _broken_pointers(path))}
    assert broken == {}


def test_headings_name_topics_not_modules():
    by_module = {
        str(page.relative_to(ROOT)): found
        for page in PAGES
        if (found := [h for h in _headings(page) if MODULE_PATH.search(h)])
    }
    assert by_module == {}


def test_design_is_the_overview_that_leads_to_every_page():
    design = DOCS / "design.md"
    lines = len(design.read_text(encoding="utf-8").splitlines())
    linked = {
        (design.parent / target.partition("#")[0]).resolve()
        for target in LINK.findall(design.read_text(encoding="utf-8"))
    }
    unlinked = [page.name for page in PAGES if page != design and page.resolve() not in linked]
    assert (lines <= DESIGN_MAX_LINES, unlinked) == (True, [])


def test_the_readme_index_names_every_page():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    index = readme.split("## Where things are documented", 1)[1].split("\n## ", 1)[0]
    missing = [f"docs/{page.name}" for page in PAGES if f"docs/{page.name}" not in index]
    assert missing == []


# A file of the repository named in prose: gateway/sending/sender.py, deploy/systemd/sms-edge.service
REPO_PATH = re.compile(r"\b(?:gateway|plugins|tests|bench|deploy|config|scripts)/[\w/.-]*\w\.\w+\b")


def test_every_file_the_docs_name_exists():
    """A page that names a module by path follows it when it moves (the changelog keeps history)."""
    current = [ROOT / "README.md", ROOT / "SECURITY.md", *PAGES]
    missing = {
        str(page.relative_to(ROOT)): found
        for page in current
        if (
            found := sorted(
                {
                    name
                    for name in REPO_PATH.findall(page.read_text(encoding="utf-8"))
                    if not (ROOT / name).exists()
                }
            )
        )
    }
    assert missing == {}


# A module or a name in it, as the code's docstrings and comments name them: ``gateway.accounts.listed``
DOTTED_NAME = re.compile(r"(?<![\w/.])((?:gateway|plugins)(?:\.[A-Za-z_]\w*)+)")


def _resolves(dotted: str) -> bool:
    """Whether ``dotted`` is a module of the project, or a name inside one."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            if not hasattr(found, attribute):
                return False
            found = getattr(found, attribute)
        return True
    return False


def test_every_module_the_code_names_exists():
    """A docstring that names ``gateway.x.y`` follows the module when it moves."""
    unresolved = {
        str(path.relative_to(ROOT)): found
        for path in CODE
        if path.parts[len(ROOT.parts)] in ("gateway", "plugins")
        and (
            found := sorted(n for n in set(DOTTED_NAME.findall(path.read_text("utf-8"))) if not _resolves(n))
        )
    }
    assert unresolved == {}
