"""DocsLibrary: listing, search, and reads that cannot leave the docs folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mcpserve.demo.docs import DocNotFound, DocsLibrary

from .support import RUNBOOKS


@pytest.fixture
def library() -> DocsLibrary:
    return DocsLibrary(RUNBOOKS)


def test_list_is_sorted_with_titles_and_sizes(library: DocsLibrary) -> None:
    docs = library.list()
    paths = [doc.path for doc in docs]
    assert paths == sorted(paths)
    assert 6 <= len(docs) <= 8
    assert "deploy-rollback.md" in paths
    rollback = next(doc for doc in docs if doc.path == "deploy-rollback.md")
    assert rollback.title == "Deploy Rollback"
    assert rollback.size == (RUNBOOKS / "deploy-rollback.md").stat().st_size


def test_every_runbook_starts_with_a_title(library: DocsLibrary) -> None:
    for doc in library.list():
        assert library.read(doc.path).startswith(f"# {doc.title}\n")


def test_read_returns_the_markdown(library: DocsLibrary) -> None:
    assert library.read("redis-memory-pressure.md") == (RUNBOOKS / "redis-memory-pressure.md").read_text()


def test_search_requires_every_term_and_boosts_titles(library: DocsLibrary) -> None:
    hits = library.search("Redis MEMORY")
    assert hits[0].path == "redis-memory-pressure.md"
    assert hits[0].title == "Redis Memory Pressure"
    for hit in hits:
        text = library.read(hit.path).lower()
        assert "redis" in text and "memory" in text
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_search_snippet_surrounds_the_first_match(library: DocsLibrary) -> None:
    hit = library.search("patronictl")[0]
    assert hit.path == "database-failover.md"
    assert "patronictl" in hit.snippet
    assert len(hit.snippet) <= 210
    assert "\n" not in hit.snippet


def test_search_without_matches_and_with_limit(library: DocsLibrary) -> None:
    assert library.search("kubernetes-operator-that-does-not-exist") == []
    assert len(library.search("the", limit=2)) == 2


@pytest.mark.parametrize("query", ["", "   ", "\n\t"])
def test_blank_search_is_rejected(library: DocsLibrary, query: str) -> None:
    with pytest.raises(ValueError, match="at least one search term"):
        library.search(query)


def test_search_limit_must_be_positive(library: DocsLibrary) -> None:
    with pytest.raises(ValueError, match="limit"):
        library.search("redis", limit=0)


@pytest.mark.parametrize(
    "path",
    [
        "../x.md",
        "/etc/passwd",
        "runbooks/../../pyproject.toml",
        "runbooks/../deploy-rollback.md",
        "%2e%2e/%2e%2e/pyproject.toml",
        "%2e%2e%2fdeploy-rollback.md",
        "deploy-rollback.md\x00.txt",
        "deploy-rollback.md\x00",
        "..\\deploy-rollback.md",
        "./deploy-rollback.md",
        str(RUNBOOKS / "deploy-rollback.md"),
        "deploy-rollback",
        "",
        ".",
        "nope.md",
        "x" * 10_000 + ".md",
    ],
)
def test_read_refuses_anything_but_listed_names(library: DocsLibrary, path: str) -> None:
    with pytest.raises(DocNotFound) as caught:
        library.read(path)
    assert "deploy-rollback.md" in str(caught.value)  # the message lists what does exist
    assert isinstance(caught.value, LookupError)


def test_symlinks_escaping_the_root_are_invisible(tmp_path: Path) -> None:
    root = Path(shutil.copytree(RUNBOOKS, tmp_path / "runbooks"))
    secret = tmp_path / "secret.md"
    secret.write_text("# Secret\npassword=hunter2\n")
    outside_dir = tmp_path / "elsewhere"
    outside_dir.mkdir()
    (outside_dir / "hidden.md").write_text("# Hidden\n")
    (root / "leak.md").symlink_to(secret)
    (root / "passwd.md").symlink_to("/etc/passwd")
    (root / "linked-dir").symlink_to(outside_dir, target_is_directory=True)
    (root / "nested").mkdir()
    (root / "nested" / "inner.md").write_text("# Inner\nfine\n")
    (root / "alias.md").symlink_to(root / "deploy-rollback.md")  # stays inside root: allowed

    library = DocsLibrary(root)
    paths = [doc.path for doc in library.list()]
    assert "leak.md" not in paths
    assert "passwd.md" not in paths
    assert not any(p.startswith("linked-dir") for p in paths)
    assert "nested/inner.md" in paths
    assert library.read("alias.md") == library.read("deploy-rollback.md")
    for path in ("leak.md", "passwd.md", "linked-dir/hidden.md", "nested/../leak.md"):
        with pytest.raises(DocNotFound):
            library.read(path)
    assert library.search("hunter2") == []


def test_contents_are_cached_at_construction(tmp_path: Path) -> None:
    root = Path(shutil.copytree(RUNBOOKS, tmp_path / "runbooks"))
    library = DocsLibrary(root)
    original = library.read("queue-backlog.md")
    (root / "queue-backlog.md").write_text("# Replaced\n")
    (root / "new.md").write_text("# New\n")
    assert library.read("queue-backlog.md") == original
    with pytest.raises(DocNotFound):
        library.read("new.md")


def test_non_markdown_files_and_untitled_docs(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("# Not markdown\n")
    (tmp_path / "untitled.md").write_text("no heading here\n")
    library = DocsLibrary(tmp_path)
    assert [(d.path, d.title) for d in library.list()] == [("untitled.md", "untitled")]
    with pytest.raises(DocNotFound):
        library.read("notes.txt")


def test_missing_root_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        DocsLibrary(tmp_path / "missing")
