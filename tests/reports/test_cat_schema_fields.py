"""Every CAT event the report writes, field by field against the CAT JSON schema for the IM
Technical Specifications 4.1.0 r15 (03.18.26-IM-4.1.0-r15.json, mirrored in the public repository
markuskimius/catviewer): each field the schema marks Required for the event type is present, no
field is outside the type's definition, each value has the schema's JSON type and, for a code set
(`choices`), is one of its codes. Read back from the Parquet and the JSON submission files."""
import re

import pytest

from reports import cat_json
from tests.reports.test_cat_required_fields import XNGS, _cat, _day, _refdata

# Per event type: the fields the schema marks Required, then its Conditional and Optional ones
# (retired and reserved positions left out).
SCHEMA = {
    "MENO": ("actionType firmROEID type orderKeyDate orderID symbol eventTimestamp manualFlag electronicDupFlag "
             "deptType solicitationFlag side quantity orderType timeInForce tradingSession custDspIntrFlag "
             "firmDesignatedID accountHolderType affiliateFlag negotiatedTradeFlag representativeInd",
             "errorROEID CATReporterIMID electronicTimestamp manualOrderKeyDate manualOrderID RFQID price minQty "
             "handlingInstructions infoBarrierID aggregatedOrders seqNum atsDisplayInd displayPrice workingPrice "
             "displayQty atsOrderType nbbPrice nbbQty nboPrice nboQty nbboSource nbboTimestamp netPrice BFMMFlag"),
    "MEOR": ("actionType firmROEID type orderKeyDate orderID symbol eventTimestamp manualFlag electronicDupFlag "
             "destinationType side quantity orderType timeInForce tradingSession affiliateFlag isoInd "
             "routeRejectedFlag dupROIDCond multiLegInd",
             "errorROEID CATReporterIMID originatingIMID electronicTimestamp senderIMID destination routedOrderID "
             "session price minQty handlingInstructions seqNum pairedOrderID infoBarrierID netPrice quoteKeyDate "
             "quoteID"),
    "MEMR": ("actionType firmROEID type orderKeyDate orderID symbol eventTimestamp manualFlag destinationType side "
             "quantity orderType timeInForce tradingSession affiliateFlag isoInd routeRejectedFlag dupROIDCond "
             "multiLegInd",
             "errorROEID CATReporterIMID originatingIMID electronicTimestamp senderIMID destination routedOrderID "
             "priorRoutedOrderID session price minQty handlingInstructions seqNum netPrice"),
    "MECR": ("actionType firmROEID type orderKeyDate orderID symbol eventTimestamp manualFlag cancelQty "
             "destinationType routeRejectedFlag multiLegInd",
             "errorROEID CATReporterIMID originatingIMID electronicTimestamp senderIMID destination routedOrderID "
             "session seqNum"),
    "MEOM": ("actionType firmROEID type orderKeyDate orderID symbol eventTimestamp manualFlag electronicDupFlag "
             "initiator side quantity leavesQty orderType timeInForce tradingSession isoInd custDspIntrFlag "
             "representativeInd",
             "errorROEID CATReporterIMID priorOrderKeyDate priorOrderID originatingIMID manualOrderKeyDate "
             "manualOrderID electronicTimestamp receiverIMID senderIMID senderType routedOrderID requestTimestamp "
             "price minQty handlingInstructions infoBarrierID aggregatedOrders seqNum atsDisplayInd displayPrice "
             "workingPrice displayQty atsOrderType nbbPrice nbbQty nboPrice nboQty nbboSource nbboTimestamp netPrice "
             "BFMMFlag"),
    "MEOC": ("actionType firmROEID type orderKeyDate orderID symbol eventTimestamp manualFlag cancelQty leavesQty "
             "initiator",
             "errorROEID CATReporterIMID originatingIMID electronicTimestamp seqNum requestTimestamp infoBarrierID"),
}
# The schema's `choices` for the code fields the events carry.
CHOICES = {
    "actionType": {"NEW", "COR", "RPR", "DEL"},
    "accountHolderType": set("AEFIOVPX"),
    "deptType": {"A", "ATS", "DMA", "SA", "T", "O"},
    "destinationType": set("FENODS"),
    "initiator": {"C", "F"},
    "isoInd": {"ISOD", "ISOI", "NA"},
    "orderType": {"CAB", "LMT", "MKT"},
    "representativeInd": {"Y", "YE", "YP", "YS", "N", "O", "OS", "OML", "OMS", "OE", "OME"},
    "side": {"B", "S", "SL", "SS", "SX"},
    "tradingSession": {"FOR", "PRE", "PREREG", "REG", "REGPOST", "POST", "PREPOST", "ALL"},
}
# Its dataTypes: Timestamp a string of at most 25 characters (or a number), Text (n) a string of at
# most n, the IMIDs 7 and 16, Symbol 22; Price and the quantities numbers; flags booleans. The
# Parquet keeps timeInForce as text (DAY=YYYYMMDD, IOC): only the JSON's object is checked.
TIMESTAMPS = {"orderKeyDate", "priorOrderKeyDate", "eventTimestamp"}
TEXT = {"firmROEID": 64, "orderID": 64, "priorOrderID": 64, "routedOrderID": 64, "priorRoutedOrderID": 64,
        "session": 40, "firmDesignatedID": 40, "CATReporterIMID": 7, "senderIMID": 16, "destination": 16,
        "symbol": 22}
