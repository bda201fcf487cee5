"""db.direct speaks SQLAlchemy's text() dialect to asyncpg: `:name` binds become `$n` (a name used
twice is one parameter), casts and escaped colons are left alone, and a command's row count is
read from its tag."""

from __future__ import annotations

from sqlalchemy import text

from db.direct import Result, positional


def test_named_binds_become_numbered_in_order_of_first_use() -> None:
    sql, names = positional(
        "UPDATE holds SET status = :s WHERE payment_id = :p AND attempt = :a AND :s <> 'x'")
    assert sql == "UPDATE holds SET status = $1 WHERE payment_id = $2 AND attempt = $3 AND $1 <> 'x'"
    assert names == ("s", "p", "a")


def test_casts_and_escaped_colons_are_not_binds_as_in_sqlalchemy() -> None:
    statement = r"SELECT CAST(:ids AS BIGINT[]), 1::int, :d::jsonb, '\:literal', now()"
    sql, names = positional(statement)
    assert sql == "SELECT CAST($1 AS BIGINT[]), 1::int, :d::jsonb, ':literal', now()"
    assert names == ("ids",) == tuple(text(statement)._bindparams)  # :d:: is no bind there either


def test_a_statement_without_binds_is_unchanged() -> None:
    assert positional("SELECT 1") == ("SELECT 1", ())


def test_the_row_count_comes_from_the_command_tag() -> None:
    assert Result([], "INSERT 0 1").rowcount == 1
    assert Result([], "INSERT 0 0").rowcount == 0
    assert Result([], "UPDATE 3").rowcount == 3
    assert Result([], None).rowcount == -1
    empty = Result([], "SELECT 0")
    assert (empty.first(), empty.scalar(), empty.all(), empty.scalars().all()) == (None, None, [], [])
