"""Validation of the identifiers regulators check: LEI, ISIN, MIC, CFI, currency and country codes,
and CAT's member, exchange and submitter ids.

Owns the check-digit arithmetic (ISO 17442 / ISO 7064 MOD 97-10, ISO 6166 Luhn) and the formats.
Each check returns None when valid or a short reason string, so report builders can put the reason
in a rejects table. Knows nothing about journals, Arrow or reference-data files.
"""
from __future__ import annotations

import re

_LEI_FORMAT = re.compile(r"[0-9A-Z]{18}[0-9]{2}")
_ISIN_FORMAT = re.compile(r"[A-Z]{2}[0-9A-Z]{9}[0-9]")
_MIC_FORMAT = re.compile(r"[0-9A-Z]{4}")
# ISO 10962: 6 letters; the first is one of the categories defined by the standard.
_CFI_FORMAT = re.compile(r"[ECDROFSHIJKLTM][A-Z]{5}")
# ISO 10962 listed options (category O): group, then exercise style, underlying, delivery, standard.
_OPTION_CFI = ((1, "CPM", "group: call, put, other"), (2, "AEBM", "exercise style"),
               (3, "BSDTCIOFWNM", "underlying"), (4, "PCNE", "delivery"), (5, "SN", "standardised or not"))
_CURRENCY_FORMAT = re.compile(r"[A-Z]{3}")
_COUNTRY_FORMAT = re.compile(r"[A-Z]{2}")
# CAT IM Technical Specifications 4.1.0 r15, JSON schema (03.18.26-IM-4.1.0-r15.json): an "Industry
# Member ID" is CRD:IMID, e.g. "123:ABCD", at most 16 characters; a "CAT Reporter IMID" (the IMID
# alone) at most 7. The CRD is a FINRA Central Registration Depository number (digits).
_CAT_MEMBER_FORMAT = re.compile(r"([0-9]{1,8}):([0-9A-Z]{1,7})")
CAT_MEMBER_MAX = 16
# The schema's "Exchange ID" allowed values: a route's destination when destinationType is E.
CAT_EXCHANGE_IDS = frozenset((
    "AMER", "AMEROP", "ARCA", "ARCAOP", "BOX", "BSTX", "BX", "BYX", "BZX", "BZXOP", "C2", "CBOE", "CHX",
    "EDGA", "EDGX", "EDGXOP", "EMLD", "GEMX", "IEX", "ISE", "LTSE", "MEMX", "MEMXOP", "MIAMI", "MRX",
    "NOBO", "NOM", "NSDQ", "NSX", "NYSE", "PEARL", "PEARLEQ", "PHLX", "PSX", "SPHR", "24X", "TXSE"))
# CAT Submitter ID: "a unique ID assigned by CAT to the CAT Reporting Agent" (Tech Specs data types);
# its format is not given, so only what the file name needs: it is that name's first field, which
# underscores separate.
_CAT_SUBMITTER_FORMAT = re.compile(r"[0-9A-Za-z]{1,16}")


def _alnum_to_digits(text: str) -> str:
    """Letters become two digits (A=10 ... Z=35), digits stay; the ISO 7064 / ISO 6166 expansion."""
    return "".join(str(int(ch, 36)) for ch in text)


def lei_check_digits(base18: str) -> str:
    """The two MOD 97-10 check digits that complete an 18-character LEI base."""
    if not re.fullmatch(r"[0-9A-Z]{18}", base18):
        raise ValueError(f"LEI base must be 18 uppercase alphanumerics, got {base18!r}")
    return f"{98 - int(_alnum_to_digits(base18 + '00')) % 97:02d}"


def lei_problem(value: str | None) -> str | None:
    """None if `value` is a well-formed LEI whose MOD 97-10 checksum holds, else the reason."""
    if value is None or value == "":
        return "LEI missing"
    if not _LEI_FORMAT.fullmatch(value):
        return f"LEI {value!r} is not 18 uppercase alphanumerics + 2 digits"
    if int(_alnum_to_digits(value)) % 97 != 1:
        return f"LEI {value!r} fails the ISO 7064 MOD 97-10 check"
    return None


