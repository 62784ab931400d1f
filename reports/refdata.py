"""Reference data for reports: the firm, instruments (ISIN, CFI, MIC, currency, tick table), the
algo/desk/trader/client registry and a MIC registry (with each venue's CAT route destination),
loaded from TOML files in one directory.

Owns parsing and validating those files (typed RefDataError naming file and key) and the numpy
lookup arrays report builders use to join by id without Python loops. Knows nothing of journals.
"""
from __future__ import annotations

import pathlib
import tomllib
from dataclasses import dataclass, field

import numpy as np

from reports.errors import RefDataError
from reports.identifiers import (
    cat_exchange_problem, cat_member_problem, cat_submitter_problem, cfi_problem, country_problem,
    currency_problem, isin_problem, lei_problem, mic_problem,
)

DEFAULT_DIR = pathlib.Path(__file__).resolve().parent / "refdata"
FILES = ("firm.toml", "instruments.toml", "parties.toml", "mics.toml")


@dataclass(frozen=True)
class Firm:
    lei: str
    name: str
    branch_country: str
    investment_firm: bool
    submitting_lei: str
    competent_authority: str
    cat_imid: str                   # CRD:IMID (validated: identifiers.cat_member_problem)
    trading_capacity: str
    cat_submitter_id: str = ""      # CAT's id of the firm as submitter; "" when firm.toml has none

    @property
    def cat_crd(self) -> str:
        return self.cat_imid.partition(":")[0]

    @property
    def cat_reporter_imid(self) -> str:
        """The IMID alone: CAT's "CAT Reporter IMID" (events' CATReporterIMID, the file name's second
        field), where senderIMID takes the whole CRD:IMID."""
        return self.cat_imid.partition(":")[2]

    @property
    def cat_submitter(self) -> str:
        """The CAT Submitter ID of the file names: `cat_submitter_id`, else the firm's CRD, an
        assumption (CAT assigns the submitter its own id; a firm submitting for itself may or may
        not have it equal its CRD): the metadata files say which."""
        return self.cat_submitter_id or self.cat_crd


@dataclass(frozen=True)
class Instrument:
    symbol_id: int
    symbol: str
    isin: str
    cfi: str
    mic: str
    currency: str
    full_name: str
    tick_table: str
    price_multiplier: int
    in_firds: bool


@dataclass(frozen=True)
class Party:
    """An algo, desk, trader or client: the id the engine journals and the code reports carry."""

    id: int
    code: str
    kind: str = ""                  # clients: OWN / LEI / NATIONAL_ID; traders: country in `country`
    country: str = ""
    liquidity_provision: bool = False
    # a client's CAT facts, as the firm states them (None: not stated; the firm's own account: false):
    # whether it is the firm's affiliate (affiliateFlag), whether it instructs that its orders not
    # be displayed (Reg NMS Rule 604: custDspIntrFlag)
    cat_affiliate: bool | None = None
    cat_display_instruction: bool | None = None


@dataclass(frozen=True)
class RefData:
    firm: Firm
    instruments: dict[int, Instrument]
    tick_tables: dict[str, tuple[tuple[int, int], ...]]   # name -> ((from_price4, tick_price4), ...)
    algos: dict[int, Party]
    desks: dict[int, Party]
    traders: dict[int, Party]
    clients: dict[int, Party]
    mics: dict[str, dict]
    source: str = ""
    _lookup: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def active_mics(self) -> frozenset[str]:
        return frozenset(m for m, e in self.mics.items() if e.get("status") == "ACTIVE")

    def cat_route(self, mic: str) -> tuple[str, str] | None:
        """(destination, destinationType) of a CAT route event to the venue `mic`: its
        `cat_destination` (a CAT Exchange ID) with E, or its `cat_member` (a broker-dealer's or an
        ATS's CRD:IMID) with F; None when mics.toml gives neither (CAT's destination is never the
        MIC, and is not guessed)."""
        entry = self.mics.get(mic, {})
        if "cat_destination" in entry:
            return entry["cat_destination"], "E"
        if "cat_member" in entry:
            return entry["cat_member"], "F"
        return None

    def cat_affiliate(self, mic: str) -> bool | None:
        """CAT affiliateFlag of a route to the venue `mic`: false for an exchange (`cat_destination`),
        the firm's `cat_affiliate` for a broker-dealer or ATS (`cat_member`: whether it is the firm's
        affiliate is the firm's to say), None where mics.toml does not say (never guessed)."""
        entry = self.mics.get(mic, {})
        if "cat_destination" in entry:
            return False
        return entry.get("cat_affiliate") if "cat_member" in entry else None

    def instrument_index(self, symbol_ids: np.ndarray) -> np.ndarray:
        """Row index into `instrument_table()` for each symbol id; -1 where the id is unknown."""
        return self._index("instruments", symbol_ids)

    def party_index(self, registry: str, ids: np.ndarray) -> np.ndarray:
        return self._index(registry, ids)

    def _index(self, registry: str, ids: np.ndarray) -> np.ndarray:
        if registry not in self._lookup:       # built once: a report looks up every chunk's rows
            sorted_ids = np.array(sorted(getattr(self, registry)), dtype=np.int64)
            self._lookup[registry] = (sorted_ids, _position_table(sorted_ids))
        sorted_ids, table = self._lookup[registry]
        return _index_of(sorted_ids, ids, table)

    def sorted_values(self, registry: str) -> list:
        """Registry entries in the order `instrument_index` / `party_index` refer to."""
        table = getattr(self, registry)
        return [table[k] for k in sorted(table)]

    def tick_at(self, symbol_ids: np.ndarray, prices: np.ndarray) -> np.ndarray:
        """Tick size (price4) in force for each (symbol, price); 0 where the symbol is unknown."""
        out = np.zeros(len(prices), dtype=np.int64)
        idx = self.instrument_index(symbol_ids)
        for i, inst in enumerate(self.sorted_values("instruments")):   # loop over instruments, not rows
            rows = idx == i
            bands = self.tick_tables[inst.tick_table]
            starts = np.array([b[0] for b in bands], dtype=np.int64)
            ticks = np.array([b[1] for b in bands], dtype=np.int64)
            band = np.searchsorted(starts, prices[rows], side="right") - 1
            out[rows] = ticks[np.clip(band, 0, None)]
        return out


