"""The layering contracts of pyproject.toml ([tool.importlinter]), enforced on every test run:
the functional core imports neither NautilusTrader nor a database nor the shells; live trading
does not import the backtest package; the adapters never import the application; the venues' fee
schedule is pure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_layering_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    assert len(contracts) >= 4  # core, live vs backtests, adapters, fee schedule (+ any added since)
    assert f"Contracts: {len(contracts)} kept, 0 broken." in proc.stdout, proc.stdout


def test_a_broken_contract_is_detected(tmp_path):
    """The check can fail: a core module importing NautilusTrader breaks the first contract."""
    pkg = tmp_path / "strategies" / "trade_executor"
    pkg.mkdir(parents=True)
    (tmp_path / "strategies" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("import nautilus_trader\n")
    (tmp_path / "pyproject.toml").write_text(
        "[tool.importlinter]\nroot_packages = [\"strategies\"]\ninclude_external_packages = true\n\n"
        "[[tool.importlinter.contracts]]\nname = \"core is pure\"\ntype = \"forbidden\"\n"
        "source_modules = [\"strategies.trade_executor\"]\nforbidden_modules = [\"nautilus_trader\"]\n")
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(lint), "--config", str(tmp_path / "pyproject.toml")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert proc.returncode != 0 and "1 broken" in proc.stdout, proc.stdout + proc.stderr
