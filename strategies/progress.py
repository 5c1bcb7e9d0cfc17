"""Progress bars for long runs (import, backtest, compare, live warm-up), drawn with ``rich``.

One place decides whether a bar is drawn: never with ``quiet``, and never when the console
(stderr by default) is not a terminal -- a log file, a pipe, CI or a test sees nothing, not even
a final line. Each bar shows what it counts, a percentage, ``done/total``, the rate (``bars/s``,
``rows/s``) and the ETA.

Usage::

    with ProgressBars(quiet=args.quiet) as bars:
        task = bars.task("backtest QQQ,SPY", total=n, unit="bars")
        task.advance(5_000, note="2025-06-17")

A disabled ``ProgressBars`` hands out no-op tasks, so callers never branch on it. Work in other
processes (compare's spawned workers) reports through a picklable ``QueueReporter``: the parent
drains the queue into its bars (``ProgressBars.drain``).
"""

from __future__ import annotations

import queue as _queue
import threading
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class RateColumn(ProgressColumn):
    """``12,345 bars/s`` (the task's ``unit`` field); blank until rich has a speed estimate."""

    def render(self, task) -> Text:  # noqa: ANN001 - rich's Task
        unit = task.fields.get("unit", "it")
        speed = task.finished_speed or task.speed
        if speed is None:
            return Text(f"- {unit}/s", style="progress.data.speed")
        return Text(f"{speed:,.0f} {unit}/s", style="progress.data.speed")


class EtaColumn(ProgressColumn):
    """``ETA 0:00:12`` while running (``ETA -`` until an estimate exists), ``done`` at the end."""

    def render(self, task) -> Text:  # noqa: ANN001
        if task.finished:
            return Text("done", style="progress.elapsed")
        remaining = TimeRemainingColumn().render(task)
        return Text(f"ETA {remaining.plain}", style="progress.remaining")


def stderr_console() -> Console:
    return Console(stderr=True)


def progress_enabled(quiet: bool = False, console: Console | None = None) -> bool:
    """Whether to draw: not ``quiet`` and the console is a terminal."""
    if quiet:
        return False
    return bool((console or stderr_console()).is_terminal)


class _NoTask:
    """What a disabled ``ProgressBars`` hands out: every call does nothing."""

    def advance(self, n: float = 1, note: str | None = None) -> None:
        return None

    def update(self, completed: float | None = None, total: float | None = None, note: str | None = None) -> None:
        return None

    def finish(self) -> None:
        return None


class BarTask:
    """One bar of a ``ProgressBars``."""

    def __init__(self, progress: Progress, task_id: Any):
        self._p = progress
        self._id = task_id

    def advance(self, n: float = 1, note: str | None = None) -> None:
        kw = {} if note is None else {"note": note}
        self._p.update(self._id, advance=n, **kw)

    def update(self, completed: float | None = None, total: float | None = None, note: str | None = None) -> None:
        kw: dict[str, Any] = {}
        if completed is not None:
            kw["completed"] = completed
        if total is not None:
            kw["total"] = total
        if note is not None:
            kw["note"] = note
        self._p.update(self._id, **kw)

    def finish(self) -> None:
        t = self._p.tasks[[x.id for x in self._p.tasks].index(self._id)]
        total = t.total if t.total is not None else t.completed
        self._p.update(self._id, total=max(total, t.completed), completed=max(total, t.completed))
        self._p.stop_task(self._id)


class ProgressBars:
    """A context manager drawing rich progress bars on stderr when enabled (see module doc)."""

    def __init__(self, *, quiet: bool = False, console: Console | None = None, enabled: bool | None = None):
        self.console = console or stderr_console()
        self.enabled = progress_enabled(quiet, self.console) if enabled is None else enabled
        self._progress: Progress | None = None
        self._tasks: dict[str, BarTask | _NoTask] = {}
        self._drainer: threading.Thread | None = None
        self._stop = threading.Event()

    def __enter__(self) -> ProgressBars:
        if self.enabled:
            self._progress = Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(bar_width=16),
                TaskProgressColumn(),
                RateColumn(),
                EtaColumn(),
                TextColumn("{task.fields[note]}"),
                console=self.console,
                transient=False,
                refresh_per_second=4,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._drainer is not None:
            self._drainer.join(timeout=2)
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def task(self, description: str, total: float | None = None, unit: str = "bars") -> BarTask | _NoTask:
        if self._progress is None:
            t: BarTask | _NoTask = _NoTask()
        else:
            t = BarTask(self._progress, self._progress.add_task(description, total=total, unit=unit, note=""))
        self._tasks[description] = t
        return t

    def named(self, description: str) -> BarTask | _NoTask | None:
        return self._tasks.get(description)

    # -- work in other processes -------------------------------------------------------------

    def drain(self, q: Any, unit: str = "bars") -> None:
        """Follow a queue of ``(label, done, total, note)`` messages (``QueueReporter``) in a
        background thread until the context exits; a new label opens a new bar."""

        def loop() -> None:
            while True:
                try:
                    label, done, total, note, *rest = q.get(timeout=0.1)
                except _queue.Empty:
                    if self._stop.is_set():
                        return
                    continue
                except (EOFError, OSError):  # the manager went away
                    return
                task = self._tasks.get(label) or self.task(label, total=total, unit=rest[0] if rest else unit)
                task.update(completed=done, total=total, note=note)
                if total and done >= total:
                    task.finish()

        self._drainer = threading.Thread(target=loop, name="progress-drain", daemon=True)
        self._drainer.start()


class QueueReporter:
    """A picklable progress callback for work in another process: ``reporter(label, done, total,
    note)`` puts the numbers on a queue that ``ProgressBars.drain`` follows."""

    def __init__(self, q: Any):
        self.q = q

    def __call__(self, label: str, done: float, total: float | None, note: str = "", unit: str = "bars") -> None:
        try:
            self.q.put((label, done, total, note, unit))
        except (EOFError, OSError, BrokenPipeError):  # the parent is gone: nothing to show
            pass


class CallbackTask:
    """A task-like object forwarding to a ``QueueReporter``-style callback under one label."""

    def __init__(self, report: Any, label: str, total: float | None, unit: str = "bars"):
        self.report = report
        self.unit = unit
        self.label = label
        self.total = total
        self.done = 0.0
        self.note = ""

    def advance(self, n: float = 1, note: str | None = None) -> None:
        self.done += n
        if note is not None:
            self.note = note
        self._send(self.done, self.total)

    def update(self, completed: float | None = None, total: float | None = None, note: str | None = None) -> None:
        if completed is not None:
            self.done = completed
        if total is not None:
            self.total = total
        if note is not None:
            self.note = note
        self._send(self.done, self.total)

    def finish(self) -> None:
        total = self.total if self.total is not None else self.done
        self._send(total, total)

    def _send(self, done: float, total: float | None) -> None:
        if self.unit == "bars":  # plain callbacks (label, done, total, note) work too
            self.report(self.label, done, total, self.note)
        else:
            self.report(self.label, done, total, self.note, self.unit)


__all__ = ["BarTask", "CallbackTask", "ProgressBars", "QueueReporter", "progress_enabled", "stderr_console"]
