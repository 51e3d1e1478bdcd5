"""README.md and docs/*.md link only what a clone of the repository has: no path
outside it, no relative file that does not exist, no heading that is not there."""
import os
import re
from urllib.parse import unquote

import pytest

from services.common.config import REPO_ROOT

DOCUMENTS = ["README.md", *sorted(path.relative_to(REPO_ROOT).as_posix() for path in (REPO_ROOT / "docs").glob("*.md"))]

# What is not a link although it may look like one: fenced blocks and code spans.
FENCED_BLOCK = re.compile(r"^ *(```|~~~).*?^ *\1[^\n]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+)[^`].*?\1", re.DOTALL)
INLINE_LINK = re.compile(r"\]\(\s*<?([^()\s<>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?([^\s>]+)", re.MULTILINE)
HTML_LINK = re.compile(r"""\b(?:href|src)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
# http:, https:, mailto: ...: another site, not a file of the repository.
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def without_code(text):
    """The text with code blanked out, keeping its line breaks so line numbers hold."""
    def blank(match):
        return "\n" * match.group(0).count("\n")

    return CODE_SPAN.sub(blank, FENCED_BLOCK.sub(blank, text))


def links(text):
    """(line number, target) of every link in a Markdown text."""
    prose = without_code(text)
    found = []
    for pattern in (INLINE_LINK, REFERENCE_DEFINITION, HTML_LINK):
        for match in pattern.finditer(prose):
            found.append((prose.count("\n", 0, match.start()) + 1, match.group(1)))
    return sorted(found)


def anchors(text):
    """The anchors GitHub gives a Markdown text's headings (a repeated one gets -1, -2 ...)."""
    seen = {}
    result = set()
    for match in HEADING.finditer(FENCED_BLOCK.sub("", text)):
        title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", match.group(1)).replace("`", "")
        slug = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        result.add(slug if count == 0 else f"{slug}-{count}")
    return result


def link_problems(document, root):
    """What is wrong with the links of `document` (a path relative to `root`)."""
    source = os.path.join(root, document)
    with open(source, encoding="utf-8") as handle:
        text = handle.read()
    problems = []
    for line, target in links(text):
        if SCHEME.match(target):
            continue
        path, _, fragment = target.partition("#")
        path = unquote(path.partition("?")[0])
        if path.startswith("/"):
            resolved = os.path.normpath(os.path.join(root, path.lstrip("/")))
        else:
            resolved = os.path.normpath(os.path.join(os.path.dirname(source), path)) if path else source
        where = f"{document}:{line}: {target}"
        if os.path.commonpath([resolved, root]) != root:
            problems.append(f"{where} points outside the repository")
        elif not os.path.exists(resolved):
            problems.append(f"{where} names a file that does not exist")
        elif fragment and resolved.endswith(".md"):
            with open(resolved, encoding="utf-8") as handle:
                if unquote(fragment).lower() not in anchors(handle.read()):
                    problems.append(f"{where} names a heading that is not there")
    return problems


@pytest.mark.parametrize("document", DOCUMENTS)
def test_links_stay_inside_the_repository_and_exist(document):
    assert link_problems(document, os.path.normpath(REPO_ROOT)) == []


def test_a_link_outside_the_repository_or_to_nothing_is_found(tmp_path):
    root = tmp_path / "repo"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "guide.md").write_text("# Guide\n\n## Two words\n")
    (root / "README.md").write_text(
        "# Title\n\n"
        "See [the design](../shared/DESIGN.md), [the guide](docs/guide.md#two-words),\n"
        "[a heading](#title), [gone](docs/gone.md), [lost](docs/guide.md#nowhere)\n"
        "and [elsewhere](https://example.com/x.md).\n\n"
        "```sh\ncat [not](a-link.md)\n```\n"
        "`[nor](this.md)` either.\n"
    )
    assert link_problems("README.md", str(root)) == [
        "README.md:3: ../shared/DESIGN.md points outside the repository",
        "README.md:4: docs/gone.md names a file that does not exist",
        "README.md:4: docs/guide.md#nowhere names a heading that is not there",
    ]
