"""The metric and label names a PromQL expression refers to (enough of PromQL for our own
dashboard and rules: selectors, functions, aggregations with by/without, vector matching)."""

from __future__ import annotations

import re

__all__ = ["names_in"]

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{([^}]*)\}")
_MATCHER_LABEL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_RANGE = re.compile(r"\[[^\]]*\]")
_IDENTIFIER = re.compile(r"(?<![\w$.])([A-Za-z_:][A-Za-z0-9_:]*)\b(\s*\()?")
_KEYWORDS = frozenset(
    {
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "inf",
        "nan",
    }
)


def names_in(expr: str) -> tuple[set[str], set[str]]:
    """(metric names, label names) used by ``expr``."""
    labels: set[str] = set()
    text = _STRING.sub('""', expr)
    for block in _MATCHERS.findall(text):
        labels.update(_MATCHER_LABEL.findall(block))
    text = _MATCHERS.sub(" ", text)
    for block in _GROUPING.findall(text):
        labels.update(part.strip() for part in block.split(",") if part.strip())
    text = _GROUPING.sub(" ", _RANGE.sub(" ", text))
    metrics = {name for name, call in _IDENTIFIER.findall(text) if not call and name.lower() not in _KEYWORDS}
    return metrics, labels
