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
        """The core TradeSignal (rebuilt from JSON when read from a catalog).

        Every malformed payload raises ValueError naming the field — never TypeError, KeyError or
        AttributeError — so a caller can reject the one signal and carry on: a null/empty payload,
        text that is not JSON, JSON that is not an object, metadata that is not a mapping,
        cloud_states that is not a list of well-formed cloud states, an unknown signal_type, a
        naive or unparsable timestamp, and every TradeSignal field check."""
        signal = getattr(self, "_signal", None)
        if signal is not None:
            return signal
        sid = getattr(self, "signal_id", "")
        payload = getattr(self, "payload", None)
        if isinstance(payload, (bytes, bytearray)):
            try:
                payload = payload.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"payload: not UTF-8 text for signal {sid!r}: {e}") from None
        if payload is None or not isinstance(payload, str) or not payload.strip():
            raise ValueError(f"payload: empty or missing ({type(payload).__name__} {payload!r}) "
                             f"for signal {sid!r}")
        try:
            d = json.loads(payload)
        except (json.JSONDecodeError, RecursionError) as e:
            raise ValueError(f"payload: not valid JSON for signal {sid!r}: {e}") from None
        if not isinstance(d, dict):
            raise ValueError(f"payload: must be a JSON object, got {type(d).__name__} "
                             f"for signal {sid!r}")
        try:
            return TradeSignal.from_dict(d)
        except ValueError:
            raise
        except Exception as e:  # safety net: a malformed payload must never abort the caller
            raise ValueError(f"payload: malformed signal {sid!r}: "
                             f"{type(e).__name__}: {e}") from None


def _encode(signal: TradeSignal) -> str:
    return json.dumps(signal.to_dict(), separators=(",", ":"), sort_keys=True)


TRADE_SIGNAL_DATA_TYPE = DataType(TradeSignalData)
