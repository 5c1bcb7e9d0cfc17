"""Alpaca instrument provider: US equities / ETFs from ``GET /v2/assets`` and option contracts
from ``GET /v2/options/contracts``, as Nautilus ``Equity`` / ``OptionContract`` on venue ALPACA.

The alpaca-py ``TradingClient`` is synchronous; every call runs in the default executor so the
Nautilus event loop never blocks.
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any

from nautilus_trader.common.providers import InstrumentProvider
from nautilus_trader.config import InstrumentProviderConfig
from nautilus_trader.model.identifiers import InstrumentId

from .common import ALPACA_VENUE
from .parsing import is_option_symbol, parse_equity, parse_option_contract


class AlpacaInstrumentProvider(InstrumentProvider):
    """Loads Alpaca instruments into Nautilus.

    Parameters
    ----------
    client : alpaca.trading.client.TradingClient
        A trading REST client (``http.create_trading_client`` gives one with a timeout).
    config : InstrumentProviderConfig | AlpacaInstrumentProviderConfig, optional
        ``load_ids`` / ``load_all`` as usual. With ``AlpacaInstrumentProviderConfig``,
        ``load_all`` may include option contracts (``load_options``, ``option_underlyings``, ...).

    ``filters`` understood by ``load_all_async``: ``symbols`` (iterable: only these equities),
    ``exchange`` (e.g. "NASDAQ"), ``options`` (bool), ``underlyings`` (iterable of str),
    ``expiration_gte`` / ``expiration_lte`` ("YYYY-MM-DD").
    """

    def __init__(self, client: Any, config: InstrumentProviderConfig | None = None) -> None:
        super().__init__(config=config)
        self._client = client
        self._config_extra = config

    # ------------------------------------------------------------------------------------------ #

    async def _call(self, fn, *args, **kwargs):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(fn, *args, **kwargs))

    @staticmethod
    def _now_ns() -> int:
        return time.time_ns()

    def _add_equity(self, asset: Any) -> None:
        self.add(parse_equity(asset, self._now_ns()))

    def _add_option(self, contract: Any):
        instrument = parse_option_contract(contract, self._now_ns())
        self.add(instrument)
        return instrument

    # ------------------------------------------------------------------------------------------ #

    async def load_all_async(self, filters: dict | None = None) -> None:
        from alpaca.trading.enums import AssetClass, AssetStatus
        from alpaca.trading.requests import GetAssetsRequest

        filters = dict(filters or {})
        cfg = self._config_extra
        symbols = filters.get("symbols")
        if symbols:
            await self.load_ids_async([InstrumentId.from_str(f"{s}.{ALPACA_VENUE}") for s in symbols])
        else:
            request = GetAssetsRequest(status=AssetStatus.ACTIVE, asset_class=AssetClass.US_EQUITY,
                                       exchange=filters.get("exchange"))
            assets = await self._call(self._client.get_all_assets, request)
            count = 0
            for asset in assets:
                if not getattr(asset, "tradable", True):
                    continue
                try:
                    self._add_equity(asset)
                    count += 1
                except Exception as e:  # noqa: BLE001 - one odd asset must not stop the load
                    self._log.warning(f"Skipping Alpaca asset {getattr(asset, 'symbol', '?')}: {e}")
            self._log.info(f"Loaded {count} Alpaca equities")

        load_options = filters.get("options", getattr(cfg, "load_options", False))
        if load_options:
            await self.load_option_chain_async(
                underlyings=filters.get("underlyings", getattr(cfg, "option_underlyings", None)),
                expiration_gte=filters.get("expiration_gte", getattr(cfg, "option_expiration_gte", None)),
                expiration_lte=filters.get("expiration_lte", getattr(cfg, "option_expiration_lte", None)),
            )

    async def load_option_chain_async(self, underlyings=None, expiration_gte: str | None = None,
                                      expiration_lte: str | None = None,
                                      max_pages: int = 1000, *, strike_price_gte: float | None = None,
                                      strike_price_lte: float | None = None,
                                      contract_type: str | None = None, instruments: list | None = None) -> int:
        """Load option contracts (all pages of ``GET /v2/options/contracts``) for ``underlyings``,
        optionally within a strike range (``strike_price_gte`` / ``_lte``) and of one
        ``contract_type`` ("call" / "put"); returns the count loaded. ``instruments``, when given,
        receives every ``OptionContract`` loaded."""
        from alpaca.trading.requests import GetOptionContractsRequest

        page_token = None
        count = 0
        for _ in range(max_pages):
            request = GetOptionContractsRequest(
                underlying_symbols=list(underlyings) if underlyings else None,
                expiration_date_gte=expiration_gte,
                expiration_date_lte=expiration_lte,
                strike_price_gte=None if strike_price_gte is None else f"{strike_price_gte:.2f}",
                strike_price_lte=None if strike_price_lte is None else f"{strike_price_lte:.2f}",
                type=contract_type,
                limit=1000,
                page_token=page_token,
            )
            response = await self._call(self._client.get_option_contracts, request)
            for contract in response.option_contracts or []:
                try:
                    instrument = self._add_option(contract)
                    count += 1
                    if instruments is not None:
                        instruments.append(instrument)
                except Exception as e:  # noqa: BLE001
                    self._log.warning(f"Skipping Alpaca option contract {contract.symbol}: {e}")
            page_token = response.next_page_token
            if not page_token:
                break
        self._log.info(f"Loaded {count} Alpaca option contracts")
        return count

    async def load_ids_async(self, instrument_ids: list[InstrumentId], filters: dict | None = None) -> None:
        from alpaca.common.exceptions import APIError

        for iid in instrument_ids:
            if iid.venue != ALPACA_VENUE:
                self._log.warning(f"Not an Alpaca instrument, skipped: {iid}")
                continue
            symbol = iid.symbol.value
            try:
                if is_option_symbol(symbol):
                    self._add_option(await self._call(self._client.get_option_contract, symbol))
                else:
                    self._add_equity(await self._call(self._client.get_asset, symbol))
            except APIError as e:
                if e.status_code == 404:
                    self._log.error(f"Alpaca has no instrument {symbol}")
                    continue
                raise

    async def load_async(self, instrument_id: InstrumentId, filters: dict | None = None) -> None:
        await self.load_ids_async([instrument_id], filters)


__all__ = ["AlpacaInstrumentProvider"]
