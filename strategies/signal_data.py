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
    def from_signal(cls, signal: TradeSignal, ts_event: int, ts_init: int) -> "TradeSignalData":
        return cls(
            ts_event=ts_event,
            ts_init=ts_init,
            signal_id=signal.signal_id,
            ticker=signal.ticker,
            timeframe=signal.timeframe,
            signal_type=signal.signal_type.value,
            direction=signal.direction,
            conviction=signal.conviction,
            payload=json.dumps(signal.to_dict(), separators=(",", ":"), sort_keys=True),
        )

    def to_signal(self) -> TradeSignal:
        """Rebuild the core TradeSignal (raises ValueError naming the bad field)."""
        try:
            d = json.loads(self.payload)
        except json.JSONDecodeError as e:
            raise ValueError(f"payload: not valid JSON for signal {self.signal_id!r}: {e}") from None
        return TradeSignal.from_dict(d)


TRADE_SIGNAL_DATA_TYPE = DataType(TradeSignalData)
