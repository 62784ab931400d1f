"""CAT (SEC Rule 613) order events for the firm's own orders, with CAT's field names: MENO (new
order) and MEOR (route to the venue) for each order entered, MEOM for each replace or modify the
venue made (its Replaced, with priorOrderID and priorOrderKeyDate, or Order Modified), MEOC for each
cancel it made at the firm's request (full, or partial with leavesQty > 0) — a request the venue
overtook (the order filled first) is no MEOM or MEOC — the route events of what the firm sent
(cat_routes.py: MEOR per Enter, MEMR per Replace or Modify with priorRoutedOrderID, MECR per Cancel,
each with routeRejectedFlag), and MEOT only for executions on a venue that does
not report to CAT itself (`cat_reporter = false` in mics.toml; default true). An exchange (a CAT
Participant) and an ATS or broker-dealer (a CAT Industry Member) report the executions of the orders
routed to them: CAT FAQ E15 says the routing firm then submits no Trade event or Order Fulfillment,
and a Trade event is for the executing broker that reports the trade for public dissemination (Tech
Specs 4.0.0-r18, Trade event). Every MEOT that is built is rejected with its reasons (no
tapeTradeID or reportingExceptionCode in the journal; sideDetailsInd's code set unconfirmed: see
UNKNOWN_MEOT), never guessed. A trade the venue breaks later (OUCH Broken Trade) keeps cancelFlag
false, in this file and after: the spec sets it only for a trade the TRF/ORF/ADF rejected (see NOTES).
An order a crash recovery marked not sent (its Enter never reached the venue: recovery_marks) keeps
its MENO, has no route event (MEOR, MEMR, MECR: each rejected with that reason) and is closed by a
firm-initiated MEOC at the recovery's resolution. An order a crash recovery adopted from the venue
(its ORDER_SENT lost with a torn journal tail: reports/adoptions.py) has a MENO and MEOR built at
the venue's Accepted of it, and its other events as any order's, but every one of them is rejected
with that reason: CAT keys each event of an order by orderKeyDate, the time the firm originated it,
and the MENO's and MEOR's eventTimestamp are the firm's order and route times; all were lost with the
ORDER_SENT (the venue's acceptance only bounds them above), so none is reported with a stand-in
time. Its executions need no MEOT unless the venue does not report to CAT (FAQ E15, below); such a
MEOT would name the order by its orderKeyDate too. A Modify a crash recovery adopted (its ORDER_SENT
lost: recovery_marks adopt-modify) gets the venue's MEOM and a MEMR built at the venue's Order
Modified with the terms it confirms, rejected (ADOPTED_MODIFY): its eventTimestamp, the firm's send
time, was lost, and CAT gets no stand-in time; the reject names the RECON record and the terms, so
the owed event can be reported from another record. So is the MECR of a Cancel replay decided again
whose ORDER_SENT was lost, that the venue acted on (redecided.py: its row at the RECON record that
lists it). A Cancel a recovery found unanswered and sent again never reached the venue
(resent_cancels): no MECR, rejected with that reason. firmROEID and the file group carry the journal's
id, so two journals of one day never share one. tradingSession comes from the OUCH time in force
and the event's Eastern time (TRADING_SESSIONS). A route event's destination is its venue's CAT
Exchange ID (mics.toml cat_destination: destinationType E) or the CRD:IMID of the broker-dealer or
ATS it is (cat_member: F), never the MIC; a route to a venue with neither is rejected
(_no_destination). CATReporterIMID is the firm's IMID alone (as the file name carries it), senderIMID
its whole CRD:IMID (CAT JSON schema 4.1.0 r15: "CAT Reporter IMID", at most 7 characters, and
"Industry Member ID"). The schema's other Required fields come from the firm's facts (electronic,
unsolicited, never negotiated, single-leg orders; its own account, or a client's facts as
parties.toml states them), the venue's (affiliateFlag: an exchange is no affiliate, a broker-dealer
or ATS is what mics.toml cat_affiliate says), the OUCH Enter's or Replace's intermarket sweep byte
(isoInd) and the Cancel's place in its order's life (MECR cancelQty); where one is not known the
row is rejected with why (NOTES).

A venue answer a crash recovery journaled (reports/venuetime.py: at the recovery's clock, seconds,
hours or a day after the venue acted), or a login's replay brought (made before that login), is timed by the venue's own OUCH timestamp of that event
(common.with_venue_times): the eventTimestamp of the MEOM (its Replaced, Order Modified), MEOC (its
Canceled) and MEOT (its Executed, and so tradeKeyDate), and with it the Eastern date of such a row
(trade_date, --date, firmROEID, the submission file, DAY= in timeInForce) and its tradingSession.
The firm's own actions keep the journal's time: MENO and MEOR (the Enter sent), MEMR and MECR (the
Replace, Modify, Cancel sent: routeRejectedFlag only flags them, it times nothing), the MEOC closing
an order a recovery found never sent (at its resolution), and every orderKeyDate. event_time_source
(beside seq and trade_date, not a CAT field) says which time a row has. CAT's rule for an event the
firm learned of late is not in the reference notes: an assumption, said in NOTES.

Owns the event mapping, CAT text formats (Eastern-Time timestamps `YYYYMMDD HHMMSS.CCCNNNNNN`,
dates as YYYYMMDD), the CAT trading day (the US Eastern date, with DST: what `--date` selects and
the trade_date partition, firmROEID and file names carry), the MEOT trade details the journal
gives (and in NOTES those it cannot, never invented) and the required fields per event type (a row
missing one is rejected, so it is in neither the Parquet nor the submission files). Built chunk by
chunk; the JSON submission files are cat_json.py's.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from journal.catalogue import RecordType
from reports import arrowcols as ac
from reports import cat_json, cat_routes, common, events, numtext, orderjoin, recovery_marks, resent_cancels, timetext
from reports import venuetime
from reports.events import EV
from reports.output import ReportOutput, TableCollector
from reports.redecided import RedecidedCancels
from reports.refdata import RefData
from reports.source import JournalSlice
from reports.timebase import UtcTimes, to_utc
from reports.validate import REJECTS_SCHEMA, declare_required, mask_check, passed, split

KIND = "cat"
# 6: MEMR, MECR, routeRejectedFlag, priorOrderKeyDate; 7: not-sent orders, journal id in firmROEID,
# tradingSession from the time in force; 8: CAT Exchange ID / Industry Member destinations (E, F),
# pre/post-market sessions, CATReporterIMID the IMID alone, firmROEID up to 64 characters;
# 9: the JSON schema 4.1.0 r15's Required solicitationFlag, custDspIntrFlag, affiliateFlag,
# negotiatedTradeFlag, isoInd, multiLegInd and MECR cancelQty; no electronicDupFlag on MEMR, MECR,
# MEOC nor leavesQty on MECR (not fields of them); 10: dupROIDCond on MEOR and a Replace's MEMR, MEOM
# leavesQty, and the remaining quantity after a venue's Order Modified (MECR cancelQty, MEOC leavesQty);
# 11: a venue answer a crash recovery journaled at the venue's OUCH time (MEOM, MEOC, MEOT eventTimestamp,
# trade date), event_time_source
SCHEMA_VERSION = "cat-4.0.0-r18-subset-11"
CAT_TYPES = ["MENO", "MEOR", "MEOM", "MEOC", "MEOT", "MEMR", "MECR"]
SIDES = {ord("B"): "B", ord("S"): "SL", ord("T"): "SS", ord("E"): "SX"}
USER_REQUESTED = ord("U")        # OUCH Canceled reason: the firm's Cancel (or Replace) asked for it

# Fields every event carries, then the fields each event type requires (CAT IM Technical
# Specifications 4.0.0-r18 as summarised in the reference notes, and the Required fields of the CAT
# JSON schema 4.1.0 r15 the events carry; conditional fields the firm never populates, e.g.
# handlingInstructions, are left out). A row missing one is rejected.
COMMON_REQUIRED = ("type", "actionType", "firmROEID", "CATReporterIMID", "symbol", "eventTimestamp", "manualFlag")
ORDER_KEY = ("orderKeyDate", "orderID")       # order events; a trade names its orders in side details
TERMS = ("side", "price", "quantity", "orderType", "timeInForce", "tradingSession")
ROUTE = ("senderIMID", "destination", "destinationType", "routedOrderID", "session", "multiLegInd")
SENT_ROUTE = TERMS + ROUTE + ("affiliateFlag", "isoInd", "dupROIDCond")      # MEOR, MEMR (not MECR)
REQUIRED = {
    "MENO": ORDER_KEY + ("electronicDupFlag", "deptType", "solicitationFlag") + TERMS
    + ("custDspIntrFlag", "firmDesignatedID", "accountHolderType", "affiliateFlag", "negotiatedTradeFlag",
       "representativeInd"),
    "MEOR": ORDER_KEY + ("electronicDupFlag",) + SENT_ROUTE,
    "MEMR": ORDER_KEY + SENT_ROUTE,
    "MECR": ORDER_KEY + ("cancelQty",) + ROUTE,
    "MEOM": ORDER_KEY + ("electronicDupFlag", "initiator") + TERMS + ("leavesQty", "isoInd", "custDspIntrFlag",
                                                                        "representativeInd"),
    "MEOC": ORDER_KEY + ("cancelQty", "leavesQty", "initiator"),
    # Trade event: the required fields of the spec's MEOT layout; buyDetails / sellDetails are
    # required for the side of the firm's order (the only side the journal knows)
    "MEOT": ("tradeKeyDate", "tradeID", "cancelFlag", "quantity", "price", "capacity", "multiLegInd"),
}
# MEOT fields the spec requires that the journal cannot give, each with the reason every MEOT is
# rejected for it (the field is never filled with a guess): a MEOT therefore never reaches the
# Parquet or the submission files until these are known.
UNKNOWN_MEOT = {
    "tapeTradeID": "MEOT needs the tapeTradeID of its TRF/ORF/ADF trade report or a reportingExceptionCode "
                   "(Tech Specs 4.0.0-r18 Trade event: Trade events must match a TRF/ORF/ADF report; the "
                   "exception codes are P, F, N and C); the journal holds neither",
    "sideDetailsInd": "MEOT requires sideDetailsInd, whose codes the CAT JSON schema 4.1.0 r15 lists (BUY, SELL, "
                      "NA) without their meaning (Tech Specs 4.0.0-r18 sideDetailsIndCodeSet could not be read): "
                      "which one a trade reported with one side's details takes is unconfirmed; no value is guessed",
}
# Why an execution of an order the journal never saw created is rejected (e.g. one a recovery
# adopted from the venue, AdoptPending: its RECON record holds the terms, not the order's parties).
ORPHAN_TRADE = ("execution of an order no ORDER_SENT in the journal created (e.g. one a recovery adopted from "
                "the venue): its instrument, parties and New Order / Order Route events are unknown, so neither "
                "whether a MEOT is owed (its venue) nor the events of its order can be built")
# Why every event of an order a recovery adopted is rejected (after common.adopted_origin).
ADOPTED = ("CAT keys every event of an order by its orderKeyDate, the time the firm originated it, and a New "
           "Order's and Order Route's eventTimestamp are the firm's order and route times: that ORDER_SENT held "
           "them, and no stand-in time is reported")


def _send_time_lost(event: str, request: str) -> str:
    """Why a route event of a request whose ORDER_SENT a torn tail lost is rejected, not reported."""
    return (f"A {event}'s eventTimestamp is the time the firm sent the {request}: only its lost ORDER_SENT held it "
            f"(the venue's answer bounds it above), and no stand-in time is reported; the event is owed to CAT and "
            f"must be reported from another record of that time")


# The Route Modified of a Modify a recovery adopted (adopt-modify); the Route Cancelled of a
# Cancel replay decided again (redecided.py)
ADOPTED_MODIFY = _send_time_lost("Route Modified", "Modify")
REDECIDED_CANCEL = _send_time_lost("Route Cancelled", "Cancel")
# Never null in a kept row: the fields every event requires (rows lacking one are rejected), the
# sequence and the trade date (null only without a UTC time, which is rejected too).
NOT_NULL = ("seq",) + COMMON_REQUIRED + ("event_time_source", "trade_date")
# The MEOT fields the journal cannot know: never invented, left out, and said so in the Parquet
# metadata (cat.notes) and each submission file's metadata.
NOTES = ("MEOT is reported only for an execution on a venue that does not report to CAT (mics.toml cat_reporter = "
         "false): CAT FAQ E15, executions of orders routed to another CAT Reporter (an exchange or an Industry Member) "
         "need no Trade event or Order Fulfillment from the routing firm unless the venue is a foreign one that does "
         "not report to CAT; Tech Specs 4.0.0-r18 Trade event, a Trade event is used when the Industry Member acts as "
         "the executing broker and reports the trade for public dissemination. Such a MEOT is rejected, not written: "
         "tapeTradeID (the TRF/ORF/ADF trade report's ID) and reportingExceptionCode (P, F, N or C) are not in the "
         "journal, and which of sideDetailsInd's codes (BUY, SELL, NA) applies could not be confirmed, so no value is "
         "given. marketCenterID is left out; only the firm's side of the trade is built (buyDetails or sellDetails): "
         "the contra side's order is the venue's and anonymous to the firm. cancelFlag is false and cancelTimestamp "
         "absent on every MEOT, and a Broken Trade of the venue (OUCH B), whenever it comes, changes nothing CAT wants "
         "from the firm: no COR or DEL of the MEOT in a later file. Tech Specs 4.0.0-r18 cancelFlagCodeSet: true only "
         "for a trade cancelled because the TRF/ADF/ORF rejected it, a trade executed in a foreign market and "
         "cancelled, or a cancelled customer/client fulfillment; CAT FAQ E25: a trade reported to and accepted by the "
         "TRF/ORF/ADF and linked to its Trade event keeps cancelFlag false even when cancelled or busted in the "
         "trade-reporting data (true also for reportingExceptionCode C, which is not used here). A TRF/ORF/ADF "
         "rejection is not in the journal. Side details, checked against the CAT IM Technical Specifications 4.0.0-r18 "
         "(orchimate.org) as far as it could be read: buyDetails / sellDetails are required for the side of the "
         "subject order (Table 51 Trade Side Details) and are built as a one-element repeating group of orderKeyDate "
         "(required with orderID), orderID and side (required), as the spec's other side-detail group (clientDetails, "
         "Table 53) is laid out; Table 51's own field list could not be read. sideDetailsInd is a MEOT field (between "
         "marketCenterID and buyDetails in the CAT JSON schema 4.1.0 r15), whose codes BUY, SELL and NA the schema "
         "lists without their meaning: no value is given and the MEOT is rejected for it. MEOM and MEOC are what the "
         "venue did (its Replaced, Order Modified, and Canceled with reason U), and the firm's own closing of an order "
         "a crash recovery found the venue never received: a MEOC at the recovery's resolution, initiator F, its whole "
         "quantity cancelled and none left; the route events of such an order (it never reached the venue) are "
         "rejected, not reported. The requests the firm sent are its route events (MEMR per Replace or Modify, MECR "
         "per Cancel, Tech Specs 4.0.0-r18 Route Modified / Route Cancelled). Fields the CAT JSON schema 4.1.0 r15 "
         "marks Required, from the firm's facts: the firm's orders are electronic (electronicDupFlag false, on MENO, "
         "MEOR and MEOM only: the schema has it on no other of these events), its own decisions (solicitationFlag "
         "false) and never negotiated (negotiatedTradeFlag false); an order for the firm's own account has no customer "
         "(custDspIntrFlag false) and is no affiliate's (MENO affiliateFlag false), one for a client what parties.toml "
         "says of it (cat_affiliate, cat_display_instruction; without them its MENO and MEOM are rejected). A route's "
         "affiliateFlag is false to an exchange and, to a broker-dealer or ATS, mics.toml's cat_affiliate (a route to "
         "one that does not say is rejected). isoInd (MEOR, MEMR, MEOM) is NA for an order whose OUCH Enter or Replace "
         "says not intermarket sweep eligible ('N', what the engine always sends); an ISO ('Y') is rejected, ISOD and "
         "ISOI not told apart. multiLegInd is false (single-leg equity orders). An MECR's cancelQty is the open "
         "quantity when the Cancel was sent (venue-confirmed; for an order not yet accepted, the quantity the firm "
         "sent) less the size it asks to leave; the open quantity follows the venue's executions, cancels and "
         "Order Modified (which restates the open shares); where it is unknown (a truncated message) the MECR is "
         "rejected; it carries no leavesQty (not an MECR field). MEOM and MEOC leavesQty: what the venue leaves open "
         "after its Replaced, Order Modified or Canceled. dupROIDCond: true on a Modify's MEMR (the routedOrderID is "
         "kept) and on an MEOR or a Replace's MEMR whose token an earlier order of the journal was routed with the "
         "same Eastern day (the journal holds one venue session: the same destination); false otherwise. "
         "Order Modification Request (MEOMR) and Order Cancel Request "
         "(MEOCR) events, for a request the venue had not answered while the order was still open when the journal or "
         "range ends, are not built. tradingSession is ALL for an order of OUCH time in force 99999 (system hours: "
         "every session the venue has; CAT FAQ D32) and REG for one of 99998 (market hours); an IOC or timed order is "
         "named by the sessions its life touches (from its send time to the end of its time in force; CAT JSON schema "
         "4.1.0 r15 code set): PRE in 04:00-09:30 ET, REG in 09:30-16:00, POST in 16:00-20:00, PREREG or REGPOST "
         "across one boundary, ALL from pre- through post-market; one alive outside 04:00-20:00 ET (US equity venues' "
         "extended hours) is rejected. A route's destination is the venue's CAT Exchange ID (destinationType E) or the "
         "CRD:IMID of the broker-dealer or ATS it is (F), from mics.toml; a route to a venue with neither is rejected, "
         "never sent with the MIC. firmDesignatedID (MENO) is PROP- and the desk's code for the firm's own account, a "
         "client's code otherwise (parties.toml); one longer than the schema's Text (40) gets its MENO rejected, not "
         "truncated. A venue answer a crash recovery journaled late (at the recovery's clock, after the venue acted), "
         "or a login's replay brought (made before that login was received), is timed by the venue's OUCH timestamp of that event: the eventTimestamp and Eastern date (trade_date, file "
         "date) of its MEOM (Replaced, Order Modified), MEOC (Canceled) or MEOT (Executed, and tradeKeyDate), "
         "event_time_source VENUE_EVENT_TIMESTAMP or VENUE_EXECUTION_TIMESTAMP; the firm's own events (MENO, MEOR, "
         "MEMR, MECR: its send times; orderKeyDate) keep the journal's time. An assumption: CAT's rule for an event "
         "the firm learned of only later is not confirmed in the specification as read (no citation).")
# OUCH capacity of the Enter Order -> CAT capacity (Agency, Principal, Riskless principal); any
# other (e.g. 'O' other) has no CAT code: the trade is rejected for it rather than guessed.
CAPACITIES = {ord("A"): "A", ord("P"): "P", ord("R"): "R"}
# Chunks built (all but their venue session) ahead of the scan that finds it: a few hundred MB at
# most, about what the bench journal's chunks take to build while that scan runs.
SESSION_AHEAD = 8
# firmROEID: the Eastern date, the first hex digits of the journal id (48 random bits), the sequence
# and the event type. CAT's field is Text (64) (JSON schema 4.1.0 r15); a journal sequence is a
# 64-bit number, at most 20 digits, so every firmROEID fits (47 characters at most) and none is
# checked row by row.
ROEID_JOURNAL_HEX = 12
ROEID_MAX_LEN = 64
ROEID_LONGEST = len("YYYYMMDD_") + ROEID_JOURNAL_HEX + len("_") + len(str(2**64 - 1)) + len("_MEOT")
assert ROEID_LONGEST <= ROEID_MAX_LEN
# firmDesignatedID is Text (40) there: PROP- and a desk's code, or a client's code, from
# parties.toml, whose codes have no set length; a MENO whose one is longer is rejected, not truncated.
FDID_MAX = 40
SIDE_DETAILS = pa.struct([("orderKeyDate", pa.string()), ("orderID", pa.string()), ("side", pa.string())])


def _first_types() -> np.ndarray:
    """The first CAT type index an event yields, by its EV code; -1: none (an execution's 4 is
    kept only on a venue that does not report to CAT, a cancel's 3 only for a user-requested one).

    MEOM and MEOC come from what the venue did, never from the request the firm sent: the venue's
    Replaced (new token) or Order Modified makes the MEOM, its Canceled with reason U (user
    requested) the MEOC. Tech Specs 4.0.0-r18, Order Modified: an MEOM is reported "when the Material
    Terms of an order have been changed ... or when an order is cancel/replaced", and a
    modification request on an order already terminal (fully executed or cancelled) is not
    reported in Phase 2d; Order Cancel Request (MEOCR) likewise. A request the venue never answered
    while the order stayed open ("in-flight", no confirmation time) would be an Order Modification
    Request / Order Cancel Request event, which this report does not build (NOTES): an OUCH venue
    answers every request on a live order, so one arises only where the journal ends first."""
    # Whose time each type has (stream applies common.with_venue_times to the venue's messages): MEOM,
    # MEOC and MEOT are the venue's events (its Replaced / Order Modified, Canceled, Executed), so a
    # recovered one is at the venue's OUCH time of the event; MENO, MEOR, MEMR and MECR are the firm's
    # actions, at its send time (its ORDER_SENT), whatever the venue answered and whenever the firm
    # heard. A MENO / MEOR of an adopted order, or the MEMR of an adopted Modify, sits on a venue
    # message but is rejected with no eventTimestamp (the firm's time was lost): only its date
    # follows the venue's (an upper bound of the firm's, tighter than the recovery's clock).
    first = np.full(len(events.EVENT_NAMES), -1, np.int8)
    first[EV["SENT_NEW"]] = 0                                          # MENO, then MEOR (1)
    first[[EV["REPLACED"], EV["ORDER_MODIFIED"]]] = 2
    first[EV["CANCELED"]] = 3
    # the routes the firm changed: what it sent (cat_routes), reported as sent
    first[[EV["SENT_REPLACE"], EV["SENT_MODIFY"]]] = CAT_TYPES.index("MEMR")
    first[EV["SENT_CANCEL"]] = CAT_TYPES.index("MECR")
    first[[EV["EXECUTED"], EV["EXECUTED_WITH_REF_PRICE"]]] = 4
    return first


_FIRST_TYPE = _first_types()


def _rows_for(ev: events.OrderEvents, ref: RefData, not_sent: recovery_marks.Marks,
              day: int | None = None, marks: recovery_marks.RecoveryMarks | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(event row index, CAT type index) pairs in journal order, and which rows close an order a
    recovery marked not sent; an entered order yields MENO and then MEOR, and one whose Enter never
    reached the venue (`not_sent`) a third row: its MEOC at the recovery's resolution. A venue's
    Order Modified whose Modify the journal lost (`marks`: adopt-modify) yields the MEMR of that
    Modify (rejected: ADOPTED_MODIFY) and then its MEOM. With `day`
    (the Eastern date selected, days since 1970), an order's MEOC is that day's only if its
    resolution is, and an Enter of another day (select_eastern_date kept it for its MEOC) yields
    its MEOC alone."""
    e = ev.cols["event"]
    first = _FIRST_TYPE[e]
    executed = np.flatnonzero(first == 4)
    if len(executed):        # only executions on venues that do not report to CAT are the firm's
        inst_idx = ref.instrument_index(ev.take(executed, ["symbol_id"]).cols["symbol_id"])
        # an unknown instrument (index -1: the trailing True) may be on such a venue: its execution
        # is kept, and rejected with its reason, rather than dropped as a CAT reporter's
        firms = np.array([not ref.mics.get(i.mic, {}).get("cat_reporter", True)
                          for i in ref.sorted_values("instruments")] + [True], dtype=bool)[inst_idx]
        first[executed[~firms]] = -1
    # a venue cancel not requested by the firm (IOC remainder, timeout, supervisory...) is no MEOC
    first[(e == EV["CANCELED"]) & (ev.cols["reason"] != USER_REQUESTED)] = -1
    new = e == EV["SENT_NEW"]
    # an adopted order's New Order and Route events, at the venue's Accepted (rejected: see ADOPTED)
    adopted_new = (e == EV["ACCEPTED"]) & ev.cols["order_adopted"]
    first[adopted_new] = 0
    closed = np.zeros(len(e), bool)
    if len(not_sent) and new.any():
        at = np.flatnonzero(new)
        closed[at] = not_sent.before(ev.cols["token_key"][at], ev.cols["seq"][at])
        if day is not None and closed.any():
            at = np.flatnonzero(closed)
            mark = not_sent.find(ev.cols["token_key"][at])
            other = ev.utc.valid[at] & (timetext.eastern_days(ev.utc.utc_ns[at]) != day)
            first[at[other]] = -1
            new[at[other]] = False
            closed[at] = np.where(not_sent.utc_valid[mark],
                                  timetext.eastern_days(not_sent.utc_ns[mark]) == day, ~other)
    lost_modify = _adopted_modifies(ev, marks) & (first == CAT_TYPES.index("MEOM"))
    counts = (first >= 0).astype(np.int64) + (new | adopted_new | lost_modify) + closed
    rows = np.repeat(np.arange(len(e), dtype=np.int64), counts)
    place = np.arange(len(rows)) - (np.cumsum(counts) - counts)[rows]     # among its event's rows
    types = first[rows]
    types += place == 1                        # an order's second row: MEOR after its MENO
    if lost_modify.any():                      # the route's MEMR, then the venue's MEOM
        route = lost_modify[rows]
        types[route] = np.where(place[route] == 0, CAT_TYPES.index("MEMR"), CAT_TYPES.index("MEOM"))
    closing = np.zeros(len(rows), bool)
    if closed.any():
        closing = closed[rows] & (place == counts[rows] - 1)     # its last: the MEOC of an Enter never received
        types[closing] = CAT_TYPES.index("MEOC")
    return rows, types, closing


def _adopted_modifies(ev: events.OrderEvents, marks: recovery_marks.RecoveryMarks | None) -> np.ndarray:
    """Which events are a venue's Order Modified a recovery adopted (adopt-modify: the Modify's
    ORDER_SENT lost with a torn tail); none unless the journal holds such a resolution."""
    e = ev.cols["event"]
    if marks is None or marks.modifies is None or not len(marks.modifies):
        return np.zeros(len(e), bool)
    return (marks.adopted_modify(ev.cols["token_key"], ev.cols["seq"]) > 0) & (e == EV["ORDER_MODIFIED"])


# The event columns a CAT row is built and checked from (common.event_checks included): only
# these are gathered for the chosen rows.
_COLUMNS = ("seq", "ts_ns", "ts_source", "event", "token_key", "prior_token_key", "creator", "symbol_id",
            "algo_id", "client_id", "desk_id", "tif", "order_wire_side", "creator_seq", "creator_ts_ns",
            "creator_ts_source", "price", "qty", "exec_price", "exec_qty", "leaves", "match", "stock", "order_stock",
            "origin", "msg_type", "msg_len", "order_qty", "order_capacity", "order_price", "wire_side",
            "decrement", "reason", "prior_creator", "order_adopted", "order_iso", "order_earlier_token")


def build_table(ev: events.OrderEvents, ref: RefData, venue_session: str | None,
                rejections: dict | None = None, marks: recovery_marks.RecoveryMarks | None = None,
                journal_id: str = "", lost: np.ndarray | None = None) -> tuple[pa.Table, list]:
    """The CAT rows of a chunk's events and their checks (`rejections`: the venue's rejections from
    the chunk on, cat_routes.venue_rejections or chunk_rejections, for routeRejectedFlag; None: none
    known; `marks`: the journal's recovery resolutions, recovery_marks.read; `journal_id`: the
    journal's, in firmROEID; `lost`: the sequences of the chunk's Cancels that never reached the
    venue, resent_cancels.lost_seqs)."""
    return build_unsessioned(ev, ref, rejections, marks, journal_id, lost=lost).with_session(venue_session)


@dataclass
class Unsessioned:
    """A chunk's CAT rows built but for the one column that needs the range's venue session (the
    last SESSION_START up to the range's end, found by a scan of the whole range): `session`, at
    column `at`, and the required-field checks, which come after it. stream builds chunks this far
    while that scan runs, and finishes them in order once it is known."""

    table: pa.Table             # every column but `session`
    at: int                     # where `session` goes among them
    route: np.ndarray           # rows that carry a session (MEOR, MEMR, MECR)
    types: np.ndarray           # CAT type index per row
    head: list                  # the checks before the required fields'
    tail: list                  # and after them
    orphan: np.ndarray          # rows rejected before their fields are checked (ORPHAN_TRADE)
    explained: dict             # field -> rows rejected already for lacking it, with why (no_session, ...)

    def with_session(self, venue_session: str | None) -> tuple[pa.Table, list]:
        """The chunk's table and checks, the same as build_table's with `venue_session`."""
        n = len(self.types)
        table = self.table.add_column(self.at, "session", ac.codes(np.zeros(n, np.int8), [venue_session or ""],
                                                                   self.route & bool(venue_session)))
        return table, self.head + required_checks(table, self.types, self.orphan, self.explained) + self.tail


def build_unsessioned(ev: events.OrderEvents, ref: RefData, rejections: dict | None = None,
                      marks: recovery_marks.RecoveryMarks | None = None, journal_id: str = "",
                      day: int | None = None, lost: np.ndarray | None = None) -> Unsessioned:
    """build_table's work that does not depend on the venue session (Unsessioned); `day`: the
    Eastern date selected (days since 1970), None for all."""
    not_sent = marks.not_sent if marks is not None else recovery_marks.no_marks()
    rows, types, closing = _rows_for(ev, ref, not_sent, day, marks)
    redecided = ev.cols.get("redecided")          # redecided.py: a Cancel whose ORDER_SENT was lost
    ev = ev.take(rows, _COLUMNS + ((common.FROM_VENUE,) if common.FROM_VENUE in ev.cols else ()))
    redecided = redecided[rows] if redecided is not None else np.zeros(len(rows), bool)
    if closing.any():
        ev = _closed_at_resolution(ev, closing, not_sent)
    c = ev.cols
    n = len(ev)
    inst_idx, inst_cols = common.instrument_columns(ref, c["symbol_id"], ("symbol", "isin", "segment_mic"))
    algo_idx = ref.party_index("algos", c["algo_id"])
    client_idx = ref.party_index("clients", c["client_id"])
    own = np.array([p.kind == "OWN" for p in ref.sorted_values("clients")] + [False], dtype=bool)[client_idx]
    local = timetext.eastern_local_ns(ev.utc.utc_ns)         # stamps, dates and sessions: one conversion
    stamps = orderjoin.cat_timestamps(local)
    event_ts = ac.row_text(stamps, stamps.shape[1], ev.utc.valid)
    key_date = _order_key_dates(ev, event_ts, stamps)
    adopted = c["order_adopted"]
    if adopted.any():           # an adopted order's origination time is unknown: no stand-in value
        key_date = _where(~adopted, key_date)
        event_ts = _where(~(adopted & (types <= CAT_TYPES.index("MEOR"))), event_ts)
    # the MEMR of a Modify whose ORDER_SENT was lost (adopt-modify): its route time is unknown too
    lost_modify = (types == CAT_TYPES.index("MEMR")) & (c["event"] == EV["ORDER_MODIFIED"])
    if lost_modify.any() or redecided.any():
        event_ts = _where(~(lost_modify | redecided), event_ts)
    t = types
    is_new, is_mod, is_cancel, is_trade = (t == 0), (t == 2), (t == 3), (t == 4)
    routes = cat_routes.route_flags(c, t, CAT_TYPES, rejections or cat_routes.venue_rejections_none(), lost)
    is_route = routes["any"]                     # MEOR, MEMR, MECR
    # a route the venue never received (recovery marked its order not sent): no route event
    unsent_route = is_route & not_sent.before(c["token_key"], c["seq"]) if len(not_sent) else np.zeros(n, bool)
    reroute = routes["replace"]                  # MEMR of a Replace: the route's token changes
    side_code = np.full(n, len(SIDES), np.int8)
    for i, byte in enumerate(SIDES):
        side_code[c["order_wire_side"] == byte] = i
    side_names = list(SIDES.values())
    with_terms = is_new | (is_route & ~routes["cancelled"]) | is_mod
    # a Modify (the venue's, or the firm's route MEMR): its own side, the order's price
    modified = (c["event"] == EV["ORDER_MODIFIED"]) | (c["event"] == EV["SENT_MODIFY"])
    replaced = is_mod & (c["event"] == EV["REPLACED"])
    prior_key = _prior_key_dates(ev, replaced | reroute)     # the replaced order's key date
    side_code[modified] = len(SIDES)
    for i, byte in enumerate(SIDES):
        side_code[modified & (c["wire_side"] == byte)] = i
    price = np.where(is_trade, c["exec_price"], np.where(modified, c["order_price"], c["price"]))
    session = _trading_sessions(c["tif"], local)
    if adopted.any():           # an adopted order's time in force was in its lost ORDER_SENT
        session[adopted] = -1
    destination, destination_type, unrouted = _destinations(ref, inst_idx, is_route)
    sent_route = is_route & ~routes["cancelled"]          # MEOR, MEMR: those with affiliateFlag, isoInd
    affiliate, affiliate_known, affiliate_unsaid = _route_affiliates(ref, inst_idx, sent_route & ~unrouted)
    # the account's: the firm's own is no affiliate and gives no display instruction; a client's, as
    # parties.toml states them (an order of a client that does not is rejected: _account_unsaid)
    account_affiliate, account_display, account_unsaid = _account_facts(ref, client_idx, is_new, is_mod)
    account_unsaid &= ~adopted
    iso = c["order_iso"]
    iso_rows = sent_route | is_mod                        # MEOR, MEMR, MEOM
    iso_unsaid = iso_rows & (iso != ISO_NOT_ELIGIBLE) & (iso != 0) & ~adopted
    cancel_qty, cancel_unknown = _route_cancel_qty(c, routes["cancelled"])
    # MEOR and a Replace's MEMR: whether the route's new routedOrderID was routed before that day
    dup_roid, dup_unknown = _duplicate_routed_ids(ev, sent_route & ~routes["same_id"], local)
    dup_unknown &= ~(adopted | unsent_route)
    cancel_unsaid = cancel_unknown & ~(adopted | redecided | routes["lost"] | unsent_route | (c["creator"] < 0))
    fdid, fdid_long = _firm_designated_ids(ref, c["desk_id"], client_idx, own, is_new)
    fdid_long &= ~adopted
    token = ac.token_strings(c["token_key"], ~is_trade)
    seq_text = numtext.integer_text(c["seq"])
    day_bytes = np.ascontiguousarray(stamps[:, :8])      # the Eastern date: the timestamp's first 8
    day = ac.row_text(day_bytes, 8, ev.utc.valid)
    cols = {
        "seq": pa.array(c["seq"].astype(np.uint64, copy=False)),
        "type": ac.codes(t, CAT_TYPES),
        "actionType": ac.codes(np.zeros(n, np.int8), ["NEW"]),
        # unique across the firm's journals of a day: the journal's id (its random salt) in it
        "firmROEID": numtext.join_text([day] + ([journal_id[:ROEID_JOURNAL_HEX]] if journal_id else [])
                                       + [seq_text, _type_text(t)], "_"),
        "CATReporterIMID": ac.codes(np.zeros(n, np.int8), [ref.firm.cat_reporter_imid]),
        # a re-route's order is the one whose route it changes: the replaced order, and its key date
        "orderKeyDate": _order_key_column(key_date, is_trade, reroute, prior_key),
        "orderID": pc.if_else(pa.array(reroute), ac.token_strings(c["prior_token_key"]), token)
        if reroute.any() else token,
        "priorOrderID": ac.token_strings(c["prior_token_key"], replaced),
        "priorOrderKeyDate": _where(replaced, prior_key) if replaced.any() else pa.nulls(n, pa.string()),
        "symbol": inst_cols["symbol"],
        "eventTimestamp": event_ts,
        "manualFlag": pa.array(np.zeros(n, bool)),
        # electronic orders, none a duplicate of a manual one; a field of MENO, MEOR and MEOM only
        "electronicDupFlag": ac.masked(np.zeros(n, bool), is_new | is_mod | (t == CAT_TYPES.index("MEOR"))),
        "deptType": ac.codes(np.zeros(n, np.int8), ["T"], is_new),
        "solicitationFlag": ac.masked(np.zeros(n, bool), is_new),         # the firm's own decision
        "side": ac.codes(side_code, side_names + ["?"], with_terms & (side_code < len(SIDES))),
        "price": common.price_text(price, with_terms | is_trade),
        "quantity": ac.masked(np.where(is_trade, c["exec_qty"], c["qty"]), with_terms | is_trade),
        "orderType": ac.codes(np.zeros(n, np.int8), ["LMT"], with_terms),
        "timeInForce": _time_in_force(c["tif"] == 0, day_bytes, ev.utc.valid, with_terms),
        "tradingSession": ac.codes(session, TRADING_SESSIONS, with_terms & (session >= 0)),
        "custDspIntrFlag": ac.masked(account_display[0], (is_new | is_mod) & account_display[1]),
        "firmDesignatedID": fdid,
        "accountHolderType": ac.codes(np.where(own, 0, 1), ["P", "I"], is_new),
        # MENO: the account's; MEOR, MEMR: the destination's
        "affiliateFlag": ac.masked(np.where(is_new, account_affiliate[0], affiliate),
                                   (is_new & account_affiliate[1]) | affiliate_known),
        "negotiatedTradeFlag": ac.masked(np.zeros(n, bool), is_new),      # electronic, never negotiated
        "representativeInd": ac.codes(np.zeros(n, np.int8), ["N"], is_new | is_mod),
        "isoInd": ac.codes(np.zeros(n, np.int8), ISO_CODES, iso_rows & (iso == ISO_NOT_ELIGIBLE)),
        "senderIMID": ac.codes(np.zeros(n, np.int8), [ref.firm.cat_imid], is_route),
        "destination": destination,
        "destinationType": destination_type,
        "routedOrderID": _where(is_route, token),
        "priorRoutedOrderID": ac.token_strings(c["prior_token_key"], reroute),
        "dupROIDCond": ac.masked(dup_roid | routes["same_id"], sent_route & ~dup_unknown),
        "routeRejectedFlag": ac.masked(routes["rejected"], is_route),
        "multiLegInd": ac.masked(np.zeros(n, bool), is_route | is_trade),  # single-leg equity orders
        "session": None,                  # Unsessioned.with_session: the range's venue session
        # MEOC, the venue's Canceled: the shares it took off, and what remains open after it (so
        # MEOM, after the venue's Replaced or Order Modified); MECR, the firm's Cancel: the shares it
        # asks the venue to take off (no leavesQty: not a field of it)
        "cancelQty": ac.masked(np.where(is_cancel, c["decrement"], cancel_qty),
                               is_cancel | (routes["cancelled"] & ~cancel_unknown)),
        "leavesQty": ac.masked(c["leaves"], (is_cancel | is_mod) & (c["leaves"] >= 0)),
        "initiator": ac.codes(np.zeros(n, np.int8), ["F"], is_cancel | is_mod),
        "tradeID": numtext.integer_text(c["match"].astype(np.uint64, copy=False), is_trade),
        **_trade_columns(c, is_trade, event_ts, key_date, side_code),
        # not a CAT field: the journal record's time, or the venue's OUCH timestamp of an answer a
        # crash recovery journaled later (MEOM, MEOC, MEOT: with_venue_times)
        "event_time_source": common.time_source(ev, venuetime.EVENT_SOURCES),
        "trade_date": ac.masked(np.floor_divide(local, timetext.NS_PER_DAY).astype(np.int32), ev.utc.valid,
                                pa.date32()),                       # the Eastern trading day
    }
    at = list(cols).index("session")
    del cols["session"]
    table = pa.table(cols)
    checks = common.event_checks(table.append_column("isin", inst_cols["isin"])
                                 .append_column("segment_mic", inst_cols["segment_mic"]),
                                 ev, ref, inst_idx, algo_idx, client_idx)
    # rows rejected here for lacking these fields, with why: not again as merely lacking them
    no_session = with_terms & (session < 0) & ev.utc.valid & ~adopted
    explained = {"tradingSession": no_session, "destination": unrouted, "destinationType": unrouted,
                 "affiliateFlag": unrouted | affiliate_unsaid | (account_unsaid & is_new),
                 "custDspIntrFlag": account_unsaid, "isoInd": iso_unsaid, "cancelQty": cancel_unknown,
                 "dupROIDCond": dup_unknown}
    head = checks + [common.order_side_check(ev, with_terms | is_trade),
                     mask_check("tradingSession", no_session, NO_SESSION),
                     mask_check("destination", unrouted, lambda rows: _no_destination(ref, types, inst_idx, rows)),
                     mask_check("affiliateFlag", affiliate_unsaid,
                                lambda rows: _no_affiliate(ref, types, inst_idx, rows)),
                     mask_check("custDspIntrFlag", account_unsaid,
                                lambda rows: _account_unsaid(ref, types, client_idx, rows)),
                     mask_check("firmDesignatedID", fdid_long, lambda rows: _fdid_too_long(fdid, rows)),
                     mask_check("isoInd", iso_unsaid, lambda rows: _iso_reasons(types[rows], iso[rows])),
                     mask_check("cancelQty", cancel_unsaid, lambda rows: _cancel_unknown(c, rows)),
                     mask_check("dupROIDCond", dup_unknown, DUP_UNKNOWN)]
    # an execution of an order no journaled ORDER_SENT created: rejected for that alone (not for
    # MEOT fields: whether a MEOT is owed at all depends on its venue, unknown without the order)
    orphan = is_trade & (c["creator"] < 0)
    head.append(mask_check("type", orphan, ORPHAN_TRADE))
    head.append(mask_check("orderKeyDate", adopted, lambda rows: [
        f"no {CAT_TYPES[t]}: {common.adopted_origin(s)}; {ADOPTED}"
        for t, s in zip(types[rows], c["creator_seq"][rows].tolist())]))
    head.append(mask_check("routedOrderID", lost_modify & ~adopted, lambda rows: _lost_modify_reasons(
        c, rows, marks.adopted_modify(c["token_key"][rows], c["seq"][rows]))))
    head.append(mask_check("routedOrderID", redecided & ~adopted, lambda rows: [
        f"no MECR: replay decided this Cancel again after a crash, its ORDER_SENT lost with the journal's torn "
        f"tail (the RECON record at journal sequence {s} lists it), and the venue's Canceled or Cancel Reject "
        f"that follows shows it received it. {REDECIDED_CANCEL}" for s in c["seq"][rows].tolist()]))
    orphan = orphan | adopted | lost_modify | redecided     # rejected for that alone, not for the fields it lacks
    tail = [mask_check(name, is_trade & ~orphan, reason) for name, reason in UNKNOWN_MEOT.items()]
    tail.append(mask_check("routedOrderID", unsent_route, lambda rows: [
        f"no {CAT_TYPES[t]}: the venue never received this order (a recovery marked {k.decode()!r} not sent at "
        f"journal sequence {s})" for t, k, s in zip(types[rows], c["token_key"][rows],
                                                      not_sent.seq[not_sent.find(c["token_key"][rows])])]))
    resent = marks.resent_cancel if marks is not None else recovery_marks.no_marks()
    tail.append(mask_check("routedOrderID", routes["lost"], lambda rows: [
        f"no MECR: the venue never received this Cancel (a recovery found it unanswered and sent it again, "
        f"journal sequence {s})" for s in resent.seq[resent.find(c["token_key"][rows])]]))
    return Unsessioned(table=table, at=at, route=is_route, types=types, head=head, tail=tail, orphan=orphan,
                       explained=explained)


def _lost_modify_reasons(c, rows: np.ndarray, recon_seqs: np.ndarray) -> list[str]:
    """Why the MEMR of each of `rows` (a venue's Order Modified a recovery adopted) is rejected, with
    what the journal proves of that Modify."""
    return [f"no MEMR: the firm's Modify of this order was lost with the journal's torn tail; a crash recovery "
            f"adopted the venue's size-down (RECON resolution adopt-modify at journal sequence {r}), which the "
            f"venue's Order Modified at this sequence confirms: {q} shares, side {chr(w) if w else '?'}, at the "
            f"order's price. {ADOPTED_MODIFY}"
            for r, q, w in zip(recon_seqs.tolist(), c["qty"][rows].tolist(), c["wire_side"][rows].tolist())]


def _closed_at_resolution(ev: events.OrderEvents, closing: np.ndarray,
                          not_sent: recovery_marks.Marks) -> events.OrderEvents:
    """The MEOC rows of orders whose Enter never reached the venue, moved to the recovery's
    resolution: its journal sequence and UTC time, the order's whole quantity cancelled and none
    left (the order was cancelled inside the firm: initiator F, as every MEOC here)."""
    c = ev.cols
    at = np.flatnonzero(closing)
    mark = not_sent.find(c["token_key"][at])
    for name, values in (("seq", not_sent.seq[mark]), ("decrement", c["qty"][at]), ("leaves", 0)):
        c[name] = c[name].copy()
        c[name][at] = values
    u = ev.utc
    utc_ns, valid = u.utc_ns.copy(), u.valid.copy()
    utc_ns[at], valid[at] = not_sent.utc_ns[mark], not_sent.utc_valid[mark]
    return events.OrderEvents(cols=c, utc=UtcTimes(utc_ns, valid, u.basis, u.utc_offset_s, u.sample_index),
                              samples=ev.samples)


# tradingSession, from the CAT JSON schema's code set (4.1.0 r15: FOR, PRE, PREREG, REG, REGPOST,
# POST, PREPOST, ALL) and CAT FAQ D32 (ALL: "the order can trade in any available session at the
# venue where it is sent"; an order limited to some sessions names them). OUCH 4.2 time in force
# 99999 (system hours) is ALL and 99998 (market hours) REG; an IOC or timed order is named by the
# sessions its life touches, from the row's time (the firm's send time) to that plus its time in
# force: PRE, REG or POST alone, PREREG or REGPOST across one boundary, ALL from pre- through
# post-market. Not used: PREPOST (pre- and post-market but not the regular session between them,
# which an order alive without a break cannot skip) and FOR (a foreign market's session: the venues
# here are US ones). An order alive outside the extended hours has no session to trade in: rejected.
TRADING_SESSIONS = ["ALL", "REG", "PRE", "PREREG", "REGPOST", "POST"]
SYSTEM_HOURS, MARKET_HOURS = 99999, 99998       # OUCH 4.2 TIF: every session / the regular market only
# US equity venues' sessions in Eastern Time: the regular one and the extended hours around it
# (Nasdaq's pre-market from 04:00 and post-market until 20:00, for one)
PRE_OPEN_S, REGULAR_OPEN_S = 4 * 3600, 9 * 3600 + 30 * 60
REGULAR_CLOSE_S, POST_CLOSE_S = 16 * 3600, 20 * 3600
_SESSION_BOUNDS_NS = np.array([PRE_OPEN_S, REGULAR_OPEN_S, REGULAR_CLOSE_S, POST_CLOSE_S], np.int64) \
    * timetext.NS_PER_S
# An instant's session is the number of bounds at or before it: 0 before 04:00, 1 pre-market,
# 2 regular, 3 post-market, 4 from 20:00. (first instant's, last instant's) -> TRADING_SESSIONS
# index, -1 where none fits (outside the extended hours; or impossible: a life runs forward)
_SPANS = np.full((5, 5), -1, np.int8)
_SPANS[1, 1:4] = [TRADING_SESSIONS.index(name) for name in ("PRE", "PREREG", "ALL")]
_SPANS[2, 2:4] = [TRADING_SESSIONS.index(name) for name in ("REG", "REGPOST")]
_SPANS[3, 3] = TRADING_SESSIONS.index("POST")
NO_SESSION = ("tradingSession: the order (IOC or timed, OUCH time in force below 99998) lives, at least in part, "
              "outside 04:00-20:00 ET, the extended hours of US equity venues (pre-market, regular and "
              "post-market sessions): there is no session of the venue it can trade in, so no CAT "
              "tradingSession fits it; none is guessed")


def _trading_sessions(tif: np.ndarray, local_ns: np.ndarray) -> np.ndarray:
    """TRADING_SESSIONS index per row, -1 where none fits: ALL for OUCH system hours (99999: the
    venue's every session), REG for market hours (99998), and for an IOC or timed order the span of
    sessions its life touches, from the row's Eastern time (`local_ns`: timetext.eastern_local_ns)
    until its time in force (seconds) runs out; -1 for one alive outside 04:00-20:00 ET."""
    tif = np.asarray(tif, np.int64)
    first = np.mod(local_ns, timetext.NS_PER_DAY)           # the time of day its timestamp shows
    last = tif * timetext.NS_PER_S                          # its last nanosecond alive (an IOC: its first)
    last -= 1
    np.maximum(last, 0, out=last)
    last += first
    span = np.zeros(len(tif), np.int8)                      # first's session * 5 + last's
    for bound in _SESSION_BOUNDS_NS:                        # compares, not a search: a third of the time
        span += (first >= bound).view(np.int8) * np.int8(5)
        span += (last >= bound).view(np.int8)
    out = _SPANS.ravel().take(span)
    out[tif == MARKET_HOURS] = TRADING_SESSIONS.index("REG")
    out[tif == SYSTEM_HOURS] = TRADING_SESSIONS.index("ALL")
    return out


DESTINATION_TYPES = ["E", "F"]      # CAT Exchange ID / Industry Member ID (RefData.cat_route)


def _destinations(ref: RefData, inst_idx: np.ndarray, is_route: np.ndarray
                  ) -> tuple[pa.Array, pa.Array, np.ndarray]:
    """destination and destinationType of the route rows `is_route`, from their instrument's venue
    (RefData.cat_route), null elsewhere; and the route rows whose venue gives none (rejected:
    _no_destination; an unknown instrument is rejected for itself)."""
    routes = [ref.cat_route(i.mic) for i in ref.sorted_values("instruments")]
    known = np.array([r is not None for r in routes] + [False], bool)[inst_idx]       # -1: the trailing False
    kind = np.array([DESTINATION_TYPES.index(r[1]) if r else 0 for r in routes] + [0], np.int8)[inst_idx]
    at = np.where(is_route & known, inst_idx, -1)
    return (numtext.pick_text(at, tuple(r[0] if r else None for r in routes)),
            ac.codes(kind, DESTINATION_TYPES, at >= 0), is_route & (inst_idx >= 0) & ~known)


def _route_affiliates(ref: RefData, inst_idx: np.ndarray, rows: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """affiliateFlag of the route rows `rows` (with a destination), from their venue
    (RefData.cat_affiliate: false for an exchange, mics.toml cat_affiliate for a broker-dealer or
    ATS): the values, the rows that have one, and the rows whose venue does not say (rejected:
    _no_affiliate)."""
    said = [ref.cat_affiliate(i.mic) for i in ref.sorted_values("instruments")]
    value = np.array([bool(a) for a in said] + [False], bool)[inst_idx]        # -1: the trailing entry
    known = np.array([a is not None for a in said] + [False], bool)[inst_idx]
    return value & rows, rows & known, rows & (inst_idx >= 0) & ~known


def _no_affiliate(ref: RefData, types: np.ndarray, inst_idx: np.ndarray, rows: np.ndarray) -> list[str]:
    """Why each route row of `rows` has no affiliateFlag: its venue is an Industry Member whose
    mics.toml row does not say whether it is the firm's affiliate."""
    inst = ref.sorted_values("instruments")
    return [f"no {CAT_TYPES[t]}: the venue of {inst[i].symbol} (MIC {inst[i].mic}) is a broker-dealer or ATS "
            f"(cat_member {ref.mics[inst[i].mic]['cat_member']}) whose mics.toml row does not say cat_affiliate = "
            f"true or false: CAT's affiliateFlag (whether the destination is the firm's affiliate) is the firm's "
            f"to say, and none is guessed" for t, i in zip(types[rows].tolist(), inst_idx[rows].tolist())]


def _account_facts(ref: RefData, client_idx: np.ndarray, is_new: np.ndarray, is_mod: np.ndarray):
    """The account's affiliateFlag (MENO) and custDspIntrFlag (MENO, MEOM), each as (values, rows
    that have one), from parties.toml (RefData.Party: false for the firm's own account, a client's as
    stated); and the MENO and MEOM rows of a known client that lacks one (rejected: _account_unsaid)."""
    clients = ref.sorted_values("clients")

    def fact(name: str) -> tuple[np.ndarray, np.ndarray]:
        said = [getattr(p, name) for p in clients]
        return (np.array([bool(v) for v in said] + [False], bool)[client_idx],
                np.array([v is not None for v in said] + [False], bool)[client_idx])
    affiliate, display = fact("cat_affiliate"), fact("cat_display_instruction")
    unsaid = (client_idx >= 0) & ((is_new & ~(affiliate[1] & display[1])) | (is_mod & ~display[1]))
    return affiliate, display, unsaid


# a client's CAT facts in parties.toml: (key, the CAT field, what it says)
_CLIENT_FACTS = (("cat_affiliate", "affiliateFlag", "whether the account is the firm's affiliate"),
                 ("cat_display_instruction", "custDspIntrFlag",
                  "whether the customer instructs that its orders not be displayed, Reg NMS Rule 604"))


def _account_unsaid(ref: RefData, types: np.ndarray, client_idx: np.ndarray, rows: np.ndarray) -> list[str]:
    """Why each MENO or MEOM of `rows`, an order for a client whose CAT facts parties.toml does not
    state, is rejected."""
    clients = ref.sorted_values("clients")
    out = []
    for t, k in zip(types[rows].tolist(), client_idx[rows].tolist()):
        code, client = CAT_TYPES[t], clients[k]
        missing = [f"{key} ({field}: {what})" for key, field, what in _CLIENT_FACTS
                   if getattr(client, key) is None and (code == "MENO" or field == "custDspIntrFlag")]
        out.append(f"no {code}: the order is for client {client.id} ({client.kind} {client.code}), not the firm's "
                   f"own account, and parties.toml does not say {' or '.join(missing)} of it; not guessed")
    return out


# isoInd (CAT JSON schema 4.1.0 r15 choices: ISOD, ISOI, NA) from the OUCH Enter's or Replace's
# intermarket sweep eligibility byte (a Modify keeps its order's): 'N' is no ISO, NA. For 'Y' the
# schema gives no meaning for ISOD and ISOI that says which an ISO the firm routes is: rejected, not
# guessed. The engine sends 'N' on every Enter and Replace (mm_core/orderwire.py).
ISO_NOT_ELIGIBLE, ISO_ELIGIBLE = ord("N"), ord("Y")
ISO_CODES = ["NA"]
ISO_UNCONFIRMED = ("isoInd: the order was sent as an intermarket sweep order (OUCH intermarket sweep eligibility "
                   "'Y'); of the CAT JSON schema 4.1.0 r15 codes for one, ISOD and ISOI, which applies could not "
                   "be confirmed from the specification, and none is guessed")


def _iso_reasons(types: np.ndarray, iso: np.ndarray) -> list[str]:
    """Why each of these rows (type, OUCH intermarket sweep byte) has no isoInd."""
    return [ISO_UNCONFIRMED if b == ISO_ELIGIBLE else
            f"{CAT_TYPES[t]} isoInd: the order's OUCH intermarket sweep eligibility byte {bytes([b])!r} is neither "
            f"'Y' nor 'N', so no isoInd fits it" for t, b in zip(types.tolist(), iso.tolist())]


def _route_cancel_qty(c, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cancelQty of the MECR rows `rows`: what the firm's Cancel takes off, the order's open quantity
    when it was sent (the venue-confirmed remaining quantity at the Cancel's journal place: the
    quantity the firm knew of and asked about) less the size it asks to leave (OUCH Cancel's
    intended shares, journaled as the ORDER_SENT's qty; 0 for a full cancel). And the rows where
    that is unknown: a truncated message left its quantity unknown, or the Cancel asks to leave
    more than is open (rejected: _cancel_unknown). An order the venue had not accepted yet (pending new) is open
    for the whole quantity the firm sent: nothing of it could have executed as far as the firm knew
    when it asked (the MEOC, the venue's Canceled, says what the venue actually took off)."""
    open_qty, leave = np.where(c["leaves"] == events.LEAVES_PENDING, c["order_qty"], c["leaves"]), c["qty"]
    known = rows & (open_qty >= 0) & (leave <= open_qty)
    return np.where(known, open_qty - leave, 0), rows & ~known


def _duplicate_routed_ids(ev: events.OrderEvents, rows: np.ndarray, local: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """dupROIDCond of the route rows `rows` whose routedOrderID is the order's new token (MEOR, a
    Replace's MEMR): true where an earlier order of the journal had the same token on the same
    Eastern day (`local`: each row's Eastern time; a token reused on a later day is no duplicate).
    The journal holds one venue session, so the destination is the same. And the rows where that is
    not known: the earlier order's time has no UTC (rejected: DUP_UNKNOWN)."""
    c, book = ev.cols, ev.cols.book
    dup, unknown = np.zeros(len(rows), bool), np.zeros(len(rows), bool)
    # each route row is its order's ORDER_SENT, joined to itself (events.held_then)
    earlier = np.where(rows, c["order_earlier_token"], -1)
    at = np.flatnonzero(earlier >= 0)
    if len(at) == 0:
        return dup, unknown
    earlier = earlier[at]
    then = to_utc(book["seq"][earlier], book["ts_ns"][earlier].astype(np.int64), book["ts_source"][earlier],
                  ev.samples)
    day = np.floor_divide(local[at], timetext.NS_PER_DAY)
    earlier_day = np.floor_divide(timetext.eastern_local_ns(then.utc_ns), timetext.NS_PER_DAY)
    dup[at] = then.valid & (earlier_day == day)
    unknown[at] = ~then.valid | ~ev.utc.valid[at]
    return dup, unknown


DUP_UNKNOWN = ("no dupROIDCond: an earlier order of the journal had this routedOrderID, and its time (or this "
               "route's) has no UTC, so whether it was routed the same day is not known; none is guessed")


def _cancel_unknown(c, rows: np.ndarray) -> list[str]:
    """Why each MECR of `rows` has no cancelQty."""
    why = {events.LEAVES_UNKNOWN: "a venue message of the order the journal holds truncated left its open quantity "
                                  "unknown"}
    out = []
    pending = c["leaves"][rows] == events.LEAVES_PENDING
    opened = np.where(pending, c["order_qty"][rows], c["leaves"][rows])
    for open_qty, leave in zip(opened.tolist(), c["qty"][rows].tolist()):
        cause = why.get(open_qty) or f"the Cancel asks to leave {leave} shares of an order with {open_qty} open"
        out.append(f"no MECR: {cause}, so what the Cancel takes off (CAT cancelQty) is not known, and none is guessed")
    return out


def _no_destination(ref: RefData, types: np.ndarray, inst_idx: np.ndarray, rows: np.ndarray) -> list[str]:
    """Why each route row of `rows` has no destination: its venue's MIC and what mics.toml lacks."""
    inst = ref.sorted_values("instruments")
    return [f"no {CAT_TYPES[t]}: the venue of {inst[i].symbol} (MIC {inst[i].mic}) has neither cat_destination "
            f"(its CAT Exchange ID, destinationType E) nor cat_member (the CRD:IMID of a broker-dealer or ATS, "
            f"destinationType F) in mics.toml; CAT's destination is not the MIC and none is guessed"
            for t, i in zip(types[rows].tolist(), inst_idx[rows].tolist())]


def _trade_columns(c, is_trade: np.ndarray, event_ts: pa.Array, key_date: pa.Array,
                   side_code: np.ndarray) -> dict[str, pa.Array]:
    """The MEOT fields beside quantity, price and tradeID: tradeKeyDate (the trade's own
    timestamp), cancelFlag (false: no TRF/ORF/ADF rejection is journaled; see NOTES) and no
    cancelTimestamp, capacity (the OUCH Enter Order's), no sideDetailsInd (its code set is
    unconfirmed: UNKNOWN_MEOT) and the side details of the firm's order (orderKeyDate, orderID,
    CAT side); null on other rows."""
    n = len(is_trade)
    known_side = is_trade & (side_code < len(SIDES))
    sell = side_code > 0                                       # SIDES: B, then the sells
    capacity = np.full(n, len(CAPACITIES), np.int8)
    for i, byte in enumerate(CAPACITIES):
        capacity[c["order_capacity"] == byte] = i
    cols = {
        "tradeKeyDate": _where(is_trade, event_ts) if is_trade.any() else pa.nulls(n, pa.string()),
        "cancelFlag": ac.masked(np.zeros(n, bool), is_trade),
        "cancelTimestamp": pa.nulls(n, pa.string()),
        "capacity": ac.codes(capacity, list(CAPACITIES.values()) + ["?"], is_trade & (capacity < len(CAPACITIES))),
        "sideDetailsInd": pa.nulls(n, pa.string()),
    }
    if not known_side.any():
        return {**cols, "buyDetails": pa.nulls(n, SIDE_DETAILS), "sellDetails": pa.nulls(n, SIDE_DETAILS)}
    children = [ac.plain(key_date), ac.token_strings(c["token_key"], is_trade),
                ac.plain(ac.codes(side_code, list(SIDES.values()) + ["?"], known_side))]
    for name, mine in (("buyDetails", known_side & ~sell), ("sellDetails", known_side & sell)):
        cols[name] = pa.StructArray.from_arrays(children, fields=list(SIDE_DETAILS), mask=pa.array(~mine))
    return cols


def select_eastern_date(ev: events.OrderEvents, trade_date: dt.date | None,
                        not_sent: recovery_marks.Marks | None = None) -> events.OrderEvents:
    """Events whose US Eastern date (CAT's trading day and file date) is `trade_date`; events with
    no UTC time are kept so that they are rejected with their reason rather than vanish; and the
    Enter of an order a recovery marked not sent on that day (`not_sent`), for its MEOC."""
    if trade_date is None:
        return ev
    day = _day_number(trade_date)
    keep = ~ev.utc.valid | (timetext.eastern_days(ev.utc.utc_ns) == day)
    if not_sent is not None and len(not_sent):
        closes = np.flatnonzero(~keep & (ev.cols["event"] == EV["SENT_NEW"]))
        mark = not_sent.find(ev.cols["token_key"][closes])
        hit = mark >= 0
        closes, mark = closes[hit], mark[hit]
        keep[closes] = not_sent.utc_valid[mark] & (timetext.eastern_days(not_sent.utc_ns[mark]) == day)
    return ev.take(np.flatnonzero(keep))


def _day_number(day: dt.date | None) -> int | None:
    return None if day is None else (day - dt.date(1970, 1, 1)).days


def _time_in_force(ioc: np.ndarray, day_bytes: np.ndarray, valid: np.ndarray, rows: np.ndarray) -> pa.Array:
    """timeInForce of `rows`: IOC for an OUCH time-in-force 0, else DAY= and the Eastern date
    (`day_bytes`, (n, 8) contiguous; null without a valid time); null on other rows."""
    day = day_bytes.view(np.uint64)[:, 0]                        # a date's 8 bytes as one word
    dated = rows & ~ioc & valid
    days, which = np.unique(day[dated], return_inverse=True) if _many(day, dated) else (day[dated][:1], 0)
    idx = np.where(rows & ioc, 0, -1)
    idx[dated] = 1 + which
    return numtext.pick_text(idx, ("IOC",) + tuple("DAY=" + d.tobytes().decode() for d in days))


def _many(words: np.ndarray, rows: np.ndarray) -> bool:
    """Whether `words` differ among `rows` (a chunk's dates are mostly one)."""
    at = np.flatnonzero(rows)
    return len(at) > 0 and bool((words[at] != words[at[0]]).any())


def _firm_designated_ids(ref: RefData, desk_ids: np.ndarray, client_idx: np.ndarray, own: np.ndarray,
                         rows: np.ndarray) -> tuple[pa.Array, np.ndarray]:
    """firmDesignatedID of `rows` (MENO): PROP- and the desk's code for the firm's own account,
    else the client's code; null where that code is unknown or empty, and on other rows. With it,
    the rows whose one is longer than FDID_MAX (rejected: _fdid_too_long)."""
    desks, clients = ref.sorted_values("desks"), ref.sorted_values("clients")
    desk_idx = ref.party_index("desks", desk_ids)
    idx = np.where(own, desk_idx, np.where(client_idx >= 0, len(desks) + client_idx, -1))
    idx[~rows] = -1
    texts = tuple("PROP-" + d.code if d.code else None for d in desks) + tuple(p.code or None for p in clients)
    too_long = np.array([t is not None and len(t) > FDID_MAX for t in texts] + [False])     # [-1]: none
    return numtext.pick_text(idx, texts), too_long[idx]


def _fdid_too_long(fdid: pa.Array, rows: np.ndarray) -> list[str]:
    """Why the MENO of each of `rows` is rejected: its firmDesignatedID is longer than CAT takes."""
    return [f"no MENO: its firmDesignatedID {v!r} has {len(v)} characters, more than the {FDID_MAX} of the CAT "
            f"JSON schema 4.1.0 r15 (Text (40)); it is not truncated (the firm's own account's is PROP- and the "
            f"desk's code, a client's its code, in parties.toml)" for v in fdid.take(pa.array(rows)).to_pylist()]


def _where(mask: np.ndarray, values: pa.Array) -> pa.Array:
    return pc.if_else(pa.array(mask), values, pa.scalar(None, values.type))


_TYPE_WORDS = np.array(CAT_TYPES, dtype="S4").view(np.uint32)      # each name's 4 bytes as one word


def _type_text(types: np.ndarray) -> pa.Array:
    """CAT_TYPES[types] as a plain string column (every type name is 4 letters)."""
    return ac.row_text(_TYPE_WORDS[types].view(np.uint8).reshape(len(types), 4), 4)


def _order_key_dates(ev: events.OrderEvents, event_ts: pa.Array, stamps: np.ndarray) -> pa.Array:
    """orderKeyDate: the CAT timestamp of the ORDER_SENT that created each row's order. Rows of
    that record itself (MENO and MEOR) have it as their eventTimestamp (`event_ts`, whose bytes
    are `stamps`) already, and so do the later rows of an order created in the same chunk (its
    MENO row's bytes are copied); only the others' creators are converted, laid over a copy of
    those bytes."""
    c = ev.cols
    own = (c["creator_seq"] == c["seq"]) & (c["creator_ts_ns"] == c["ts_ns"]) \
        & (c["creator_ts_source"] == c["ts_source"])
    others = np.flatnonzero(~own)
    if len(others) == 0:
        return event_ts
    rows, valid = stamps.copy(), ev.utc.valid.copy()
    at = _creator_rows(c["creator"], own, others)
    here = at >= 0
    whole = np.dtype((np.void, rows.shape[1]))          # a row's bytes as one item: one gather
    rows.view(whole)[others[here], 0] = stamps.view(whole)[at[here], 0]
    valid[others[here]] = valid[at[here]]
    rest = others[~here]
    if len(rest):
        key_utc = to_utc(c["creator_seq"][rest], c["creator_ts_ns"][rest], c["creator_ts_source"][rest],
                         ev.samples)
        rows[rest] = timetext.cat_timestamp_rows(key_utc.utc_ns)
        valid[rest] = key_utc.valid
    return ac.row_text(rows, rows.shape[1], valid)


def _creator_rows(creator: np.ndarray, own: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For each of `rows`, a row of this chunk that is its order's creating record itself (`own`,
    with the same creator: the book row of that ORDER_SENT), or -1 where the order was created
    in an earlier chunk: a table over the chunk's span of book rows, no search."""
    mine = np.flatnonzero(own & (creator >= 0))
    if len(mine) == 0:
        return np.full(len(rows), -1, np.int64)
    base = int(creator[mine].min())
    table = np.full(int(creator[mine].max()) - base + 1, -1, np.int64)
    table[creator[mine] - base] = mine
    k = creator[rows] - base
    inside = (k >= 0) & (k < len(table))
    return np.where(inside, table[np.where(inside, k, 0)], -1)


def _order_key_column(key_date: pa.Array, is_trade: np.ndarray, reroute: np.ndarray, prior_key: pa.Array) -> pa.Array:
    """orderKeyDate: the row's order's, the replaced order's on a re-route (MEMR of a Replace), none
    on a trade (its orders are in its side details)."""
    if reroute.any():
        key_date = pc.if_else(pa.array(reroute), prior_key, key_date)
    return _where(~is_trade, key_date) if is_trade.any() else key_date


def _prior_key_dates(ev: events.OrderEvents, rows: np.ndarray) -> pa.Array:
    """priorOrderKeyDate of the MEOM rows `rows` (a venue Replaced; or the orderKeyDate of a MEMR of
    a Replace, the order whose route it changes): the CAT timestamp of the
    ORDER_SENT that created the replaced order (prior_creator), as that order's own orderKeyDate
    is; null elsewhere, and where no ORDER_SENT of the journal created it. Tech Specs 4.0.0-r18,
    Order Modified: with a new Order Key, "the prior order fields must reflect the order that is
    being replaced" (MECOM and MEIM say priorOrderKeyDate must be populated with priorOrderID)."""
    c = ev.cols
    at = np.flatnonzero(rows & (c["prior_creator"] >= 0))
    if len(at) == 0:
        return pa.nulls(len(rows), pa.string())
    book, creator = c.book, c["prior_creator"][at]
    key_utc = to_utc(book["seq"][creator], book["ts_ns"][creator].astype(np.int64),
                     book["ts_source"][creator], ev.samples)
    stamps = np.zeros((len(rows), orderjoin.CAT_TIMESTAMP_BYTES), np.uint8)
    valid = np.zeros(len(rows), bool)
    stamps[at] = timetext.cat_timestamp_rows(key_utc.utc_ns)
    valid[at] = key_utc.valid
    return ac.row_text(stamps, stamps.shape[1], valid)


def _requiring() -> dict[str, np.ndarray]:
    """Each required field (in the order REQUIRED names them) -> whether each CAT type requires it."""
    out: dict[str, np.ndarray] = {}
    for code, fields in REQUIRED.items():
        for name in COMMON_REQUIRED + fields:
            out.setdefault(name, np.zeros(len(CAT_TYPES), bool))[CAT_TYPES.index(code)] = True
    return out


_REQUIRING = _requiring()


def required_checks(table: pa.Table, types: np.ndarray, skip: np.ndarray | None = None,
                    skip_fields: dict[str, np.ndarray] | None = None) -> list:
    """One check per field: rows of an event type that requires it and lack it are rejected (but
    rows `skip`, rejected for a reason that comes first, and for a field of `skip_fields` its rows,
    rejected already for why they lack it)."""
    checks = []
    of_type = None
    skip_bits = np.packbits(skip, bitorder="little") if skip is not None and skip.any() else None
    field_bits = {name: np.packbits(rows, bitorder="little") for name, rows in (skip_fields or {}).items()
                  if rows.any()}
    for name, by_type in _REQUIRING.items():
        column = table.column(name)
        if column.null_count:
            if of_type is None:        # each type's rows as bits, once: fields compare 8 rows a byte
                of_type = np.packbits(types[None, :] == np.arange(len(CAT_TYPES))[:, None], axis=1,
                                      bitorder="little")
            needed = np.bitwise_or.reduce(of_type[by_type], axis=0)
            if skip_bits is not None:
                needed &= ~skip_bits
            if name in field_bits:
                needed &= ~field_bits[name]
            valid = column.chunks[0].buffers()[0] if column.num_chunks == 1 else None
            if valid is not None and column.chunks[0].offset == 0:
                valid_bits = np.frombuffer(valid, np.uint8, count=len(needed))
                if not (needed & ~valid_bits).any():       # every row needing it has it
                    column = None
            if column is not None:
                missing = np.unpackbits(needed, count=len(types), bitorder="little").view(bool) \
                    & ~ac.valid_mask(column)
                checks.append(mask_check(name, missing, lambda rows, name=name: [
                    f"{CAT_TYPES[t]} requires {name}" for t in types[rows]]))
                continue
        checks.append((name, passed(len(types))))          # nothing missing: no mask to build
    return checks


def _venue_session(src: JournalSlice) -> str | None:
    """The venue session of the last SESSION_START from the journal start to the range's end: one
    scan of the record-type column finds it (data sequences have no gaps, so its row gives its
    sequence), then that one record is read, not every SESSION_START."""
    first = max(1, int(src.reader.first_seq))
    types = src.reader.scan(first, src.last_seq, fields=("rtype",)).rtype
    hits = np.flatnonzero(types == RecordType.SESSION_START)
    if len(hits) == 0:
        return None
    seq = first + int(hits[-1])
    starts = src.reader.read_fixed(RecordType.SESSION_START, first_seq=seq, last_seq=seq)
    return starts["venue_session"][-1].decode(errors="replace").strip("\x00 ") or None


def stream(src: JournalSlice, ref: RefData, sink, text: bool = True) -> ReportOutput:
    """CAT events chunk by chunk (bounded memory): each chunk's kept rows go to
    `sink.add("order_events", t)` and, unless `text` is False (Parquet only), as JSON lines to the
    submission files of their date."""
    files = cat_json.SubmissionFiles(ref.firm, notes=NOTES, journal_id=src.journal_id) if text else None
    rejects = []
    waiting: list[Unsessioned] = []      # chunks built while the venue session scan runs

    def publish(table: pa.Table, checks: list) -> None:
        kept, rejected = split(table, KIND, "order_events", checks)
        kept = declare_required(kept.replace_schema_metadata({**(kept.schema.metadata or {}),
                                                              b"cat.notes": NOTES.encode()}), NOT_NULL)
        sink.add("order_events", kept)
        if files is not None:
            files.add(kept, sink)
        if rejected.num_rows:
            rejects.append(rejected)

    def release(wait: bool) -> None:
        """Publish the chunks waiting for the venue session, in order, once it is known (`wait`:
        wait for it)."""
        if wait or session.done():
            venue_session = session.result()
            while waiting:
                publish(*waiting.pop(0).with_session(venue_session))

    redecided: list[RedecidedCancels] = []

    def with_redecided(ev: events.OrderEvents) -> events.OrderEvents:
        """`ev` with its re-decided Cancels' rows (redecided.py): every chunk, in journal order,
        before any selection (the marks are read by then)."""
        if not redecided:
            redecided.append(RedecidedCancels(marks.result().redecided, src.first_seq, src.last_seq))
        return redecided[0].add_rows(ev)

    def emit(ev: events.OrderEvents, rejections: dict) -> None:
        if src.selection.trade_date is None:       # (with a date, added before it selects)
            ev = common.with_venue_times(with_redecided(ev), timing)
        lost = resent_cancels.lost_seqs(src, ev.cols, marks.result().resent_cancel)
        waiting.append(build_unsessioned(ev, ref, rejections, marks.result(), src.journal_id,
                                         _day_number(src.selection.trade_date), lost))
        release(wait=len(waiting) > SESSION_AHEAD)

    # crash recoveries and login replays: the venue answers they journaled are timed by the venue
    # (common.with_venue_times, after a re-decided Cancel's row is added: that row is the firm's)
    timing = venuetime.venue_timing(src.reader, src.last_seq)
    # A chunk is built once the next one is decoded: its route rows' rejections (routeRejectedFlag)
    # are those of its own chunk and the next (at least LOOKAHEAD_SEQS past each row), taken from
    # the decoded events, and those LOOKAHEAD_SEQS past the range's end, read beside the first
    # decode (no pass over the whole range before the first chunk). The venue session needs a
    # scan of the whole range (its segments checked first), so chunks are built without it until
    # it is known (at most SESSION_AHEAD of them wait: bounded memory), then finished in order.
    with ThreadPoolExecutor(max_workers=1) as aside:     # beside the first decodes, in this order
        marks = aside.submit(recovery_marks.read, src.reader)      # few RECON records: first
        past_end = aside.submit(cat_routes.venue_rejections, src, src.last_seq + 1)
        session = aside.submit(_venue_session, src)
        held, held_rejections = None, None
        for chunk in events.collect_chunks(src, gather_joined=False):
            mine = cat_routes.chunk_rejections(chunk)
            # the marks (a scan of the whole journal for RECON records) only wait for a date's
            # selection; otherwise the first chunk is built while the scan runs
            trade_date = src.selection.trade_date
            if trade_date:          # the venue's times first: they decide a recovered answer's day
                chunk = common.with_venue_times(with_redecided(chunk), timing)
            ev = select_eastern_date(chunk, trade_date, marks.result().not_sent if trade_date else None)
            del chunk
            if held is not None:
                emit(held, cat_routes.joined(held_rejections, mine, past_end.result()))
            held, held_rejections = ev, mine
        if held is not None:
            emit(held, cat_routes.joined(held_rejections, past_end.result()))
            del held
        release(wait=True)
    if files is not None:
        files.finish(sink, src.provenance())
    return ReportOutput(kind=KIND, schema_version=SCHEMA_VERSION, tables={},
                        rejects=pa.concat_tables(rejects) if rejects else REJECTS_SCHEMA.empty_table())


def build(src: JournalSlice, ref: RefData) -> ReportOutput:
    """The whole report in memory (tests, benchmarks); `run` streams it to disk instead."""
    collector = TableCollector()
    return collector.complete(stream(src, ref, collector))
