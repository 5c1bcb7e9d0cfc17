"""Kill switch (PRD-135): halts new trading when one of the seed's five triggers fires.

Triggers, evaluated by ``check(account)`` in this order (reason codes first in the reason):

    daily_loss_limit     account.daily_pnl <= -daily_loss_limit x account.starting_equity
    manual               activate("manual: ...") from the dashboard (not evaluated by check)
    broker_disconnected  account.as_of - account.last_broker_contact > api_timeout_seconds
                         (skipped when either time is unknown)
    min_equity           account.equity < min_account_equity
    consecutive_losses   each of the last consecutive_loss_threshold (3) closed trades lost MORE
                         than consecutive_loss_pct (3 %) of the account equity at the time of the
                         trade: the last N entries of account.recent_trade_losses_vs_equity
                         (oldest first; each ``trade_loss_vs_equity(pnl, equity_before)``, 0.0 for
                         a winner) are all > consecutive_loss_pct. A winner or a small loss in
                         between resets the count. (account.recent_trade_pnl_pcts — pnl over the
                         position's cost — is informational and not read here: a full stop-out
                         risks ~5 % of equity but only a few % of the position's cost.)

Once active it stays active (``check`` keeps returning True) until ``deactivate()``; activating an
active switch keeps the first reason and time (what tripped it first). Pure: the activation time
is the ``now`` given to ``activate`` or the account snapshot's ``as_of`` — never the wall clock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from strategies.trade_executor.models import AccountState, ExecutorConfig
from strategies.trade_executor.timeutil import finite

KILL_SWITCH_CODES: tuple[str, ...] = (
    "daily_loss_limit", "manual", "broker_disconnected", "min_equity", "consecutive_losses",
    "broker_account",  # activated by the shell when the broker reports the account blocked / not ACTIVE
)


def trade_loss_vs_equity(pnl: float, equity_before: float) -> float:
    """A closed trade's loss as a fraction of the account equity before its P&L, for
    ``AccountState.recent_trade_losses_vs_equity``: ``max(0, -pnl) / equity_before``.

    ``pnl``: the round trip's net P&L in account currency (fees included; negative = loss).
    ``equity_before``: the account equity at the time of the trade, before this P&L (equity at
    the entry, or equity just after the close minus ``pnl``).
    Examples: (-3_500, 100_000) -> 0.035; (-2_500, 100_000) -> 0.025; (+1_200, 100_000) -> 0.0.
    Raises ValueError for a non-finite pnl or a non-finite / non-positive equity_before.
    """
    loss = -finite(pnl, "pnl")
    return max(0.0, loss) / finite(equity_before, "equity_before", positive=True)


class KillSwitch:
    def __init__(self, config: ExecutorConfig | None = None) -> None:
        self.config = config if config is not None else ExecutorConfig()
        self._active = False
        self._reason: str | None = None
        self._activated_at: datetime | None = None
        self.history: list[dict[str, Any]] = []  # activations and deactivations, in order

    # ── state ────────────────────────────────────────────────────────────────────────────────
    @property
    def is_active(self) -> bool:
        return self._active

    @property
    def reason(self) -> str | None:
        return self._reason

    @property
    def activated_at(self) -> datetime | None:
        return self._activated_at

    @property
    def code(self) -> str | None:
        return self._reason.split(":", 1)[0] if self._reason else None

    def activate(self, reason: str, *, now: datetime | None = None) -> None:
        """Halt trading. ``reason`` should start with a code (e.g. ``"manual: paused by user"``)."""
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError(f"reason must be a non-empty string, got {reason!r}")
        if self._active:
            self.history.append({"event": "activate_ignored", "reason": reason,
                                 "at": now.isoformat() if now else None})
            return
        self._active = True
        self._reason = reason
        self._activated_at = now
        self.history.append({"event": "activate", "reason": reason,
                             "at": now.isoformat() if now else None})

    def deactivate(self, *, now: datetime | None = None) -> None:
        """Re-enable trading (manual)."""
        if self._active:
            self.history.append({"event": "deactivate", "reason": self._reason,
                                 "at": now.isoformat() if now else None})
        self._active = False
        self._reason = None
        self._activated_at = None

    # ── triggers ─────────────────────────────────────────────────────────────────────────────
    def triggers(self, account: AccountState) -> list[str]:
        """Every automatic trigger that holds for ``account`` (reasons with numbers), no side
        effects."""
        cfg = self.config
        out: list[str] = []
        starting = float(account.starting_equity if account.starting_equity is not None
                         else account.equity)
        limit = cfg.daily_loss_limit * starting
        if account.daily_pnl <= -limit + 1e-9 * max(1.0, abs(limit)):
            out.append(
                f"daily_loss_limit: daily P&L {account.daily_pnl:,.2f} <= -{limit:,.2f} "
                f"({cfg.daily_loss_limit:.1%} of starting equity {starting:,.2f})"
            )
        if account.as_of is not None and account.last_broker_contact is not None:
            silent = (account.as_of - account.last_broker_contact).total_seconds()
            if silent > cfg.api_timeout_seconds:
                out.append(
                    f"broker_disconnected: no broker contact for {silent:.0f}s "
                    f"(> {cfg.api_timeout_seconds}s; last {account.last_broker_contact.isoformat()})"
                )
        if account.equity < cfg.min_account_equity:
            out.append(
                f"min_equity: equity {account.equity:,.2f} < minimum {cfg.min_account_equity:,.2f}"
            )
        n = cfg.consecutive_loss_threshold
        recent = list(account.recent_trade_losses_vs_equity)[-n:]
        if len(recent) >= n and all(p > cfg.consecutive_loss_pct for p in recent):
            pcts = ", ".join(f"{p:.2%}" for p in recent)
            out.append(
                f"consecutive_losses: last {n} trades each lost more than "
                f"{cfg.consecutive_loss_pct:.1%} of equity (losses {pcts} of equity)"
            )
        return out

    def check(self, account: AccountState) -> bool:
        """True when trading must halt: already active, or a trigger fires now (then it activates
        with the first trigger's reason, at ``account.as_of``)."""
        if self._active:
            return True
        fired = self.triggers(account)
        if fired:
            self.activate(fired[0], now=account.as_of)
            return True
        return False


__all__ = ["KILL_SWITCH_CODES", "KillSwitch", "trade_loss_vs_equity"]
