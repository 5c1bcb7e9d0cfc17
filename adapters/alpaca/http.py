"""REST transport of the Alpaca execution client: alpaca-py's ``TradingClient`` with a request
timeout, NautilusTrader's ``RetryManagerPool`` for retries, and idempotent order submission.

* **One attempt** (``request``): the synchronous alpaca-py call runs in the default executor.
  Every answer from Alpaca (also a 4xx) counts as contact, a timeout / connection error / 5xx as
  no contact; ``on_contact(reached, detail)`` is told either way (BrokerStatus).
* **Retries** (``RetryManagerPool`` of ``nautilus_trader.live.retry``: exponential backoff with
  jitter, at most ``max_retries`` extra attempts) for transient errors only — timeout, connection
  error, 429 and 5xx. A 429 also waits the ``Retry-After`` it names. GETs are retried as such;
  writes are retried only where a repeat cannot duplicate anything (below).
* **Idempotent submit** (``submit_order``): the Nautilus ``ClientOrderId`` is Alpaca's
  ``client_order_id``. After a timeout / 5xx / connection error the order is first looked up
  (``GET /v2/orders:by_client_order_id``); it is sent again only when Alpaca provably does not
  have it. "client_order_id must be unique" means an earlier attempt landed: that order is
  adopted. A 4xx is ``AlpacaOrderRejected(confirmed=True)`` (Alpaca said no); retries used up,
  every lookup answering "absent", is ``AlpacaOrderRejected(confirmed=False)``; a lookup that
  cannot be made is ``AlpacaOutcomeUnknown`` (the order may exist: never resubmitted).
* **Replace** (``replace_order``): ``PATCH /v2/orders/{id}`` with the replacement's
  ``client_order_id``; after a transient error the old order is re-read — when Alpaca replaced it
  anyway, that replacement is the answer.

Keys are never logged (``common.mask``).
"""

from __future__ import annotations

import asyncio
import functools
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests
from nautilus_trader.live.retry import RetryManager, RetryManagerPool

from .parsing import (
    AlpacaAccount,
    AlpacaClock,
    AlpacaFillActivity,
    AlpacaOrder,
    AlpacaPosition,
    decode,
    replacement_client_order_id,
    rfc3339,
)

with warnings.catch_warnings():  # alpaca-py's package imports pull in websockets.legacy (deprecated)
    warnings.simplefilter("ignore", DeprecationWarning)
    from alpaca.common.exceptions import APIError


class AlpacaRequestTimeout(TimeoutError):
    """A REST call got no answer within the timeout (the request may or may not have been applied)."""


