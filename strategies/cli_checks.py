"""The CLI's error model: settings, paths and URLs checked up front (before any data is read),
and the mapping of an exception to the one line a user sees (``UserError``: exit 2; anything not
recognised here is an internal error, exit 1, with a traceback only under ``--debug``)."""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

class UserError(ValueError):
    """A user error (configuration, file, URL, database, data): one line on stderr, exit 2."""


_NON_FINITE = {"nan": math.nan, "inf": math.inf, "+inf": math.inf, "-inf": -math.inf,
               "infinity": math.inf, "+infinity": math.inf, "-infinity": -math.inf}


def _parse_overrides(pairs: list[str]) -> dict:
    """--set key=value (value parsed as JSON when it parses, "nan"/"inf"/"-inf" as floats, else
    kept as a string; the ExecutorConfig schema then refuses what does not fit)."""
    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise UserError(f"--set expects key=value, got {pair!r} (e.g. --set max_risk_per_trade=0.02)")
        k, v = pair.split("=", 1)
        if v.strip().lower() in _NON_FINITE:
            out[k.strip()] = _NON_FINITE[v.strip().lower()]
            continue
        try:
            out[k.strip()] = json.loads(v)
        except json.JSONDecodeError:
            out[k.strip()] = v
    return out


def _executor_overrides(pairs: list[str], modes: list[str]) -> dict:
    """The --set overrides, checked up front against ExecutorConfig (its msgspec schema: names,
    types, ranges, finiteness) for every instrument mode of the run, before any data is read."""
    import difflib

    from strategies.trade_executor.models import ExecutorConfig

    over = _parse_overrides(pairs)
    fields = list(ExecutorConfig.__dataclass_fields__)
    for k in over:
        if k not in fields:
            close = difflib.get_close_matches(k, fields, n=3, cutoff=0.6)
            hint = f"did you mean {' or '.join(close)}?" if close else \
                "`trade-executor config` lists every setting"
            raise UserError(f"--set {k}: unknown executor setting; {hint}")
    from strategies.trade_executor.models import InstrumentMode

    choices = [m.value for m in InstrumentMode]
    for mode in modes or [None]:
        if mode is not None and mode not in choices:
            raise UserError(f"--mode {mode}: unknown instrument mode; use one of {', '.join(choices)}")
        values = dict(over)
        if mode is not None:
            values = {"instrument_mode": mode, **values}
        try:
            ExecutorConfig(**values)
        except (ValueError, TypeError) as e:
            where = "--mode" if str(e).startswith("instrument_mode") and "instrument_mode" not in over else "--set"
            raise UserError(f"{where} {e}") from None
    return over


def _check_cash(cash: float) -> None:
    if not (isinstance(cash, (int, float)) and math.isfinite(cash) and cash > 0):
        raise UserError(f"--cash {cash:g}: starting equity must be a positive, finite amount of USD "
                        "(e.g. --cash 100000)")


def _check_out_dir(path: str | Path | None, flag: str) -> None:
    """An output folder must be a folder (or creatable as one) and writable, checked before the
    run so a bad path fails at once with nothing written."""
    if path is None:
        return
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UserError(f"{flag} {p}: is a file, not a folder; choose a folder path")
    anc = p
    while not anc.exists():
        if anc.parent == anc:
            break
        anc = anc.parent
    if anc.exists() and not anc.is_dir():
        raise UserError(f"{flag} {p}: {anc} is a file, so the folder cannot be created; choose another path")
    if anc.exists() and not os.access(anc, os.W_OK | os.X_OK):
        raise UserError(f"{flag} {p}: {anc} is not writable; choose a folder you can write to")


def _check_out_file(path: str | Path | None, flag: str) -> None:
    if path is None:
        return
    p = Path(path)
    if p.is_dir():
        raise UserError(f"{flag} {p}: is a folder, not a file; give a file path")
    _check_out_dir(p.parent, flag)


def _check_catalog(path: str | Path, flag: str = "--catalog") -> None:
    p = Path(path)
    if not p.exists():
        raise UserError(f"{flag} {p}: no such catalog folder; import bars first "
                        "(trade-executor data import FILES --catalog DIR --tz UTC)")
    if not p.is_dir():
        raise UserError(f"{flag} {p}: is a file, not a catalog folder; give the folder data import wrote")