LUT_MAX_ID = 1 << 16      # registries whose ids are all below this are looked up by table


def _position_table(sorted_ids: np.ndarray) -> np.ndarray | None:
    """Position of each id by the id itself, -1 for the ids between, with one -1 past the largest
    known id; None when the registry's ids are not all small non-negative integers."""
    if not (len(sorted_ids) and 0 <= sorted_ids[0] and sorted_ids[-1] < LUT_MAX_ID):
        return None
    table = np.full(int(sorted_ids[-1]) + 2, -1, dtype=np.int32)
    table[sorted_ids] = np.arange(len(sorted_ids))
    return table


def _index_of(sorted_ids: np.ndarray, ids: np.ndarray, table: np.ndarray | None = None) -> np.ndarray:
    """Position of each id in `sorted_ids`, -1 where absent: one gather from the registry's
    position `table` when it has one (ids past the largest known one clip to its trailing -1),
    else a binary search."""
    if table is not None and ids.dtype.kind in "ui":
        if ids.dtype.kind == "i" or ids.dtype.itemsize == 8:    # negative, or wrapping to it as intp
            ids = np.where((ids < 0) | (ids >= len(table)), len(table) - 1, ids)
        return table.take(ids, mode="clip")
    ids = np.asarray(ids, dtype=np.int64)
    pos = np.searchsorted(sorted_ids, ids)
    pos_clipped = np.minimum(pos, max(len(sorted_ids) - 1, 0))
    found = (len(sorted_ids) > 0) & (sorted_ids[pos_clipped] == ids) if len(sorted_ids) else np.zeros(len(ids), bool)
    return np.where(found, pos_clipped, -1)


def _read(directory: pathlib.Path, name: str) -> dict:
    path = directory / name
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise RefDataError(f"{path}: reference-data file missing") from None
    except OSError as exc:
        raise RefDataError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise RefDataError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:          # tomllib decodes the bytes as UTF-8 before parsing
        raise RefDataError(f"{path}: not UTF-8 text") from None


def _rows(doc: dict, key: str, where: str) -> list[dict]:
    """The [[key]] array of tables of a document, or RefDataError for any other shape."""
    rows = doc.get(key, [])
    if not isinstance(rows, list) or not all(isinstance(t, dict) for t in rows):
        raise RefDataError(f"{where}: {key!r} must be an array of tables, one [[{key}]] per entry")
    return rows


def _need(table: dict, key: str, where: str, kind: type = str):
    if key not in table:
        raise RefDataError(f"{where}: missing key {key!r}")
    value = table[key]
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise RefDataError(f"{where}: {key!r} must be {kind.__name__}, got {value!r}")
    return value


def _check(problem: str | None, where: str) -> None:
    if problem is not None:
        raise RefDataError(f"{where}: {problem}")


_MIC_KEYS = frozenset(("mic", "operating_mic", "country", "status", "name", "cat_reporter", "cat_destination",
                       "cat_member", "cat_affiliate"))


