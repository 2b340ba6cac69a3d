"""The named-query tables: both SQL dialects answer the same names, and every name a
transaction can yield is in them."""

from __future__ import annotations

import re
from pathlib import Path

from taskorch.storage import postgres_queries, sql_plans, sql_task_reads, sql_tasks, sqlite_queries

# A query named where it is yielded (`Query("name"`, `_fenced("name"`), or a fragment `"a.b"`.
_NAMED: re.Pattern[str] = re.compile(r'(?:Query|_fenced)\(\s*"([a-z_]+)"|"([a-z_]+\.[a-z_]+)"')


def _names_used() -> set[str]:
    names: set[str] = {"notify"}
    for module in (sql_tasks, sql_task_reads, sql_plans):
        text = Path(module.__file__ or "").read_text()
        names |= {a or b for a, b in _NAMED.findall(text)}
    return names


def test_both_dialects_define_the_same_names() -> None:
    assert set(sqlite_queries.QUERIES) == set(postgres_queries.QUERIES)


def test_every_name_a_transaction_yields_is_defined() -> None:
    used = _names_used()
    assert used, "no query names found in the transactions"
    assert used <= set(sqlite_queries.QUERIES)


def test_no_name_is_left_unused() -> None:
    assert set(sqlite_queries.QUERIES) <= _names_used()


def test_a_statement_one_dialect_skips_is_written_by_the_other() -> None:
    for name, text in sqlite_queries.QUERIES.items():
        assert text is not None or postgres_queries.QUERIES[name] is not None, name