NUMBERS = {"price", "quantity", "cancelQty", "leavesQty"}
FLAGS = {"manualFlag", "electronicDupFlag", "solicitationFlag", "custDspIntrFlag", "affiliateFlag",
         "negotiatedTradeFlag", "routeRejectedFlag", "dupROIDCond", "multiLegInd"}
# timeInForce is a name/value pair: DAY a Date (an 8-digit number), IOC a Boolean.
TIME_IN_FORCE = {"DAY": lambda v: isinstance(v, int) and 10_000_000 <= v <= 99_999_999,
                 "IOC": lambda v: v is True}


def _day_of_every_side():
    """_day's orders (a sell long replaced, executed and cancelled, one modified to a short sale),
    and a short sale, a short-exempt IOC and a client's buy, partly cancelled."""
    b = _day()
    b.advance(10_000); b.enter("S1", 2, "T", 2_000_000, 100)
    b.advance(10_000); b.accept("S1")
    b.advance(10_000); b.enter("X1", 3, "E", 3_000_000, 100, tif=0)
    b.advance(10_000); b.enter("C1", 1, "B", 1_499_900, 100, client=7, algo=2)
    b.advance(10_000); b.accept("C1")
    b.advance(10_000); b.cancel("C1", new_qty=40)
    b.advance(10_000); b.canceled("C1", 60)
    return b


def _problems(event: dict, json_line: bool) -> list[str]:
    required, others = (set(names.split()) for names in SCHEMA[event["type"]])
    fields = {k for k, v in event.items() if v is not None}
    out = [f"lacks Required {f}" for f in sorted(required - fields)]
    out += [f"{f} is not a field of it" for f in sorted(fields - required - others)]
    for f in fields:
        v = event[f]
        if f in CHOICES and v not in CHOICES[f]:
            out.append(f"{f} {v!r} is not one of its codes")
        if f in TIMESTAMPS and not re.fullmatch(r"\d{8} \d{6}\.\d{9}", v):
            out.append(f"{f} {v!r} is no CAT timestamp")
        if f in TEXT and not (isinstance(v, str) and len(v) <= TEXT[f]):
            out.append(f"{f} {v!r} is longer than {TEXT[f]}")
        if f in FLAGS and not isinstance(v, bool):
            out.append(f"{f} {v!r} is no boolean")
        # a number in the JSON (decimal text in the Parquet), of at most 8 decimals (Price's scale)
        if f in NUMBERS and (isinstance(v, bool) or (json_line and not isinstance(v, (int, float)))
                             or not re.fullmatch(r"\d+(\.\d{1,8})?", str(v))):
            out.append(f"{f} {v!r} is no number")
    if json_line and "timeInForce" in fields:
        tif = event["timeInForce"]
        if not (isinstance(tif, dict) and len(tif) == 1 and all(TIME_IN_FORCE.get(k, lambda v: False)(v)
                                                                for k, v in tif.items())):
            out.append(f"timeInForce {tif!r}")
    return out


@pytest.mark.parametrize("member", [False, True], ids=["exchange", "industry-member"])
def test_every_event_has_the_schemas_fields_types_and_codes(tmp_path, member):
    ref = _refdata(tmp_path, {"mics.toml": (XNGS, 'cat_member = "7654:ABCD"\ncat_affiliate = false\n')}) \
        if member else None
    result, rows, lines, _ = _cat(_day_of_every_side(), tmp_path, *([ref] if ref else []))
    assert result.rejected == 0
    assert sorted({e["type"] for e in lines}) == sorted(SCHEMA)
    assert {e["side"] for e in lines if "side" in e} == {"B", "SL", "SS", "SX"}
    assert [e["type"] for e in rows] == [e["type"] for e in lines]
    for row in rows:          # the Parquet's CAT fields (beside seq and trade_date)
        event = {k: v for k, v in row.items() if k in cat_json.ORDER or k == "type"}
        assert _problems(event, json_line=False) == [], event
    for event in lines:
        assert _problems(event, json_line=True) == [], event
