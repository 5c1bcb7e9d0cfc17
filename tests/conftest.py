"""Shared pytest fixtures.

* ``shared_data``: the real-market-data folder ``../shared/data`` (relative to the repo root);
  tests using it are skipped when it is absent. Never copy its files into the project.
* ``sample_dir``: the deterministic sample CSVs (``backtests.sample_data`` defaults), generated
  once per session into a temporary folder. Read-only for tests.
* ``sample_catalog``: those CSVs imported into a ParquetDataCatalog, once per session. Read-only
  for tests (import into your own ``tmp_path`` catalog to modify one).
"""

from __future__ import annotations

from pathlib import Path

import pytest

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
