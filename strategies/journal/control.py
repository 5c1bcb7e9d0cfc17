"""Operator control state in ``executor_control``: the kill-switch latch and the instrument mode.

``ControlStore`` gets and sets keys whose values are JSON (``value_json``), scoped per executor:
``scope`` None is the live executor's own keys (``kill_switch``), a backtest uses e.g.
``"bt-<run id>"`` (keys ``"<scope>:kill_switch"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from strategies.journal.db import make_engine
from strategies.journal.models import ExecutorControlRecord, json_value
from strategies.journal.records import _aware

KILL_SWITCH_KEY = "kill_switch"
INSTRUMENT_MODE_KEY = "instrument_mode"


@dataclass(frozen=True)
class KillSwitchLatch:
    active: bool
    reason: str | None = None
    activated_at: datetime | None = None


class ControlStore:
    """Get/set of ``executor_control`` keys (operator state that outlives a process).

    ``now`` defaults to the wall clock: ``updated_at`` / ``activated_at`` are bookkeeping of
    operator actions (CLI, dashboard), not inputs of trading logic.
    """

    def __init__(self, engine_or_url: Engine | str | None = None, *, scope: str | None = None) -> None:
        """``scope`` keeps executors apart in one database: None is the live executor's own keys
        (``kill_switch``), a backtest uses e.g. ``"bt-<run id>"`` (keys ``"<scope>:kill_switch"``)."""
        if scope is not None and (not isinstance(scope, str) or not scope.strip() or ":" in scope
                                  or len(scope) > 40):
            raise ValueError(f"scope must be a non-empty string of <= 40 characters without ':', got {scope!r}")
        self.scope = scope
        if isinstance(engine_or_url, Engine):
            self.engine, self._owns_engine = engine_or_url, False
        else:
            self.engine, self._owns_engine = make_engine(engine_or_url), True
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def key_for(self, name: str) -> str:
        return name if self.scope is None else f"{self.scope}:{name}"

    def get(self, key: str, default: Any = None) -> Any:
        """The JSON value of ``key`` (dict, list, str, number, bool), ``default`` when unset."""
        with self._sessions() as s:
            rec = s.get(ExecutorControlRecord, key)
            return default if rec is None else rec.value_json

    def get_record(self, key: str) -> ExecutorControlRecord | None:
        with self._sessions() as s:
            return s.get(ExecutorControlRecord, key)

    def set(self, key: str, value: Any, *, updated_by: str | None = None, now: datetime | None = None) -> None:
        """Set ``key`` to ``value`` (any JSON-able value but None; made JSON-safe by ``json_value``)."""
        value = json_value(value)
        if value is None:
            raise ValueError(f"value of {key!r} must not be None (delete the key instead)")
        ts = _aware("now", now) if now is not None else datetime.now(timezone.utc)
        ExecutorControlRecord(key=key, value_json=value, updated_at=ts, updated_by=updated_by)  # validate
        for attempt in range(3):
            try:
                with self._sessions() as s, s.begin():
                    rec = s.get(ExecutorControlRecord, key)
                    if rec is None:
                        s.add(ExecutorControlRecord(key=key, value_json=value, updated_at=ts, updated_by=updated_by))
                    else:
                        rec.value_json, rec.updated_at, rec.updated_by = value, ts, updated_by
                return
            except SQLAlchemyError:
                if attempt == 2:
                    raise  # e.g. two processes inserting the same new key: the retry updates

    def delete(self, key: str) -> None:
        with self._sessions() as s, s.begin():
            rec = s.get(ExecutorControlRecord, key)
            if rec is not None:
                s.delete(rec)

    def scopes(self) -> set[str | None]:
        """The scopes with at least one key in executor_control (None: the live executor's)."""
        with self._sessions() as s:
            keys = s.scalars(select(ExecutorControlRecord.key)).all()
        return {k.split(":", 1)[0] if ":" in k else None for k in keys}

    def scope_known(self) -> bool:
        """True when executor_control has a key of this store's scope (an executor or operator
        has used it); the CLI refuses an unknown scope unless told to create it."""
        prefix = None if self.scope is None else f"{self.scope}:"
        with self._sessions() as s:
            keys = s.scalars(select(ExecutorControlRecord.key)).all()
        return any((":" not in k) if prefix is None else k.startswith(prefix) for k in keys)

    # kill switch latch
    def kill_switch(self) -> KillSwitchLatch:
        v = self.get(self.key_for(KILL_SWITCH_KEY))
        if not v:
            return KillSwitchLatch(False)
        at = v.get("activated_at")
        return KillSwitchLatch(bool(v.get("active")), v.get("reason"),
                               datetime.fromisoformat(at) if at else None)

    def activate_kill_switch(self, reason: str, *, now: datetime | None = None, by: str | None = None) -> KillSwitchLatch:
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError(f"reason must be a non-empty string, got {reason!r}")
        ts = _aware("now", now) if now is not None else datetime.now(timezone.utc)
        self.set(self.key_for(KILL_SWITCH_KEY), {"active": True, "reason": reason, "activated_at": ts.isoformat()},
                 updated_by=by, now=ts)
        return KillSwitchLatch(True, reason, ts)

    def deactivate_kill_switch(self, *, now: datetime | None = None, by: str | None = None) -> KillSwitchLatch:
        prev = self.kill_switch()
        self.set(self.key_for(KILL_SWITCH_KEY), {"active": False, "reason": prev.reason,
                                                 "activated_at": prev.activated_at.isoformat()
                                                 if prev.activated_at else None},
                 updated_by=by, now=now)
        return KillSwitchLatch(False, prev.reason, prev.activated_at)

    # instrument mode
    def instrument_mode(self) -> str | None:
        return self.get(self.key_for(INSTRUMENT_MODE_KEY))

    def set_instrument_mode(self, mode: str, *, now: datetime | None = None, by: str | None = None) -> str:
        from strategies.trade_executor.models import InstrumentMode

        try:
            value = InstrumentMode(mode).value
        except ValueError:
            raise ValueError(f"instrument_mode must be one of {[m.value for m in InstrumentMode]}, "
                             f"got {mode!r}") from None
        self.set(self.key_for(INSTRUMENT_MODE_KEY), value, updated_by=by, now=now)
        return value

    def close(self) -> None:
        if self._owns_engine:
            self.engine.dispose()


__all__ = ["INSTRUMENT_MODE_KEY", "KILL_SWITCH_KEY", "ControlStore", "KillSwitchLatch"]