def isin_check_digit(base11: str) -> str:
    """The Luhn check digit over the letter-expanded digits of an 11-character ISIN base."""
    if not re.fullmatch(r"[A-Z]{2}[0-9A-Z]{9}", base11):
        raise ValueError(f"ISIN base must be country code + 9 alphanumerics, got {base11!r}")
    digits = _alnum_to_digits(base11)
    total = 0
    # Rightmost digit of the base is doubled, because the check digit will sit to its right.
    for position, ch in enumerate(reversed(digits)):
        d = int(ch)
        if position % 2 == 0:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return str((10 - total % 10) % 10)


def isin_problem(value: str | None) -> str | None:
    """None if `value` is a well-formed ISIN with a correct Luhn check digit, else the reason."""
    if value is None or value == "":
        return "ISIN missing"
    if not _ISIN_FORMAT.fullmatch(value):
        return f"ISIN {value!r} is not 2 letters + 9 alphanumerics + 1 digit"
    if isin_check_digit(value[:11]) != value[11]:
        return f"ISIN {value!r} fails the Luhn check digit"
    return None


def mic_problem(value: str | None, registry: frozenset[str] | None = None) -> str | None:
    """None if `value` is a 4-character MIC present in the configured registry (when given)."""
    if value is None or value == "":
        return "MIC missing"
    if not _MIC_FORMAT.fullmatch(value):
        return f"MIC {value!r} is not 4 uppercase alphanumerics"
    if registry is not None and value not in registry:
        return f"MIC {value!r} is not an active MIC in the configured registry"
    return None


def cfi_problem(value: str | None) -> str | None:
    if value is None or value == "":
        return "CFI missing"
    if not _CFI_FORMAT.fullmatch(value):
        return f"CFI {value!r} is not an ISO 10962 code (category letter + 5 letters)"
    if value[0] == "O":
        for position, allowed, meaning in _OPTION_CFI:
            if value[position] not in allowed:
                return (f"CFI {value!r} is not a valid ISO 10962 option code: position {position + 1} "
                        f"({meaning}) must be one of {allowed}")
    return None


def currency_problem(value: str | None) -> str | None:
    if value is None or not _CURRENCY_FORMAT.fullmatch(value):
        return f"currency {value!r} is not an ISO 4217 alpha-3 code"
    return None


def country_problem(value: str | None) -> str | None:
    if value is None or not _COUNTRY_FORMAT.fullmatch(value):
        return f"country {value!r} is not an ISO 3166 alpha-2 code"
    return None


def cat_member_problem(value: str | None) -> str | None:
    """None if `value` is a CAT Industry Member ID, CRD:IMID (digits, a colon, 1-7 uppercase
    alphanumerics; at most 16 characters in all), else the reason."""
    if not isinstance(value, str) or not value:
        return "CAT Industry Member ID missing"
    if not _CAT_MEMBER_FORMAT.fullmatch(value) or len(value) > CAT_MEMBER_MAX:
        return (f"CAT Industry Member ID {value!r} is not CRD:IMID (the CRD's digits, a colon, an IMID of "
                f"1-7 uppercase letters or digits, e.g. \"123:ABCD\")")
    return None


def cat_exchange_problem(value: str | None) -> str | None:
    """None if `value` is one of CAT's Exchange IDs (CAT_EXCHANGE_IDS), else the reason."""
    if isinstance(value, str) and value in CAT_EXCHANGE_IDS:
        return None
    return (f"{value!r} is not a CAT Exchange ID (one of {', '.join(sorted(CAT_EXCHANGE_IDS))}; "
            f"a MIC is not one)")


def cat_submitter_problem(value: str | None) -> str | None:
    """None if `value` can be a CAT Submitter ID in a file name (1-16 letters or digits)."""
    if isinstance(value, str) and _CAT_SUBMITTER_FORMAT.fullmatch(value):
        return None
    return f"CAT Submitter ID {value!r} is not 1-16 letters or digits (it is a field of the file name)"
