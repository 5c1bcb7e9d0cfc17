"""Security check (CI runs it with the rest of the suite): bandit over strategies/, adapters/
(the fake Alpaca server included) and backtests/, configured in pyproject.toml ([tool.bandit]).

Medium and high findings fail; low ones are only reported. A finding that cannot be fixed carries
an inline ``# nosec BXXX`` with a one-line reason on the flagged line (e.g. the alert webhook's
``urlopen``: B310, its scheme is checked to be http(s) first).
"""

from __future__ import annotations

import json
import subprocess  # nosec B404 - runs the bandit CLI of this venv, fixed arguments
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
TARGETS = ("strategies", "adapters", "backtests")


def _bandit(*extra: str) -> tuple[int, dict]:
    pytest.importorskip("bandit", reason="bandit is in the test extras: pip install -e '.[test]'")
    cmd = [sys.executable, "-m", "bandit", "-c", "pyproject.toml", "-r", *TARGETS,
           "--severity-level", "medium", "--confidence-level", "low", "-f", "json", "-q", *extra]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)  # nosec B603
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"bandit did not report JSON (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc.returncode, report


def test_no_medium_or_high_bandit_findings() -> None:
    rc, report = _bandit()
    findings = [f"{r['filename']}:{r['line_number']} {r['test_id']} ({r['issue_severity']}): {r['issue_text']}"
                for r in report["results"]]
    assert not findings, "bandit findings (fix them, or '# nosec BXXX - reason' on the line):\n" + \
        "\n".join(findings)
    assert not report.get("errors"), report["errors"]
    assert rc == 0
    scanned = report["metrics"]["_totals"]["loc"]
    assert scanned > 10_000  # the three packages were really scanned


def test_every_nosec_names_its_test_and_a_reason() -> None:
    """A bare ``# nosec`` would silence every check on its line: each names the check(s) it
    silences and says why (the text after them, or the comment line above)."""
    bad = []
    for pkg in TARGETS:
        for path in (REPO_ROOT / pkg).rglob("*.py"):
            lines = path.read_text(encoding="utf-8").splitlines()
            for i, line in enumerate(lines):
                if "# nosec" not in line:
                    continue
                tail = line.split("# nosec", 1)[1].strip()
                codes = tail.split()[0] if tail else ""
                has_reason = len(tail.split(None, 1)) > 1 or (i > 0 and lines[i - 1].strip().startswith("#"))
                if not codes.startswith("B") or not has_reason:
                    bad.append(f"{path.relative_to(REPO_ROOT)}:{i + 1}: {line.strip()}")
    assert not bad, "nosec without a check id and a reason:\n" + "\n".join(bad)