def _redact_url(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - unparsable: show it without anything after '@'-style credentials
        return url.split("@", 1)[-1] if "@" in url else url


def _check_db_url(url: str | None, flag: str = "--db", *, connect: bool = True) -> None:
    """A database URL must parse, name an installed driver and (server databases, when
    ``connect``) answer; checked before any data is read."""
    if url is None:
        return
    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

    shown = _redact_url(url)
    try:
        u = make_url(url)
        dialect = u.get_dialect()
    except NoSuchModuleError:  # (an ArgumentError: first)
        raise UserError(f"{flag} {shown}: unknown database driver {make_url(url).drivername!r}; "
                        "use sqlite:///PATH or postgresql://...") from None
    except ArgumentError:
        raise UserError(f"{flag} {shown}: not a database URL; use e.g. sqlite:///data/executor.db "
                        "or postgresql://user:pass@host/db") from None
    try:
        (dialect.import_dbapi if hasattr(dialect, "import_dbapi") else dialect.dbapi)()
    except ImportError as e:
        raise UserError(f"{flag} {shown}: database driver not installed ({e}); "
                        "use sqlite:///PATH or postgresql://...") from None
    if u.get_backend_name() == "sqlite":
        db = u.database or ""
        if db and db != ":memory:" and not db.startswith("file:"):
            p = Path(db).expanduser()
            if p.is_dir():
                raise UserError(f"{flag} {shown}: {p} is a folder, not a SQLite file")
            _check_out_dir(p.parent, flag)
        return
    if not connect:
        return
    from strategies.journal import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as c:
            c.execute(text("SELECT 1"))
    except SQLAlchemyError as e:
        raise UserError(f"{flag} {shown}: cannot connect ({_sql_error_text(e)}); "
                        "check the URL and that the database server is running") from None
    finally:
        engine.dispose()


def _sql_error_text(e: BaseException) -> str:
    orig = getattr(e, "orig", None)
    text = str(orig) if orig is not None else str(e).split("\n(Background on this error", 1)[0]
    return _one_line(text)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _parse_pairs(pairs: list[str], flag: str, value=str) -> dict:
    """FUND=VALUE pairs (keys upper-cased)."""
    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ValueError(f"{flag} expects FUND=VALUE, got {pair!r}")
        k, v = pair.split("=", 1)
        try:
            out[k.strip().upper()] = value(v.strip())
        except ValueError:
            raise ValueError(f"{flag}: bad value in {pair!r}") from None
    return out


def _user_error(e: BaseException, args: argparse.Namespace) -> str | None:
    """The one-line message of a user error (configuration, file, URL, database, data), None for
    an internal error."""
    import errno
    import gzip
    import zlib

    from sqlalchemy.exc import SQLAlchemyError

    if isinstance(e, SQLAlchemyError):
        from strategies.journal import database_url

        url = database_url(getattr(args, "db", None) or getattr(args, "url", None))
        return (f"database {_redact_url(str(url))}: {_sql_error_text(e)}; check the URL (--db / --url / "
                "$DATABASE_URL), that the server is running and that the journal is migrated "
                "(trade-executor db upgrade)")
    if isinstance(e, (EOFError, gzip.BadGzipFile, zlib.error)):
        files = getattr(args, "files", None) or []
        where = f" in {', '.join(map(str, files))}" if files else ""
        return f"truncated or corrupt compressed data{where} ({_one_line(e)}); re-create or re-download the file"
    if isinstance(e, OSError):
        name = e.filename if e.filename is not None else None
        if e.errno == errno.ENOSPC:
            return (f"no space left on device{f' writing {name}' if name else ''}; free some space or "
                    "write to another disk (--out / --catalog)")
        what = e.strerror or _one_line(e)
        return f"{name}: {what}" if name else what
    if isinstance(e, KeyError):
        return _one_line(e.args[0] if e.args else e)
    try:
        import msgspec

        if isinstance(e, msgspec.ValidationError):
            return f"invalid settings: {_one_line(e)}"
    except ImportError:  # pragma: no cover
        pass
    if isinstance(e, (ValueError, LookupError)):
        return _one_line(e)
    return None
