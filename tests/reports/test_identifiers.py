import pytest
from hypothesis import given, settings, strategies as st

from reports.identifiers import (
    cfi_problem, country_problem, currency_problem, isin_check_digit, isin_problem, lei_check_digits,
    lei_problem, mic_problem,
)

GOOD_LEIS = ["969500KSV493XWY0PS33", "5493001KJTIIGC8Y1R12", "984500MMAUDIT0000179"]
BAD_LEIS = [
    ("969500KSV493XWY0PS34", "MOD 97-10"),      # wrong check digits
    ("969500KSV493XWY0SP33", "MOD 97-10"),      # transposition
    ("969500ksv493xwy0ps33", "uppercase"),      # lowercase
    ("969500KSV493XWY0PS3", "uppercase"),       # 19 characters
    ("969500KSV493XWY0PSAB", "uppercase"),      # letters as check digits
    ("", "missing"),
]
GOOD_ISINS = ["US0378331005", "AU0000XVGZA3", "US5949181045", "US78462F1030", "GB0002634946"]
BAD_ISINS = [
    ("US0373831005", "Luhn"),                  # transposition
    ("US0378331006", "Luhn"),
    ("US037833100", "2 letters"),              # too short
    ("1S0378331005", "2 letters"),
    ("US037833100O", "2 letters"),             # letter in the check digit position
    (None, "missing"),
]


GOOD = [(lei_problem, v) for v in GOOD_LEIS] + [(isin_problem, v) for v in GOOD_ISINS]
BAD = [(lei_problem, v, r) for v, r in BAD_LEIS] + [(isin_problem, v, r) for v, r in BAD_ISINS]


@pytest.mark.parametrize("check,value", GOOD)
def test_known_good_identifiers_pass(check, value):
    assert check(value) is None


@pytest.mark.parametrize("check,value,reason", BAD)
def test_known_bad_identifiers_fail_with_reason(check, value, reason):
    problem = check(value)
    assert problem is not None and reason in problem


def test_lei_check_digits_match_the_published_vector():
    assert lei_check_digits("969500KSV493XWY0PS") == "33"
    with pytest.raises(ValueError):
        lei_check_digits("short")


def test_isin_check_digit_expands_letters_before_luhn():
    assert isin_check_digit("AU0000XVGZA") == "3"
    assert isin_check_digit("US037833100") == "5"


_ALNUM = st.sampled_from("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")


@settings(max_examples=60, deadline=None)
@given(st.lists(_ALNUM, min_size=18, max_size=18), st.integers(0, 19), st.sampled_from("0123456789"))
def test_lei_checksum_catches_every_single_digit_change(chars, pos, replacement):
    base = "".join(chars)
    lei = base + lei_check_digits(base)
    assert lei_problem(lei) is None
    if not lei[pos].isdigit():
        return          # a letter expands to two digits; MOD 97-10's guarantee is about digits
    changed = lei[:pos] + replacement + lei[pos + 1:]
    assert (lei_problem(changed) is None) == (changed == lei)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["US", "DE", "GB", "FR"]), st.lists(_ALNUM, min_size=9, max_size=9))
def test_generated_isins_validate(country, body):
    base = country + "".join(body)
    assert isin_problem(base + isin_check_digit(base)) is None


def test_mic_format_and_registry():
    registry = frozenset({"XNAS", "XNGS"})
    assert mic_problem("XNGS", registry) is None
    assert "registry" in mic_problem("XLON", registry)
    assert "4 uppercase" in mic_problem("xngs", registry)
    assert mic_problem("XLON") is None           # format only without a registry


def test_cfi_currency_country_formats():
    assert cfi_problem("ESVUFR") is None
    assert cfi_problem("CEOGEU") is None
    assert "ISO 10962" in cfi_problem("ZSVUFR")
    assert "ISO 10962" in cfi_problem("ESVUF")
    assert currency_problem("USD") is None and currency_problem("usd") is not None
    assert country_problem("DE") is None and country_problem("DEU") is not None
