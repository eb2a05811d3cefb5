"""The database connection: SQLite (default) or PostgreSQL, through one SQLAlchemy Core engine.

SQLite allows one writer at a time, so every write transaction goes through
:meth:`Database.write`, which holds a process-wide lock around a single writer connection;
reads use their own connections and, thanks to WAL mode, never wait for the writer.
PostgreSQL writes run concurrently and serialise per run with ``SELECT ... FOR UPDATE``.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from .errors import StartupError

SQLITE_NAME = "trackd.db"
_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")


def redact(text: str) -> str:
    """``text`` with the password of any database URL in it shown as ``***``."""
    return _PASSWORD.sub(r"\1***@", text)


def database_url(db: str | None, data_dir: Path) -> str:
    """The SQLAlchemy URL for ``--db`` (or the SQLite file under ``data_dir``)."""
    if not db:
        return f"sqlite:///{data_dir / SQLITE_NAME}"
    for prefix in ("postgresql://", "postgres://"):
        if db.startswith(prefix):
            return "postgresql+psycopg://" + db[len(prefix) :]
    if db.startswith(("postgresql+psycopg://", "sqlite:///")):
        return db
    raise StartupError(
        f"--db {redact(db)!r} is not a supported database URL; use postgresql://user@host:port/dbname "
        "or leave --db out to use SQLite in the data dir"
    )


def _sqlite_pragmas(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA cache_size=-65536")
    # reads map the file instead of copying each page through a read() call: history block
    # payloads are most of the file (address space only; the OS pages it in and out)
    cur.execute("PRAGMA mmap_size=1073741824")
    cur.close()


class Database:
    """The engines and the write discipline for one trackd database."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self._write_lock = threading.Lock()
        if self.is_sqlite:
            args = {"check_same_thread": False}
            self.writer = create_engine(url, connect_args=args, pool_size=1, max_overflow=0)
            self.reader = create_engine(url, connect_args=args, pool_size=8, max_overflow=8)
            for engine in (self.writer, self.reader):
                event.listen(engine, "connect", _sqlite_pragmas)
        else:
            self.writer = create_engine(url, pool_size=8, max_overflow=8, pool_pre_ping=True)
            self.reader = self.writer
        self.placeholder = "?" if self.writer.dialect.paramstyle == "qmark" else "%s"

    @classmethod
    def open(cls, db: str | None, data_dir: Path) -> Database:
        """Connect (creating the data dir for SQLite), or a clear :class:`StartupError`."""
        url = database_url(db, data_dir)
        if url.startswith("sqlite"):
            try:
                data_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StartupError(f"cannot create data dir {data_dir}: {exc}") from exc
        database = cls(url)
        try:
            with database.reader.connect():
                pass
        except SQLAlchemyError as exc:
            database.close()
            raise StartupError(
                f"cannot connect to database {redact(db or url)}: {redact(str(exc))}"
            ) from exc
        return database

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction; committed on success, rolled back on error."""
        if self.is_sqlite:
            with self._write_lock, self.writer.begin() as conn:
                yield conn
        else:
            with self.writer.begin() as conn:
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reads (its implicit transaction is rolled back at the end)."""
        with self.reader.connect() as conn:
            yield conn

    def insert_ignore(self, conn: Connection, table: Table, values: dict[str, Any]) -> None:
        """Insert one row unless it clashes with a unique constraint."""
        dialect = sqlite if self.is_sqlite else postgresql
        conn.execute(dialect.insert(table).values(**values).on_conflict_do_nothing())

    def close(self) -> None:
        self.writer.dispose()
        if self.reader is not self.writer:
            self.reader.dispose()


def unpooled_engine(url: str) -> Engine:
    """An engine without a pool, for one-shot tools such as migration tests."""
    return create_engine(url, poolclass=NullPool)
