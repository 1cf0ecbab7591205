"""Every relative link in README.md and docs/*.md leads somewhere: to a file or folder of
this repository and, for a ``#fragment``, to a heading of the Markdown file it names.

Anchors follow GitHub's rules for headings: the heading's text, lower-cased, without
punctuation (letters, digits, ``-`` and ``_`` stay), each space a ``-``; a repeated anchor
in one file gets ``-1``, ``-2``, ... Needs no services.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
SETEXT_UNDERLINE = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
# [text](target) and ![alt](target); the target may be <in angle brackets> and may have a
# "title" after it.
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+[^)]*)?\)")
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
HTML_ANCHOR = re.compile(r"""<a\s[^>]*?(?:name|id)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
HTML_TAG = re.compile(r"<[^>]+>")
LINK_TEXT = re.compile(r"!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\([^)]*\)")


@dataclass(frozen=True, slots=True)
class Link:
    document: Path
    line: int
    target: str

    def __str__(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}: {self.target}"


def prose_lines(text: str) -> Iterator[tuple[int, str]]:
    """The lines outside fenced code blocks, numbered from 1."""
    fence: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        match = FENCE.match(line)
        if fence is None:
            if match:
                fence = match.group(1)
                continue
            yield number, line
        elif match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence):
            fence = None


def links(document: Path) -> list[Link]:
    """The relative links of a Markdown file, outside code blocks and code spans."""
    found: list[Link] = []
    for number, line in prose_lines(document.read_text(encoding="utf-8")):
        prose = CODE_SPAN.sub("", line)
        targets = [match.group(1) for match in INLINE_LINK.finditer(prose)]
        definition = REFERENCE_DEFINITION.match(prose)
        if definition:
            targets.append(definition.group(1))
        for target in targets:
            target = target.removeprefix("<").removesuffix(">")
            parts = urlsplit(target)
            if parts.scheme or parts.netloc:
                continue  # https:, mailto: and the like: not this repository's
            found.append(Link(document, number, target))
    return found


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text (before de-duplication)."""
    text = LINK_TEXT.sub(r"\1", heading)
    text = CODE_SPAN.sub(lambda match: match.group(2).strip(), text)
    text = HTML_TAG.sub("", text)
    text = text.strip().lower()
    text = "".join(char for char in text if char.isalnum() or char in " -_")
    return text.replace(" ", "-")


def headings(text: str) -> list[str]:
    """The text of every heading (ATX and setext) outside code blocks, in order."""
    found: list[str] = []
    previous = ""
    for _, line in prose_lines(text):
        atx = ATX_HEADING.match(line)
        if atx:
            found.append(atx.group(2) or "")
            previous = ""
            continue
        if previous.strip() and SETEXT_UNDERLINE.match(line):
            found.append(previous.strip())
            previous = ""
            continue
        previous = line
    return found


@cache
def anchors(document: Path) -> frozenset[str]:
    """Every anchor GitHub makes for a Markdown file: its headings' and its HTML anchors."""
    text = document.read_text(encoding="utf-8")
    seen: dict[str, int] = {}
    found: set[str] = set()
    for heading in headings(text):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    found.update(HTML_ANCHOR.findall(text))
    return frozenset(found)


def problem(link: Link) -> str | None:
    """What is wrong with a link, or None when it leads somewhere."""
    parts = urlsplit(link.target)
    path = unquote(parts.path)
    if not path:
        target = link.document
    elif path.startswith("/"):
        target = ROOT / path.lstrip("/")
    else:
        target = link.document.parent / path
    target = target.resolve()
    if not target.is_relative_to(ROOT):
        return "leads out of the repository"
    if not target.exists():
        return "no such file"
    fragment = unquote(parts.fragment)
    if not fragment or target.suffix.lower() != ".md":
        return None
    if fragment not in anchors(target):
        return f"no heading in {target.relative_to(ROOT)} has the anchor #{fragment}"
    return None


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_relative_links_lead_somewhere(document: Path) -> None:
    broken = [f"{link}: {reason}" for link in links(document) if (reason := problem(link))]
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_the_documents_are_found() -> None:
    assert (ROOT / "README.md") in DOCUMENTS
    assert len(DOCUMENTS) > 1, "docs/*.md is empty"


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Quick start", "quick-start"),
        ("Redis: one server, Sentinel or Cluster", "redis-one-server-sentinel-or-cluster"),
        (
            "At scale: two instances behind nginx, one worker against two (`bench/soak.py`)",
            "at-scale-two-instances-behind-nginx-one-worker-against-two-benchsoakpy",
        ),
        (
            "Timeouts: the key's TTL is the session's life",
            "timeouts-the-keys-ttl-is-the-sessions-life",
        ),
        ("V6 Authentication", "v6-authentication"),
        ("Results (2026-11-27, commit d32648b)", "results-2026-11-27-commit-d32648b"),
        ("What [links](x.md) and <em>tags</em> say", "what-links-and-tags-say"),
        ("snake_case stays", "snake_case-stays"),
        ("Größe \N{EN DASH} und mehr", "größe--und-mehr"),
    ],
)
def test_anchors_follow_githubs_rules(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor


def test_repeated_headings_get_numbered_anchors(tmp_path: Path) -> None:
    document = tmp_path / "page.md"
    document.write_text(
        "# Notes\n\n## Notes\n\n```\n# not a heading\n```\n\n## Notes\n\nSetext\n------\n",
        encoding="utf-8",
    )
    assert anchors(document) == {"notes", "notes-1", "notes-2", "setext"}


def test_links_in_code_are_not_links(tmp_path: Path) -> None:
    document = tmp_path / "page.md"
    document.write_text(
        "See [here](#a) and `[not](#b)`.\n\n```md\n[nor](#c)\n```\n\n[ref]: other.md#d\n"
        "[out](https://example.com/#e) ![image](images/x.png)\n",
        encoding="utf-8",
    )
    assert [link.target for link in links(document)] == ["#a", "other.md#d", "images/x.png"]
