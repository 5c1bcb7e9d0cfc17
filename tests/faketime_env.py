"""A child process on a placed and compressed clock: libfaketime (Debian package ``libfaketime``)
plus a small shim this module compiles with the system C compiler.

Why the shim: libfaketime 0.9.10 fakes ``CLOCK_MONOTONIC`` (so asyncio, NautilusTrader's timers
and ``time.sleep`` all run compressed, measured: a 10 s LiveClock timer fires every 10 simulated
seconds) but does not wrap ``sem_clockwait``, which CPython 3.12 uses for every timed lock wait
(``threading.Event.wait(t)``, ``queue.Queue.get(timeout=t)``, ``Lock.acquire(timeout=t)``): the
deadline computed on the faked clock is waited for on the real one, so a 8 s ``Event.wait`` under
``x80`` did not return within 15 real seconds. The shim translates the deadline
(real deadline = real now + (deadline - faked now) / rate); with it every timed wait measured
8.0 simulated seconds.

``faketime_env(start, rate)`` returns the environment for ``subprocess`` (``None`` with a reason
when the library or a compiler is missing: the caller skips). The child must not start processes
of its own (each would begin its own faked clock at its own start).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess  # nosec B404 - the system C compiler, fixed arguments
import tempfile
from datetime import datetime, timezone
from pathlib import Path

LIB_DIRS = ("/usr/lib/x86_64-linux-gnu/faketime", "/usr/lib/aarch64-linux-gnu/faketime", "/usr/lib/faketime",
            "/usr/local/lib/faketime", "/usr/lib64/faketime")

SHIM_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <semaphore.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

typedef int (*sem_clockwait_fn)(sem_t *, clockid_t, const struct timespec *);

static double rate(void) {
    static double r = 0.0;
    if (r == 0.0) {
        const char *s = getenv("FTSHIM_RATE");
        r = (s && atof(s) > 0.0) ? atof(s) : 1.0;
    }
    return r;
}

int sem_clockwait(sem_t *sem, clockid_t clock, const struct timespec *abstime) {
    static sem_clockwait_fn real = NULL;
    if (!real) real = (sem_clockwait_fn)dlsym(RTLD_NEXT, "sem_clockwait");
    struct timespec fake_now, real_now, dl;
    clock_gettime(clock, &fake_now);               /* libfaketime's answer */
    syscall(SYS_clock_gettime, clock, &real_now);  /* the kernel's */
    double left = (double)(abstime->tv_sec - fake_now.tv_sec) + (abstime->tv_nsec - fake_now.tv_nsec) / 1e9;
    if (left < 0) left = 0;
    left /= rate();
    long long ns = (long long)real_now.tv_nsec + (long long)(left * 1e9);
    dl.tv_sec = real_now.tv_sec + (time_t)(ns / 1000000000LL);
    dl.tv_nsec = (long)(ns % 1000000000LL);
    return real(sem, clock, &dl);
}
"""


def find_libfaketime() -> Path | None:
    for d in LIB_DIRS:
        for name in ("libfaketimeMT.so.1", "libfaketime.so.1"):
            p = Path(d) / name
            if p.exists():
                return p
    return None


def build_shim(cache_dir: Path | None = None) -> Path | str:
    """The compiled shim (cached by source hash), or a reason string."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return "no C compiler (cc/gcc) to build the sem_clockwait shim"
    digest = hashlib.sha256(SHIM_C.encode()).hexdigest()[:12]
    cache = cache_dir or Path(tempfile.gettempdir()) / "trade-executor-ftshim"
    cache.mkdir(parents=True, exist_ok=True)
    so = cache / f"ftshim-{digest}.so"
    if so.exists():
        return so
    src = cache / f"ftshim-{digest}.c"
    src.write_text(SHIM_C)
    tmp = cache / f".ftshim-{digest}-{os.getpid()}.so"
    r = subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", str(tmp), str(src), "-ldl"],  # nosec B603
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        return f"building the sem_clockwait shim failed: {r.stderr.strip()[:300]}"
    tmp.replace(so)
    return so


def faketime_env(start: datetime, rate: float, base: dict | None = None) -> tuple[dict | None, str]:
    """Environment placing a child's clock at ``start`` (aware) running ``rate`` x real time."""
    lib = find_libfaketime()
    if lib is None:
        return None, "libfaketime is not installed (apt-get install libfaketime)"
    shim = build_shim()
    if isinstance(shim, str):
        return None, shim
    stamp = start.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    env = dict(os.environ if base is None else base)
    env.update({
        "LD_PRELOAD": f"{lib} {shim}",
        "FAKETIME": f"@{stamp} x{rate:g}",
        "FTSHIM_RATE": f"{rate:g}",
        "TZ": "UTC",  # libfaketime reads the "@" stamp in the local zone
        "PYTHONUNBUFFERED": "1",
    })
    return env, ""
