"""The lexical layer for untrusted PostgreSQL: one statement, a read by its first word, no escapes.

This layer runs before anything reaches the server and gives the clearest refusals; it is not the
only one. The statement then runs in a ``READ ONLY`` transaction that is always rolled back (see
:mod:`.postgres`), which stops writes this layer cannot see, such as those inside user functions.

The tokenizer follows PostgreSQL's lexical rules (with ``standard_conforming_strings`` on, which
the connection sets): ``'...'`` and ``E'...'`` strings, ``$tag$...$tag$`` dollar quotes, ``"..."``
identifiers, ``--`` and nested ``/* */`` comments, so a keyword inside a string is never mistaken for
code and code hidden after a quote trick is never mistaken for a string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .base import READ_ONLY, QueryRejected, one_statement

__all__ = ["read_only_statement"]


_READ_STARTS = frozenset({"SELECT", "WITH", "VALUES", "TABLE", "EXPLAIN"})
# Words that only appear in statements that write, lock, run other statements or change settings.
# Data-modifying CTEs (WITH x AS (DELETE ...)), SELECT INTO, EXPLAIN ANALYZE (it executes), ...
_REFUSED_WORDS = frozenset(
    {
        "INSERT", "UPDATE", "DELETE", "MERGE", "INTO", "COPY", "TRUNCATE", "CREATE", "DROP", "ALTER",
        "GRANT", "REVOKE", "LOCK", "CALL", "DO", "NOTIFY", "LISTEN", "UNLISTEN", "EXECUTE", "PREPARE",
        "DEALLOCATE", "SET", "RESET", "ANALYZE", "ANALYSE", "VACUUM", "REFRESH", "DISCARD", "COMMIT",
        "ROLLBACK", "BEGIN", "SAVEPOINT", "DECLARE",
    }
)  # fmt: skip
# Row-locking clauses: FOR UPDATE (refused above), FOR NO KEY UPDATE, FOR SHARE, FOR KEY SHARE.
_LOCK_AFTER_FOR = frozenset({"UPDATE", "NO", "SHARE", "KEY"})
# Functions that write (sequences, large objects, advisory locks), touch the server's files or
# other servers, signal backends, change settings, or run SQL given as text (escaping this layer);
# and catalogs holding password hashes or credentials.
_REFUSED_NAMES = frozenset(
    {
        "nextval", "setval", "set_config", "pg_notify", "txid_current", "pg_current_xact_id", "ts_stat",
        "pg_authid", "pg_shadow", "pg_user_mapping", "pg_user_mappings", "pg_hba_file_rules",
        "pg_ident_file_mappings", "pg_file_settings", "pg_largeobject", "pg_stat_file",
    }
)  # fmt: skip
_REFUSED_PREFIXES = (
    "lo_", "lowrite", "loread", "dblink", "pg_read_", "pg_ls_", "pg_file_", "pg_advisory",
    "pg_try_advisory", "pg_logical_", "pg_replication_", "pg_create_", "pg_drop_", "pg_copy_",
    "pg_import_", "pg_backup_", "pg_start_backup", "pg_stop_backup", "pg_stat_reset", "pg_wal_",
    "pg_terminate_", "pg_cancel_", "pg_reload_", "pg_rotate_", "pg_promote", "pg_switch_", "pg_log_",
    "query_to_xml", "cursor_to_xml", "table_to_xml", "schema_to_xml", "database_to_xml",
)  # fmt: skip

_WORD = re.compile(r"[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*")
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$")


@dataclass(frozen=True)
class Token:
    kind: str  # "word", "ident" (quoted identifier), "string", "punct"
    text: str


def read_only_statement(sql: str) -> str:
    """``sql`` if it is exactly one read statement free of refused words and names; else QueryRejected."""
    tokens = one_statement(sql, lambda text: _statements(tokenize(text)))
    first = tokens[0]
    if first.kind != "punct" or first.text != "(":  # a parenthesised SELECT is a read too
        keyword = first.text.upper() if first.kind == "word" else first.text
        if keyword in _REFUSED_WORDS:
            raise QueryRejected(f"{READ_ONLY}; {keyword} is refused")
        if keyword not in _READ_STARTS:
            raise QueryRejected(
                f"the query must start with SELECT, WITH, VALUES, TABLE or EXPLAIN, not {keyword[:40]!r}"
            )
    _check_words(tokens)
    return sql.strip().rstrip(";")


def _check_words(tokens: list[Token]) -> None:
    for index, token in enumerate(tokens):
        if token.kind == "word":
            word = token.text.upper()
            if word in _REFUSED_WORDS:
                raise QueryRejected(
                    f'{READ_ONLY}; {word} is refused (write "{token.text.lower()}" in double quotes '
                    "if it is a column name)"
                )
            following = tokens[index + 1] if index + 1 < len(tokens) else None
            if word == "FOR" and following and following.text.upper() in _LOCK_AFTER_FOR:
                raise QueryRejected(f"{READ_ONLY}; row locks (FOR UPDATE / FOR SHARE) are refused")
        if token.kind in ("word", "ident"):
            name = token.text.lower() if token.kind == "word" else token.text
            if name in _REFUSED_NAMES or name.startswith(_REFUSED_PREFIXES):
                raise QueryRejected(f"{READ_ONLY}; {name} is refused")


def _statements(tokens: list[Token]) -> list[list[Token]]:
    statements: list[list[Token]] = [[]]
    for token in tokens:
        if token.kind == "punct" and token.text == ";":
            statements.append([])
        else:
            statements[-1].append(token)
    return [statement for statement in statements if statement]


def tokenize(sql: str) -> list[Token]:
    """Significant tokens of ``sql``: comments and whitespace dropped, strings kept whole."""
    tokens: list[Token] = []
    index = 0
    while index < len(sql):
        char = sql[index]
        if char.isspace():
            index += 1
        elif sql.startswith("--", index):
            end = sql.find("\n", index)
            index = len(sql) if end == -1 else end + 1
        elif sql.startswith("/*", index):
            index = _skip_block_comment(sql, index)
        elif sql.startswith(('U&"', 'u&"'), index):
            # Unicode escapes could spell any name; nobody needs them in a read query.
            raise QueryRejected('U&"..." identifiers are not supported; write the name plainly')
        elif char == '"':
            end = _skip_quoted(sql, index, '"', backslash=False)
            tokens.append(Token("ident", sql[index + 1 : end - 1].replace('""', '"')))
            index = end
        elif char == "'" or (char in "EeBbXxNn" and sql.startswith("'", index + 1)):
            escapes = char in "Ee"
            start = index + (0 if char == "'" else 1)
            end = _skip_quoted(sql, start, "'", backslash=escapes)
            tokens.append(Token("string", sql[index:end]))
            index = end
        elif char == "$" and (tag := _DOLLAR_TAG.match(sql, index)):
            end = sql.find(tag.group(0), tag.end())
            if end == -1:
                raise QueryRejected("syntax error: unterminated dollar-quoted string")
            index = end + len(tag.group(0))
            tokens.append(Token("string", sql[tag.start() : index]))
        elif match := _WORD.match(sql, index):
            tokens.append(Token("word", match.group(0)))
            index = match.end()
        else:
            tokens.append(Token("punct", char))
            index += 1
    return tokens


def _skip_quoted(sql: str, start: int, quote: str, *, backslash: bool) -> int:
    """Index just past the quoted text opening at ``start``; doubled quotes (and ``\\x``) escape."""
    index = start + 1
    while index < len(sql):
        char = sql[index]
        if backslash and char == "\\":
            index += 2
        elif char == quote:
            if sql.startswith(quote, index + 1):
                index += 2
            else:
                return index + 1
        else:
            index += 1
    raise QueryRejected("syntax error: unterminated quoted string or identifier")


def _skip_block_comment(sql: str, start: int) -> int:
    """Index just past the ``/* */`` comment at ``start``; PostgreSQL nests them."""
    depth, index = 0, start
    while index < len(sql):
        if sql.startswith("/*", index):
            depth, index = depth + 1, index + 2
        elif sql.startswith("*/", index):
            depth, index = depth - 1, index + 2
            if depth == 0:
                return index
        else:
            index += 1
    raise QueryRejected("syntax error: unterminated /* comment")
