"""A small, read-only library of markdown runbooks: list, search and read.

The folder is bundled with the package and never changes while serving, so every document is read
once at construction. :meth:`DocsLibrary.read` serves only from that cache, keyed by the relative
POSIX path of each ``.md`` file found inside the root, which makes path traversal impossible by
construction; the explicit checks on the requested name just give clearer errors. Files whose
real location is outside the root (symlinks) are never loaded.
"""

from __future__ import annotations

import builtins
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DocHit", "DocInfo", "DocNotFound", "DocsLibrary"]

MAX_QUERY_LENGTH = 500
MAX_PATH_LENGTH = 255
SNIPPET_LENGTH = 200
TITLE_BOOST = 10  # a term in the title counts as much as ten mentions in the body


@dataclass(frozen=True)
class DocInfo:
    """One document: its path relative to the library root, its title and size in bytes."""

    path: str
    title: str
    size: int


@dataclass(frozen=True)
class DocHit:
    """A search result: higher ``score`` is more relevant; ``snippet`` surrounds the first match."""

    path: str
    title: str
    score: int
    snippet: str


class DocNotFound(LookupError):
    """No document by that name; the message lists the documents that exist."""

    def __init__(self, path: str, available: list[str]) -> None:
        self.path = path
        self.available = available
        shown = path if len(path) <= 100 else path[:100] + "..."
        super().__init__(f"no document named {shown!r}; available documents: {', '.join(available)}")


@dataclass(frozen=True)
class _Doc:
    info: DocInfo
    text: str
    lowered: str
    lowered_title: str


class DocsLibrary:
    """The ``.md`` files under ``root`` (recursively), loaded once.

    Annotations use ``builtins.list`` because the ``list`` method shadows the builtin in this class.
    """

    def __init__(self, root: Path) -> None:
        real_root = root.resolve(strict=True)
        if not real_root.is_dir():
            raise NotADirectoryError(f"docs root is not a directory: {root}")
        self._docs = {doc.info.path: doc for doc in _load(real_root)}

    def list(self) -> builtins.list[DocInfo]:
        """Every document, sorted by path."""
        return [doc.info for doc in self._docs.values()]

    def search(self, query: str, limit: int = 10) -> builtins.list[DocHit]:
        """Documents containing every whitespace-separated term of ``query`` (case-insensitive),
        best first: score is the number of term occurrences plus a boost per term in the title."""
        terms = _terms(query)
        if limit < 1:
            raise ValueError("limit must be at least 1")
        hits = [hit for doc in self._docs.values() if (hit := _match(doc, terms)) is not None]
        hits.sort(key=lambda hit: (-hit.score, hit.path))
        return hits[:limit]

    def read(self, path: str) -> str:
        """The markdown text of the document at ``path`` as given by :meth:`list`."""
        if not _plausible_name(path) or path not in self._docs:
            raise DocNotFound(path, list(self._docs))
        return self._docs[path].text


def _load(root: Path) -> list[_Doc]:
    docs: list[_Doc] = []
    for candidate in sorted(root.rglob("*.md")):
        real = candidate.resolve()
        # A symlink (or a symlinked folder) may point anywhere; only files really inside root count.
        if not real.is_relative_to(root) or not real.is_file():
            continue
        text = real.read_text(encoding="utf-8")
        relative = candidate.relative_to(root).as_posix()
        info = DocInfo(relative, _title(text, candidate.stem), len(text.encode("utf-8")))
        docs.append(_Doc(info, text, text.lower(), info.title.lower()))
    return docs


def _title(text: str, fallback: str) -> str:
    for line in text.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return fallback


def _plausible_name(path: str) -> bool:
    """Reject what can never name a bundled document, before the lookup."""
    return (
        isinstance(path, str)
        and 0 < len(path) <= MAX_PATH_LENGTH
        and path.endswith(".md")
        and "\x00" not in path
        and "\\" not in path
        and not path.startswith("/")
        and ".." not in path.split("/")
    )


def _terms(query: str) -> list[str]:
    if not isinstance(query, str) or not query.strip():
        raise ValueError("query must contain at least one search term, e.g. 'rollback' or 'redis memory'")
    if len(query) > MAX_QUERY_LENGTH:
        raise ValueError(f"query must be at most {MAX_QUERY_LENGTH} characters")
    return list(dict.fromkeys(query.lower().split()))  # unique, in order


def _match(doc: _Doc, terms: list[str]) -> DocHit | None:
    counts = [doc.lowered.count(term) for term in terms]
    if not all(counts):
        return None
    score = sum(counts) + TITLE_BOOST * sum(term in doc.lowered_title for term in terms)
    first = min(doc.lowered.find(term) for term in terms)
    return DocHit(doc.info.path, doc.info.title, score, _snippet(doc.text, first))


def _snippet(text: str, position: int) -> str:
    """About SNIPPET_LENGTH characters around ``position``, whitespace collapsed, with ellipses."""
    start = max(0, position - SNIPPET_LENGTH // 3)
    end = min(len(text), start + SNIPPET_LENGTH)
    body = re.sub(r"\s+", " ", text[start:end]).strip()
    return ("…" if start > 0 else "") + body + ("…" if end < len(text) else "")
