"""Shared pytest fixtures.

* ``shared_data``: the real-market-data folder ``../shared/data`` (relative to the repo root);
  tests using it are skipped when it is absent. Never copy its files into the project.
* ``sample_dir``: the deterministic sample CSVs (``backtests.sample_data`` defaults), generated
  once per session into a temporary folder. Read-only for tests.
* ``sample_catalog``: those CSVs imported into a ParquetDataCatalog, once per session. Read-only
  for tests (import into your own ``tmp_path`` catalog to modify one).
* ``db_url``: a journal database URL, once for SQLite and once for the local PostgreSQL (a schema
  of its own, dropped afterwards; skipped with a reason only when the server is not reachable).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = (REPO_ROOT / ".." / "shared" / "data").resolve()
    if not path.is_dir():
        pytest.skip("../shared/data not present: real-market-data tests need the shared data folder")
    return path


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from backtests.sample_data import generate_sample

    out = tmp_path_factory.mktemp("sample")
    generate_sample(out)
    return out


@pytest.fixture(scope="session")
def sample_catalog(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from backtests.catalog_io import import_files

    catalog = tmp_path_factory.mktemp("sample_catalog") / "catalog"
    import_files(catalog, sorted(sample_dir.glob("*_1min.csv")), tz=None, label="open")
    return catalog


PG_URL = os.environ.get("JOURNAL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PG_SKIP_REASON = "PostgreSQL not reachable at 127.0.0.1:5432"
_pg_state: dict[str, bool] = {}


def _pg_reachable() -> bool:
    if "ok" not in _pg_state:
        engine = sa.create_engine(PG_URL, connect_args={"connect_timeout": 3})
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql("select 1")
            _pg_state["ok"] = True
        except Exception:  # noqa: BLE001
            _pg_state["ok"] = False
        finally:
            engine.dispose()
    return _pg_state["ok"]


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'db' / 'journal.db'}"
        return
    if not _pg_reachable():
        pytest.skip(PG_SKIP_REASON)
    schema = f"journal_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql("SET lock_timeout = '10s'")
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()
