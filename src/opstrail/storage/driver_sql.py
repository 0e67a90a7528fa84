"""Core statements run on the driver's own cursor, for the few on the request path.

SQLAlchemy spends about 40 µs per execution around a statement (compiled-cache lookup,
parameter construction, result set-up) where SQLite itself takes 10 to 20. Recording a run's
trace runs two such statements on every request, so they are compiled once per dialect here
and sent on the DBAPI cursor of the session's own connection (same transaction). Parameters
still go through each column type's bind processor, so what is stored is exactly what a
Core execution would store.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler


@dataclass(frozen=True, slots=True)
class DriverStatement:
    """A statement compiled for one dialect: its SQL, and per driver parameter (in the
    driver's order) the caller's value name or a literal, and the type's bind processor."""

    sql: str
    names: tuple[str, ...]  # the driver's parameter names (positional: their order)
    keys: tuple[str | None, ...]  # the caller's value for each; None: a literal of the SQL
    literals: tuple[Any, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]
    positional: bool

    @classmethod
    def compile(cls, statement: ClauseElement, dialect: Dialect) -> DriverStatement:
        """Compile ``statement`` for ``dialect``. Its ``bindparam("name")`` parameters take
        the caller's values; literals (``limit(1)``, constants) keep theirs."""
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
        binds = {name: bind for bind, name in compiled.bind_names.items()}
        defaults = dict(compiled.construct_params(
            {bind.key: None for bind in binds.values() if bind.required}
        ) or {})
        names = tuple(compiled.positiontup or ()) if dialect.positional else tuple(defaults)
        keys = tuple(binds[name].key if binds[name].required else None for name in names)
        return cls(
            sql=compiled.string,
            names=names,
            keys=keys,
            literals=tuple(defaults.get(name) for name in names),
            processors=tuple(
                binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
            ),
            positional=bool(dialect.positional),
        )

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        """``values`` processed and laid out as the driver takes them."""
        processed = [
            value if process is None else process(value)
            for value, process in zip(
                (literal if key is None else values[key]
                 for key, literal in zip(self.keys, self.literals, strict=True)),
                self.processors,
                strict=True,
            )
        ]
        if self.positional:
            return tuple(processed)
        return dict(zip(self.names, processed, strict=True))

    @contextmanager
    def execute(self, connection: Connection, values: Mapping[str, Any]) -> Iterator[Any]:
        """Run on ``connection``'s DBAPI cursor, in its transaction; yields the cursor to
        read (rows, ``rowcount``, ``lastrowid``) and closes it afterwards."""
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(self.sql, self.parameters(values))
            yield cursor
        finally:
            cursor.close()

    def run(self, connection: Connection, values: Mapping[str, Any]) -> None:
        """Run a statement whose answer is not read (an INSERT without RETURNING)."""
        with self.execute(connection, values):
            pass


@functools.lru_cache(maxsize=64)
def driver_statement(statement: ClauseElement, dialect: Dialect) -> DriverStatement:
    """``statement`` compiled for ``dialect``, once per pair (statements are module
    constants; a process has one or a few engines)."""
    return DriverStatement.compile(statement, dialect)