class AlpacaOrderRejected(Exception):
    """The order was not placed. ``confirmed``: Alpaca answered no (4xx); otherwise the retries
    were used up with the order verified absent after each attempt (no answer from Alpaca)."""

    def __init__(self, reason: str, *, confirmed: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.confirmed = confirmed


class AlpacaOutcomeUnknown(Exception):
    """Whether Alpaca has the order cannot be determined (Alpaca unreachable)."""


class AlpacaRequestCanceled(ConnectionError):
    """The retries were canceled (the client is disconnecting)."""


def create_trading_client(api_key: str, api_secret: str, *, paper: bool = True,
                          trading_url: str | None = None, timeout_s: float = 10.0):
    """An alpaca-py ``TradingClient`` with a per-request timeout and WITHOUT alpaca-py's own
    blind retries (it retries 429/504 three times, 3 s apart, and has no timeout). Retrying is
    the adapter's job: a blind retry of ``POST /v2/orders`` could duplicate an order.

    Errors: ``alpaca.common.exceptions.APIError`` for every HTTP error (``.status_code``,
    ``.response.headers['Retry-After']``), ``AlpacaRequestTimeout`` on timeout, and
    ``requests.ConnectionError`` when the server cannot be reached. Synchronous: call it from a
    worker thread (``loop.run_in_executor``).
    """
    from alpaca.trading.client import TradingClient

    class _TradingClient(TradingClient):
        def _request(self, method, path, data=None, base_url=None, api_version=None):
            url = (base_url or self._base_url) + "/" + (api_version or self._api_version) + path
            opts = {"headers": self._get_default_headers(), "allow_redirects": False}
            if method.upper() in ("GET", "DELETE"):
                opts["params"] = data
            else:
                opts["json"] = data
            try:
                response = self._session.request(method, url, timeout=timeout_s, **opts)
            except requests.Timeout as e:
                raise AlpacaRequestTimeout(f"{method} {path}: no answer within {timeout_s} s") from e
            try:
                response.raise_for_status()
            except requests.HTTPError as http_error:
                raise APIError(response.text, http_error) from None
            if response.text != "":
                return response.json()
            return None

    return _TradingClient(api_key, api_secret, paper=paper, url_override=trading_url)


def _one_line(text: str, limit: int = 200) -> str:
    return " ".join(str(text).split())[:limit]


def fetch_account_checked(api_key: str, api_secret: str, trading_url: str, *, allow_live: bool,
                          paper: bool = True, timeout_s: float = 10.0):
    """Start-up check of the account behind ``trading_url`` (the URL actually used): one
    ``GET /v2/account`` through alpaca-py's ``TradingClient.get_account()`` (``TradeAccount``),
    then ``common.check_account``. Returns the account.

    Raises ``AlpacaAccountError`` (unreachable / no answer within ``timeout_s`` / credentials
    refused / blocked or non-ACTIVE account) or ``AlpacaLiveTradingError`` (a real-money account
    number without ``allow_live``). Messages are one line, name the URL and never hold the key or
    secret."""
    from .common import AlpacaAccountError, check_account, mask

    def clean(text: str) -> str:
        text = _one_line(text)
        for value in (api_secret, api_key):
            if value:
                text = text.replace(value, mask(value) if value == api_key else "***")
        return text

    client = create_trading_client(api_key, api_secret, paper=paper, trading_url=trading_url, timeout_s=timeout_s)
    try:
        account = client.get_account()
    except APIError as e:
        status = e.status_code
        if status in (401, 403):
            raise AlpacaAccountError(f"the broker at {trading_url} refused the API credentials "
                                     f"(HTTP {status}, key {mask(api_key)})") from None
        raise AlpacaAccountError(f"the broker at {trading_url} answered GET /v2/account with HTTP {status}: "
                                 f"{clean(error_message(e))}") from None
    except AlpacaRequestTimeout:
        raise AlpacaAccountError(f"the broker at {trading_url} did not answer within {timeout_s:g} s") from None
    except requests.ConnectionError:
        raise AlpacaAccountError(f"cannot reach the broker at {trading_url} (connection failed)") from None
    except requests.RequestException as e:
        raise AlpacaAccountError(f"cannot reach the broker at {trading_url} ({type(e).__name__})") from None
    except Exception as e:  # noqa: BLE001 - e.g. an answer that is not an account
        raise AlpacaAccountError(f"unexpected account answer from {trading_url} ({type(e).__name__}: "
                                 f"{clean(e)})") from None
    check_account(account, allow_live=allow_live, url=trading_url)
    return account


# -- Error classification --------------------------------------------------------------------------

_TRANSPORT_ERRORS = (AlpacaRequestTimeout, requests.RequestException)


def http_status(e: BaseException) -> int | None:
    return e.status_code if isinstance(e, APIError) else None


def error_message(e: BaseException) -> str:
    if isinstance(e, APIError):
        try:
            return str(e.message)
        except Exception:  # noqa: BLE001 - body was not JSON
            return str(e)[:300]
    if isinstance(e, (AlpacaOrderRejected,)):
        return e.reason
    return f"{type(e).__name__}: {e}"


def retry_after_s(e: BaseException) -> float | None:
    if isinstance(e, APIError) and e.response is not None:
        value = e.response.headers.get("Retry-After")
        if value:
            try:
                return max(0.0, float(value))
            except ValueError:
                return None
    return None


def is_transient(e: BaseException) -> bool:
    """Timeout, connection error, 429 or 5xx: worth another attempt."""
    status = http_status(e)
    return isinstance(e, _TRANSPORT_ERRORS) or status == 429 or (status is not None and status >= 500)


def is_unreachable(e: BaseException) -> bool:
    """Timeout, connection error or 5xx: Alpaca was not reached (a 4xx, 429 included, is contact)."""
    status = http_status(e)
    return isinstance(e, _TRANSPORT_ERRORS) or (status is not None and status >= 500)


def _is_duplicate_client_order_id(e: BaseException) -> bool:
    return http_status(e) == 422 and "client_order_id must be unique" in error_message(e)


@dataclass
class ReplaceOutcome:
    """``new``: the replacement order (None when the replace failed, ``error`` says why);
    ``old``: the replaced order when it was re-read; ``count``: replacements used so far."""

    new: AlpacaOrder | None
    old: AlpacaOrder | None
    count: int
    error: str | None = None


_ABSENT = object()


# -- The client ------------------------------------------------------------------------------------

class AlpacaHttpClient:
    """Alpaca's trading REST API for the execution client (see the module docstring).

    Parameters
    ----------
    client : alpaca-py ``TradingClient`` (``create_trading_client``).
    loop : the event loop whose default executor runs the synchronous calls.
    logger : a Nautilus ``Logger``.
    max_retries, retry_initial_delay_s, retry_max_delay_s : the retry policy.
    on_contact : ``(reached: bool, detail: str)`` after every attempt.
    """

    def __init__(self, client: Any, loop: asyncio.AbstractEventLoop, logger: Any, *, max_retries: int = 3,
                 retry_initial_delay_s: float = 0.5, retry_max_delay_s: float = 10.0,
                 on_contact: Callable[[bool, str], None] | None = None) -> None:
        self._client = client
        self._loop = loop
        self._log = logger
        self._max_retries = max(0, int(max_retries))
        self._delay_initial_ms = max(0, round(retry_initial_delay_s * 1000))
        self._delay_max_ms = max(self._delay_initial_ms, round(retry_max_delay_s * 1000))
        self._on_contact = on_contact
        self._pool = self._new_pool()

    @property
    def client(self) -> Any:
        return self._client

    def _new_pool(self) -> RetryManagerPool:
        return RetryManagerPool[Any](
            pool_size=16,
            max_retries=self._max_retries,
            delay_initial_ms=self._delay_initial_ms,
            delay_max_ms=self._delay_max_ms,
            backoff_factor=2,
            logger=self._log,
            exc_types=(Exception,),
            retry_check=is_transient,
            error_logger=self._log_failure,
        )

    def shutdown(self) -> None:
        """Cancel the retries under way (disconnect); later calls get a fresh pool."""
        pool, self._pool = self._pool, self._new_pool()
        pool.shutdown()

    def _log_failure(self, message: str, e: BaseException | None) -> None:
        if e is not None and is_transient(e):
            self._log.warning(f"{message} (retries used up)")
        else:  # an answer (4xx) or a decision of ours: the caller reports it
            self._log.debug(message)

    async def _retry(self, name: str, details: list[object] | None,
                     attempt: Callable[[RetryManager], Awaitable[Any]]) -> Any:
        """``attempt(manager)`` under a retry manager; its result, or its last error raised."""
        pool = self._pool
        manager = await pool.acquire()
        try:
            result = await manager.run(name, details, attempt, manager)
            if manager.result:
                return result
            if manager.message == "Canceled retry":
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise asyncio.CancelledError
                raise AlpacaRequestCanceled(f"{name}: canceled (client disconnecting)")
            if manager.last_exception is not None:
                raise manager.last_exception
            raise AlpacaOutcomeUnknown(f"{name}: no result")
        finally:
            await pool.release(manager)

    async def _wait_retry_after(self, manager: RetryManager, e: BaseException) -> None:
        """A 429 names how long to wait: wait that before the retry (the manager adds its backoff)."""
        wait = retry_after_s(e) if http_status(e) == 429 else None
        if wait and manager.retries < manager.max_retries:
            await asyncio.sleep(wait)

    # -- One attempt -------------------------------------------------------------------------------

    async def request(self, method: str, path: str, data: Any = None) -> Any:
        """One REST call (``get`` / ``post`` / ``patch`` / ``delete``) on a worker thread."""
        fn = getattr(self._client, method)
        try:
            result = await self._loop.run_in_executor(None, functools.partial(fn, path, data))
        except Exception as e:
            if is_unreachable(e):
                self._contact(False, f"REST {method.upper()} {path}: {error_message(e)}")
            else:
                self._contact(True, f"REST {method.upper()} {path} -> {http_status(e)}")
            raise
        self._contact(True, f"REST {method.upper()} {path} ok")
        return result

    def _contact(self, reached: bool, detail: str) -> None:
        if self._on_contact is not None:
            self._on_contact(reached, detail)

    # -- Queries (retried) -------------------------------------------------------------------------

    async def get(self, path: str, params: Any = None) -> Any:
        """GET with retries on transient errors (a GET is safe to repeat); 4xx raised at once."""
        async def attempt(manager: RetryManager) -> Any:
            try:
                return await self.request("get", path, params)
            except Exception as e:
                await self._wait_retry_after(manager, e)
                raise

        return await self._retry(f"GET {path}", None, attempt)

    async def get_account(self) -> AlpacaAccount:
        return decode(await self.get("/account"), AlpacaAccount)

    async def get_positions(self) -> list[AlpacaPosition]:
        return decode(await self.get("/positions") or [], list[AlpacaPosition])

    async def get_clock(self) -> AlpacaClock:
        """One attempt (the clock is optional)."""
        return decode(await self.request("get", "/clock") or {}, AlpacaClock)

    async def get_order(self, order_id: str) -> AlpacaOrder:
        return decode(await self.get(f"/orders/{order_id}"), AlpacaOrder)

    async def get_orders(self, status: str, after: datetime | None, limit: int = 500,
                         symbols: list[str] | None = None, max_pages: int = 1) -> list[AlpacaOrder]:
        """Orders (newest first, paged back with ``until``) followed, each, by its legs."""
        params: dict[str, Any] = {"status": status, "limit": limit, "nested": "true", "direction": "desc"}
        if after is not None:
            params["after"] = rfc3339(after)
        if symbols:
            params["symbols"] = ",".join(symbols)
        orders: list[AlpacaOrder] = []
        for _ in range(max_pages):
            page = decode(await self.get("/orders", dict(params)) or [], list[AlpacaOrder])
            orders.extend(page)
            if len(page) < limit or not page[-1].submitted_at:
                break
            params["until"] = page[-1].submitted_at
        out: list[AlpacaOrder] = []
        seen: set[str] = set()
        for o in orders:
            if o.id in seen:
                continue
            seen.add(o.id)
            out.append(o)
            out.extend(o.legs or [])
        return out

    async def get_fill_activities(self, after: datetime | None, until: datetime | None = None,
                                  max_pages: int = 50) -> list[AlpacaFillActivity]:
        params: dict[str, Any] = {"direction": "desc", "page_size": 100}
        if after is not None:
            params["after"] = rfc3339(after)
        if until is not None:
            params["until"] = rfc3339(until)
        out: list[AlpacaFillActivity] = []
        for _ in range(max_pages):
            page = decode(await self.get("/account/activities/FILL", dict(params)) or [],
                          list[AlpacaFillActivity])
            out.extend(a for a in page if a.activity_type.upper() == "FILL")
            if len(page) < params["page_size"]:
                break
            params["page_token"] = page[-1].id
        return out

    async def _lookup(self, coid: str) -> dict | None:
        async def attempt(manager: RetryManager) -> Any:
            try:
                return await self.request("get", "/orders:by_client_order_id", {"client_order_id": coid})
            except APIError as e:
                if e.status_code == 404:
                    return _ABSENT
                await self._wait_retry_after(manager, e)
                raise

        try:
            raw = await self._retry("GET /orders:by_client_order_id", [coid], attempt)
        except Exception as e:  # noqa: BLE001
            raise AlpacaOutcomeUnknown(f"lookup of {coid} failed: {error_message(e)}") from e
        return None if raw is _ABSENT else raw

    async def lookup_client_order_id(self, coid: str) -> AlpacaOrder | None:
        """The Alpaca order with ``client_order_id`` (None when Alpaca provably has none).
        Raises ``AlpacaOutcomeUnknown`` when Alpaca cannot be asked."""
        raw = await self._lookup(coid)
        return None if raw is None else decode(raw, AlpacaOrder)

    # -- Orders ------------------------------------------------------------------------------------

    async def submit_order(self, body: dict) -> AlpacaOrder:
        """``POST /v2/orders`` exactly once per ``client_order_id`` (see the module docstring)."""
        coid = body["client_order_id"]

        async def attempt(manager: RetryManager) -> Any:
            try:
                return await self.request("post", "/orders", body)
            except Exception as e:
                status, message = http_status(e), error_message(e)
                if _is_duplicate_client_order_id(e):
                    existing = await self._lookup(coid)  # an earlier attempt landed
                    if existing is not None:
                        return existing
                    raise AlpacaOrderRejected(f"Alpaca {status}: {message}", confirmed=True) from e
                if not is_transient(e):
                    raise AlpacaOrderRejected(f"Alpaca {status}: {message}" if status else message,
                                              confirmed=True) from e
                self._log.warning(f"POST /v2/orders {coid}: {message} (attempt {manager.retries + 1})")
                if status != 429:
                    # timeout / 5xx / connection error: the order MAY exist; ask before retrying
                    existing = await self._lookup(coid)
                    if existing is not None:
                        self._log.info(f"{coid} found at Alpaca after '{message}': not resubmitting")
                        return existing
                await self._wait_retry_after(manager, e)  # 429: not processed
                raise

        try:
            raw = await self._retry("POST /orders", [coid], attempt)
        except (AlpacaOrderRejected, AlpacaOutcomeUnknown, AlpacaRequestCanceled):
            raise
        except Exception as e:  # noqa: BLE001 - transient errors, retries used up
            raise AlpacaOrderRejected(
                f"Alpaca did not accept the order after {self._max_retries + 1} attempts "
                f"(last error: {error_message(e)}); it was verified absent and not placed",
                confirmed=False) from e
        return decode(raw, AlpacaOrder)

    async def cancel_order(self, order_id: str) -> str | None:
        """``DELETE /v2/orders/{id}`` (the 'canceled' event follows on trade_updates). None when
        Alpaca took the request, else why not."""
        async def attempt(manager: RetryManager) -> bool:
            try:
                await self.request("delete", f"/orders/{order_id}")
                return True
            except Exception as e:
                await self._wait_retry_after(manager, e)
                raise

        try:
            await self._retry("DELETE /orders", [order_id], attempt)
        except AlpacaRequestCanceled as e:
            return f"cancel failed: {e}"
        except Exception as e:  # noqa: BLE001
            if is_transient(e):
                return f"cancel failed: {error_message(e)}"
            return f"Alpaca {http_status(e)}: {error_message(e)}"
        return None

    async def replace_order(self, old_id: str, body: dict, root_client_order_id: str, replace_count: int,
                            known: Callable[[str], bool] = lambda _id: False) -> ReplaceOutcome:
        """``PATCH /v2/orders/{old_id}``; the replacement's ``client_order_id`` is
        ``<root>-R<replace_count + 1>`` (an id taken by an earlier session: the next one). Unless
        the replacement is ``known`` already (seen on the stream), the replaced order is re-read:
        its final fills fix the new total quantity."""
        state = {"count": replace_count, "taken": 0}

        async def attempt(manager: RetryManager) -> ReplaceOutcome:
            while True:
                new_coid = replacement_client_order_id(root_client_order_id, state["count"] + 1)
                if new_coid:
                    body["client_order_id"] = new_coid
                else:
                    body.pop("client_order_id", None)
                try:
                    n = decode(await self.request("patch", f"/orders/{old_id}", body), AlpacaOrder)
                    state["count"] += 1
                    return ReplaceOutcome(n, None, state["count"])
                except Exception as e:
                    if _is_duplicate_client_order_id(e) and state["taken"] < self._max_retries:
                        state["count"] += 1
                        state["taken"] += 1
                        continue
                    if not is_transient(e):
                        raise
                    try:  # unknown outcome: did Alpaca replace it anyway?
                        old = decode(await self.get(f"/orders/{old_id}"), AlpacaOrder)
                        if old.status == "replaced" and old.replaced_by:
                            n = await self.get_order(old.replaced_by)
                            state["count"] += 1
                            return ReplaceOutcome(n, old, state["count"])
                    except Exception:  # noqa: BLE001 - the retry decides
                        pass
                    await self._wait_retry_after(manager, e)
                    raise

        try:
            outcome = await self._retry("PATCH /orders", [old_id], attempt)
        except Exception as e:  # noqa: BLE001
            if is_transient(e) or isinstance(e, AlpacaRequestCanceled):
                reason = f"replace failed: {error_message(e)}"
            else:
                reason = f"Alpaca {http_status(e)}: {error_message(e)}"
            return ReplaceOutcome(None, None, state["count"], reason)
        if outcome.old is None and not known(outcome.new.id):
            try:
                outcome.old = await self.get_order(old_id)
            except Exception as e:  # noqa: BLE001 - the quantity is then a best effort
                self._log.warning(f"Cannot re-read replaced order {old_id}: {error_message(e)}")
        return outcome


__all__ = [
    "AlpacaHttpClient",
    "AlpacaOrderRejected",
    "AlpacaOutcomeUnknown",
    "AlpacaRequestCanceled",
    "AlpacaRequestTimeout",
    "ReplaceOutcome",
    "create_trading_client",
    "error_message",
    "fetch_account_checked",
    "http_status",
    "is_transient",
    "is_unreachable",
    "retry_after_s",
]
