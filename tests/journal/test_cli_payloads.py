"""`journal dump` and `journal tail` show every payload without crashing or losing a byte: a JSON
type's payload is shown as a document only when it is one object (kept under its own "json" key),
anything else as hex; --json always carries the exact bytes; a text field's non-ASCII bytes are
escaped, not replaced."""
from __future__ import annotations

import codecs
import json
import sys

import pytest
from click.testing import CliRunner

from cli.journal_cmd import command
from journal import Journal, RecordType
from journal.catalogue import PAYLOAD_DTYPES, pack

DEEP = sys.getrecursionlimit() + 100

# (payload of a JSON type, the document dump shows, or None: shown as hex)
JSON_CASES = [
    (b'{"found": 1}', {"found": 1}),
    (b'{"hex": 5}', {"hex": 5}),                           # would collide with the view's hex
    (b'{"hex": "00ff"}', {"hex": "00ff"}),                 # would pass for the payload's bytes
    (b'{"raw": "kept"}', {"raw": "kept"}),                 # was left out of the text line
    (b'{"note": "x\\u00e9"}', {"note": "x\u00e9"}),
    (b'[1, 2, 3]', None),
    (b'5', None),
    (b'"text"', None),
    (b'{"a": 1, "a": 2}', None),                           # a dict would keep only a=2
    (b'{"a": "\xff"}', None),                               # not UTF-8
    (b'{"a": 1', None),
    (b'{"a":' * DEEP + b'1' + b'}' * DEEP, None),          # too deep for the decoder
    (b'[' * DEEP + b']' * DEEP, None),
]


def dump(d, *args):
    result = CliRunner().invoke(command, ["dump", str(d), *args])
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output.splitlines()


def test_json_payloads_are_shown_whole_or_as_hex(tmp_path):
    d = tmp_path / "j"
    with Journal(d, segment_size=1 << 20) as j:
        for payload, _ in JSON_CASES:
            j.append(RecordType.METRICS, payload)
    rows = [json.loads(line) for line in dump(d, "--json")]
    lines = dump(d)
    assert len(rows) == len(lines) == len(JSON_CASES)
    for args, printed in (([], lines), (["--json"], [json.dumps(row) for row in rows])):
        tailed = CliRunner().invoke(command, ["tail", str(d), "--count", str(len(JSON_CASES)), *args])
        assert tailed.exit_code == 0 and tailed.output.splitlines() == printed     # tail shows the same
    for (payload, document), row, line in zip(JSON_CASES, rows, lines):
        assert row["payload"]["hex"] == payload.hex()      # the exact bytes, whatever the view
        if document is None:
            assert set(row["payload"]) == {"hex"}
            shown = payload.hex()
            assert line.endswith(f"hex={shown[:64]}" + ("..." if len(shown) > 64 else ""))
        else:
            assert row["payload"] == {"json": document, "hex": payload.hex()}
            assert line.endswith("json=" + json.dumps(document, separators=(",", ":")))


def test_documents_nested_up_to_the_decoders_limit_print(tmp_path):
    """Whatever depth the decoder still takes, printing it (text and --json) does not fail."""
    d = tmp_path / "j"
    limit = sys.getrecursionlimit()
    with Journal(d, segment_size=1 << 22) as j:
        for depth in range(limit - 150, limit + 10, 2):
            j.append(RecordType.RECON, b'{"a":' * depth + b'1' + b'}' * depth)
    assert len(dump(d)) == len(dump(d, "--json")) == 80


def test_text_fields_lose_no_byte(tmp_path):
    d = tmp_path / "j"
    tokens = [b"\xe9T0000000001", b"A\\xe9B", b"line\nbreak", b"T0000000000042"]
    with Journal(d, segment_size=65536) as j:
        for token in tokens:
            j.append(RecordType.ORDER_SENT, pack(RecordType.ORDER_SENT, token=token, price=1_000_000))
    rows = [json.loads(line) for line in dump(d, "--json")]
    lines = dump(d)
    assert len(lines) == len(tokens)                        # a newline in a text does not split a record
    for token, row, line in zip(tokens, rows, lines):
        shown = row["payload"]["token"]
        assert shown.isascii() and "\ufffd" not in shown
        assert codecs.escape_decode(shown.encode("ascii"))[0] == token
        assert f" token={shown} " in line
    assert rows[0]["payload"]["token"] == "\\xe9T0000000001" and rows[1]["payload"]["token"] == "A\\\\xe9B"
    assert rows[3]["payload"]["token"] == "T0000000000042"


def test_no_fixed_layout_has_a_field_named_like_the_views_keys():
    for dtype in PAYLOAD_DTYPES.values():
        assert not {"hex", "json"} & set(dtype.names)
