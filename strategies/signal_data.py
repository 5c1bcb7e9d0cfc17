"""TradeSignal on NautilusTrader's message bus and in its ParquetDataCatalog.

The core's TradeSignal is a plain dataclass; here it is wrapped in a Nautilus custom `Data` type so
that the signal actor can publish it on the message bus, the executor strategy can subscribe to it,
and a run's signals can be written to / replayed from a catalog (the executor then runs on a fixed
signal set). The full signal travels as JSON; a few scalar columns are kept for catalog queries.
"""



import json

from nautilus_trader.core.data import Data
from nautilus_trader.model.custom import customdataclass
from nautilus_trader.model.data import DataType

from strategies.trade_executor.models import TradeSignal

SIGNAL_TOPIC_NAME = "TradeSignalData"


@customdataclass
class TradeSignalData(Data):
    signal_id: str = ""
    ticker: str = ""
    timeframe: str = ""
    signal_type: str = ""
    direction: str = ""
    conviction: int = 0
    payload: str = ""  # TradeSignal.to_dict() as JSON

    @classmethod
    def from_signal(cls, signal: TradeSignal, ts_event: int, ts_init: int,
                    *, serialize: bool = True) -> "TradeSignalData":
        """Wrap a signal. With serialize=False the JSON payload is left empty and the object itself
        rides along (in-process publication: the subscriber gets the very same TradeSignal, no
        JSON round trip); `with_payload()` fills it before the signal is written to a catalog."""
        data = cls(
            ts_event=ts_event,
            ts_init=ts_init,
            signal_id=signal.signal_id,
            ticker=signal.ticker,
            timeframe=signal.timeframe,
            signal_type=signal.signal_type.value,
            direction=signal.direction,
            conviction=signal.conviction,
            payload=_encode(signal) if serialize else "",
        )
        data._signal = signal
        return data

    def with_payload(self) -> "TradeSignalData":
        if not self.payload:
            self.payload = _encode(self.to_signal())
        return self

    def to_signal(self) -> TradeSignal:
        """The core TradeSignal (rebuilt from JSON when read from a catalog; raises ValueError naming
        the bad field)."""
        signal = getattr(self, "_signal", None)
        if signal is not None:
            return signal
        try:
            d = json.loads(self.payload)
        except json.JSONDecodeError as e:
            raise ValueError(f"payload: not valid JSON for signal {self.signal_id!r}: {e}") from None
        return TradeSignal.from_dict(d)


def _encode(signal: TradeSignal) -> str:
    return json.dumps(signal.to_dict(), separators=(",", ":"), sort_keys=True)


TRADE_SIGNAL_DATA_TYPE = DataType(TradeSignalData)
