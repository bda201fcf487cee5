"""The hot paths' statements straight to asyncpg, on connections from the same pool.

The money steps a payment, a top-up or a withdrawal runs (and the outbox relay) spend more CPU in
SQLAlchemy's execution machinery than in asyncpg itself: building the text clause, its compiled
form, an execution context, a cursor and a result per statement (14 % of the worker's CPU under
the bench's load, against 12 % for asyncpg). `begin(engine)` checks a connection out of the
engine's pool (with its liveness check) and runs the transaction on the asyncpg connection
under it; `execute(statement, params)` takes the same `text()` statements and `:name`
parameters as SQLAlchemy's, prepares each statement once per connection (asyncpg infers the
parameter types, as under SQLAlchemy), and answers the part of SQLAlchemy's result the db
functions read: `first`, `one`, `all`, `scalar`, `scalar_one`, `scalars`, `mappings`,
`rowcount` and iteration, rows read by attribute or by name. The JSON codecs SQLAlchemy set on the connection
stay set. A connection that breaks is closed by asyncpg, and the pool's liveness check discards
it at the next checkout.
"""

from __future__ import annotations

import functools
import re
import weakref
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

import asyncpg
from asyncpg.prepared_stmt import PreparedStatement
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import TextClause

# SQLAlchemy's own rule for a bind in text(): `:name`, not `::type` nor `\:`
_BIND = re.compile(r"(?<![:\w\\]):(\w+)(?!:)")
_STATEMENTS = 256  # prepared statements kept per connection (the hot paths use a few dozen)


class Row(asyncpg.Record):
    """A row read by attribute (`row.amount`) as SQLAlchemy's are, or by name or position."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


@functools.lru_cache(maxsize=1024)
def positional(sql: str) -> tuple[str, tuple[str, ...]]:
    """The statement with `$n` placeholders, and the parameter names in their order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return _BIND.sub(number, sql).replace("\\:", ":"), tuple(names)


class Result:
    """What a statement answered: its rows, and its row count from the command tag."""

    __slots__ = ("rowcount", "rows")

    def __init__(self, rows: list[Row], status: str | None) -> None:
        self.rows = rows
        tail = (status or "").rsplit(" ", 1)[-1]
        self.rowcount = int(tail) if tail.isdigit() else -1

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows)

    def first(self) -> Row | None:
        return self.rows[0] if self.rows else None

    def one(self) -> Row:
        if len(self.rows) != 1:
            raise LookupError(f"expected one row, found {len(self.rows)}")
        return self.rows[0]

    def all(self) -> list[Row]:
        return self.rows

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows else None

    def scalar_one(self) -> Any:
        return self.one()[0]

    def scalars(self) -> Scalars:
        return Scalars([r[0] for r in self.rows])

    def mappings(self) -> Result:
        return self  # a row is a mapping already


class Scalars(list[Any]):
    def all(self) -> list[Any]:
        return list(self)

    def first(self) -> Any:
        return self[0] if self else None


class Connection:
    """One asyncpg connection, spoken to as the db functions speak to SQLAlchemy's (`execute`,
    and `engine`: the pool's engine, whose URL names the database)."""

    _prepared: weakref.WeakKeyDictionary[asyncpg.Connection, dict[str, PreparedStatement]] = \
        weakref.WeakKeyDictionary()

    def __init__(self, raw: asyncpg.Connection, engine: AsyncEngine) -> None:
        self.raw = raw
        self.engine = engine
        self.statements = self._prepared.setdefault(raw, {})

    async def execute(self, statement: TextClause,
                      params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None
                      ) -> Result:
        """One statement; a list of parameter sets runs it once for each (executemany: no
        rows come back, as from SQLAlchemy's)."""
        if not isinstance(statement, TextClause):
            raise TypeError("db.direct runs text() statements only")
        sql, names = positional(statement.text)
        try:
            return await self._run(sql, names, params)
        except asyncpg.InvalidCachedStatementError:  # the schema changed under it: once more
            self.statements.pop(sql, None)
            return await self._run(sql, names, params)

    async def _run(self, sql: str, names: tuple[str, ...],
                   params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None) -> Result:
        prepared = self.statements.get(sql)
        if prepared is None:
            if len(self.statements) >= _STATEMENTS:
                self.statements.clear()
            prepared = await self.raw.prepare(sql, record_class=Row)
            self.statements[sql] = prepared
        if isinstance(params, Sequence):
            await prepared.executemany([[p[n] for n in names] for p in params])
            return Result([], None)
        rows = await prepared.fetch(*[params[n] for n in names] if params else [])
        return Result(rows, prepared.get_statusmsg())


@asynccontextmanager
async def begin(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A transaction on a pooled connection, committed on exit (rolled back on an error). It
    answers as an AsyncConnection for the db functions' signatures: it speaks `execute` of a
    text() statement only (db.direct.Connection)."""
    async with engine.connect() as pooled:
        raw = await _driver(pooled)
        async with raw.transaction():
            yield cast(AsyncConnection, Connection(raw, engine))


@asynccontextmanager
async def connect(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A pooled connection without a transaction: each statement commits on its own."""
    async with engine.connect() as pooled:
        yield cast(AsyncConnection, Connection(await _driver(pooled), engine))


async def _driver(pooled: AsyncConnection) -> asyncpg.Connection:
    """The asyncpg connection under a checkout. A valid one is read as it is: SQLAlchemy's
    `get_raw_connection` spends a greenlet switch on every checkout to allow for the
    reconnection only an invalidated connection needs."""
    sync = pooled.sync_connection
    fairy = (sync.connection if sync is not None and not sync.invalidated and not sync.closed
             else await pooled.get_raw_connection())
    raw = fairy.driver_connection
    assert raw is not None, "a checked-out connection has its driver's"
    return raw