def _mic_keys_problem(entry: dict) -> str | None:
    """A key this loader does not read would be silently ignored: say so instead (the CAT export
    decides which executions get a Trade event from `cat_reporter`)."""
    if "cat_exchange" in entry:
        return ("'cat_exchange' is no longer read: set cat_reporter = false for a venue that does "
                "not report to CAT itself (CAT FAQ E15); leave it out for one that does")
    unknown = sorted(set(entry) - _MIC_KEYS)
    if unknown:
        return f"unknown key(s) {unknown}; known: {sorted(_MIC_KEYS)}"
    if "cat_reporter" in entry and not isinstance(entry["cat_reporter"], bool):
        return f"'cat_reporter' must be true or false, got {entry['cat_reporter']!r}"
    # a CAT route goes to an exchange or to an Industry Member, never both
    if "cat_destination" in entry and "cat_member" in entry:
        return ("give 'cat_destination' (a CAT Exchange ID: an exchange) or 'cat_member' (CRD:IMID: a "
                "broker-dealer or ATS), not both")
    # every exchange (a CAT Exchange ID) reports its own events to CAT: the two contradict
    if "cat_destination" in entry and entry.get("cat_reporter") is False:
        return ("'cat_destination' names a CAT exchange, and every exchange reports to CAT itself: "
                "drop cat_reporter = false, or give the venue as a 'cat_member' if it is not an exchange")
    # whether a broker-dealer or ATS is the firm's affiliate (CAT affiliateFlag of routes to it)
    if "cat_affiliate" in entry:
        if "cat_member" not in entry:
            return "'cat_affiliate' is for a 'cat_member' venue (a route to an exchange is not to an affiliate)"
        if not isinstance(entry["cat_affiliate"], bool):
            return f"'cat_affiliate' must be true or false, got {entry['cat_affiliate']!r}"
    if "cat_destination" in entry:
        problem = cat_exchange_problem(entry["cat_destination"])
        return f"'cat_destination': {problem}" if problem else None
    if "cat_member" in entry:
        problem = cat_member_problem(entry["cat_member"])
        return f"'cat_member': {problem}" if problem else None
    return None


def _load_firm(doc: dict, where: str) -> Firm:
    t = doc.get("firm")
    if not isinstance(t, dict):
        raise RefDataError(f"{where}: missing [firm] table")
    firm = Firm(
        lei=_need(t, "lei", where), name=_need(t, "name", where),
        branch_country=_need(t, "branch_country", where),
        investment_firm=_need(t, "investment_firm", where, bool),
        submitting_lei=t.get("submitting_lei", t.get("lei", "")),
        competent_authority=_need(t, "competent_authority", where),
        cat_imid=_need(t, "cat_imid", where),
        trading_capacity=t.get("trading_capacity", "DEAL"),
        cat_submitter_id=_need(t, "cat_submitter_id", where) if "cat_submitter_id" in t else "",
    )
    _check(cat_member_problem(firm.cat_imid), f"{where} [firm].cat_imid")
    if "cat_submitter_id" in t:
        _check(cat_submitter_problem(firm.cat_submitter_id), f"{where} [firm].cat_submitter_id")
    _check(lei_problem(firm.lei), f"{where} [firm].lei")
    _check(lei_problem(firm.submitting_lei), f"{where} [firm].submitting_lei")
    _check(country_problem(firm.branch_country), f"{where} [firm].branch_country")
    if firm.trading_capacity not in ("DEAL", "MTCH", "AOTC"):
        raise RefDataError(f"{where} [firm].trading_capacity must be DEAL, MTCH or AOTC")
    return firm


def _load_instruments(doc: dict, where: str, mics: frozenset[str]):
    tables: dict[str, tuple[tuple[int, int], ...]] = {}
    tick_tables = doc.get("tick_tables", {})
    if not isinstance(tick_tables, dict):
        raise RefDataError(f"{where}: 'tick_tables' must be a table of [tick_tables.NAME] tables")
    for name, spec in tick_tables.items():
        bands = spec.get("bands") if isinstance(spec, dict) else None
        if not bands or not isinstance(bands, list) or not all(isinstance(b, dict) for b in bands):
            raise RefDataError(f"{where} tick_tables.{name}: needs a non-empty `bands` list of tables")
        parsed = tuple((_need(b, "from_price4", f"{where} tick_tables.{name}", int),
                        _need(b, "tick_price4", f"{where} tick_tables.{name}", int)) for b in bands)
        starts = [b[0] for b in parsed]
        if starts != sorted(set(starts)) or starts[0] != 0 or any(b[1] <= 0 for b in parsed):
            raise RefDataError(f"{where} tick_tables.{name}: bands must start at 0, ascend, ticks > 0")
        tables[name] = parsed
    instruments: dict[int, Instrument] = {}
    for n, t in enumerate(_rows(doc, "instrument", where)):
        at = f"{where} instrument[{n}]"
        inst = Instrument(
            symbol_id=_need(t, "symbol_id", at, int), symbol=_need(t, "symbol", at),
            isin=_need(t, "isin", at), cfi=_need(t, "cfi", at), mic=_need(t, "mic", at),
            currency=_need(t, "currency", at), full_name=_need(t, "full_name", at),
            tick_table=_need(t, "tick_table", at), price_multiplier=t.get("price_multiplier", 1),
            in_firds=t.get("in_firds", True),
        )
        _check(isin_problem(inst.isin), at)
        _check(cfi_problem(inst.cfi), at)
        _check(mic_problem(inst.mic, mics), at)
        _check(currency_problem(inst.currency), at)
        if inst.tick_table not in tables:
            raise RefDataError(f"{at}: tick_table {inst.tick_table!r} is not defined")
        if inst.symbol_id in instruments:
            raise RefDataError(f"{at}: duplicate symbol_id {inst.symbol_id}")
        instruments[inst.symbol_id] = inst
    if not instruments:
        raise RefDataError(f"{where}: no [[instrument]] entries")
    return instruments, tables


