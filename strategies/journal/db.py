"""Database URL, engines and Alembic migrations of the trade journal.

* ``database_url(explicit=None)``: ``explicit`` > ``$DATABASE_URL`` > ``sqlite:///<repo>/data/executor.db``.
* ``make_engine(url)``: an Engine; for SQLite files the parent directory is created and every
  connection is set to WAL mode, ``busy_timeout``, ``foreign_keys=ON`` and ``synchronous=FULL``
  (a committed transaction survives a process crash and a power loss). PostgreSQL sessions run
  in UTC (``DateTime`` columns hold naive UTC, see models.py).
* ``upgrade(url, revision="head")`` / ``downgrade(url, revision)`` / ``current_revision(url)``:
  Alembic's command API with the project's ``alembic.ini``, found relative to this package so it
  works from any working directory.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
ALEMBIC_INI = REPO_ROOT / "alembic.ini"
DEFAULT_DB_PATH = REPO_ROOT / "data" / "executor.db"
SQLITE_BUSY_TIMEOUT_MS = 10_000


def default_url() -> str:
    return f"sqlite:///{DEFAULT_DB_PATH}"


def database_url(explicit: str | None = None) -> str:
    """The database URL: ``explicit`` if given, else ``$DATABASE_URL``, else the default SQLite file."""
    if explicit:
        return str(explicit)
    env = os.environ.get("DATABASE_URL", "").strip()
    if env:
        return env
    return default_url()


def _normalise(url: str) -> str:
    """``postgresql://`` / ``postgres://`` mean psycopg 3 here (psycopg2 is not installed)."""
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


def is_sqlite(url_or_engine: str | Engine) -> bool:
    name = url_or_engine.dialect.name if isinstance(url_or_engine, Engine) else make_url(url_or_engine).get_backend_name()
    return name == "sqlite"


def make_engine(url: str | None = None, *, synchronous: str = "FULL", echo: bool = False) -> Engine:
    """Engine for ``database_url(url)``, configured as described in the module docstring."""
    url = _normalise(database_url(url))
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        db = u.database or ""
        memory = db in ("", ":memory:") or db.startswith("file::memory:") or "mode=memory" in str(u.query)
        if not memory:
            Path(db).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False})
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous must be OFF/NORMAL/FULL/EXTRA, got {synchronous!r}")

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001
            cur = dbapi_conn.cursor()
            try:
                if not memory:
                    cur.execute("PRAGMA journal_mode=WAL")
                cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.execute(f"PRAGMA synchronous={synchronous.upper()}")
            finally:
                cur.close()

        return engine

    connect_args: dict = {}
    if u.get_backend_name() == "postgresql":
        # sessions in UTC: func.now() defaults land as naive UTC like everything else
        opts = u.query.get("options", "")
        if isinstance(opts, tuple):
            opts = " ".join(opts)
        connect_args["options"] = f"{opts} -c timezone=UTC".strip()
    return create_engine(url, echo=echo, pool_pre_ping=True, connect_args=connect_args)


# ── migrations ────────────────────────────────────────────────────────────────────────────────


def alembic_config(url: str | None = None):  # noqa: ANN201  (alembic.config.Config)
    """An Alembic Config for the project's migrations, pointed at ``database_url(url)``.

    The URL travels as ``config.attributes["url"]`` (read by alembic/env.py), so passwords with
    ``%`` need no ini-escaping.
    """
    from alembic.config import Config

    cfg = Config(str(ALEMBIC_INI))
    cfg.set_main_option("script_location", str(REPO_ROOT / "alembic"))
    cfg.attributes["url"] = _normalise(database_url(url))
    cfg.attributes["configure_logger"] = False
    return cfg


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Migrate ``database_url(url)`` up to ``revision``."""
    from alembic import command

    if is_sqlite(_normalise(database_url(url))):
        make_engine(url).dispose()  # creates the parent directory, switches the file to WAL
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str | None, revision: str) -> None:
    """Migrate ``database_url(url)`` down to ``revision`` (``"base"`` removes every table)."""
    from alembic import command

    command.downgrade(alembic_config(url), revision)


def current_revision(url: str | None = None) -> str | None:
    """The revision the database is at (None when never migrated)."""
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


__all__ = [
    "ALEMBIC_INI",
    "DEFAULT_DB_PATH",
    "REPO_ROOT",
    "alembic_config",
    "current_revision",
    "database_url",
    "default_url",
    "downgrade",
    "is_sqlite",
    "make_engine",
    "upgrade",
]