_CLIENT_CAT_KEYS = ("cat_affiliate", "cat_display_instruction")


def _client_cat_problem(t: dict) -> str | None:
    """A client's CAT facts are true or false, and a customer's only (the firm's own account has none)."""
    for key in _CLIENT_CAT_KEYS:
        if key in t and t.get("kind") == "OWN":
            return f"{key!r} is for a client, not the firm's own account (kind OWN)"
        if key in t and not isinstance(t[key], bool):
            return f"{key!r} must be true or false, got {t[key]!r}"
    return None


def _load_parties(doc: dict, where: str, kind: str) -> dict[int, Party]:
    out: dict[int, Party] = {}
    for n, t in enumerate(_rows(doc, kind, where)):
        at = f"{where} {kind}[{n}]"
        pid = _need(t, "id", at, int)
        client_kind = t.get("kind", "")
        code = t.get("code", "") if client_kind == "OWN" else _need(t, "code", at)
        if kind == "algo" and not (0 < len(code) <= 50 and code.isalnum()):
            raise RefDataError(f"{at}: algo code must be 1-50 alphanumerics (RTS 22 field 57/59)")
        if kind == "client":
            if client_kind not in ("OWN", "LEI", "NATIONAL_ID"):
                raise RefDataError(f"{at}: kind must be OWN, LEI or NATIONAL_ID")
            if client_kind == "LEI":
                _check(lei_problem(code), at)
            _check(_client_cat_problem(t), at)
        if pid in out:
            raise RefDataError(f"{at}: duplicate id {pid}")
        own = client_kind == "OWN"       # the firm's own account: no affiliate, no customer instruction
        out[pid] = Party(id=pid, code=code, kind=client_kind, country=t.get("country", ""),
                         liquidity_provision=bool(t.get("liquidity_provision", False)),
                         cat_affiliate=False if own else t.get("cat_affiliate"),
                         cat_display_instruction=False if own else t.get("cat_display_instruction"))
    return out


def load(directory: str | pathlib.Path | None = None) -> RefData:
    """Load and validate every reference-data file in `directory` (default: the bundled data, which
    describes the embedded venue's listings with fictitious identifiers and the engine's default parties)."""
    directory = pathlib.Path(directory) if directory is not None else DEFAULT_DIR
    if not directory.is_dir():
        raise RefDataError(f"{directory}: reference-data directory does not exist")
    docs = {name: _read(directory, name) for name in FILES}
    mics: dict[str, dict] = {}
    for n, entry in enumerate(_rows(docs["mics.toml"], "mic", str(directory / "mics.toml"))):
        at = f"{directory / 'mics.toml'} mic[{n}]"
        code = _need(entry, "mic", at)
        _check(mic_problem(code), at)
        _check(_mic_keys_problem(entry), at)
        mics[code] = dict(entry)
    active = frozenset(m for m, e in mics.items() if e.get("status") == "ACTIVE")
    firm = _load_firm(docs["firm.toml"], str(directory / "firm.toml"))
    instruments, tick_tables = _load_instruments(
        docs["instruments.toml"], str(directory / "instruments.toml"), active)
    parties_at = str(directory / "parties.toml")
    return RefData(
        firm=firm, instruments=instruments, tick_tables=tick_tables,
        algos=_load_parties(docs["parties.toml"], parties_at, "algo"),
        desks=_load_parties(docs["parties.toml"], parties_at, "desk"),
        traders=_load_parties(docs["parties.toml"], parties_at, "trader"),
        clients=_load_parties(docs["parties.toml"], parties_at, "client"),
        mics=mics, source=str(directory),
    )
