"""`mmaudit clock watch --listen`: the latest sample's Prometheus text served over real HTTP on
loopback, 503 before a sample and once samples stop, 404 elsewhere, and bad addresses refused."""
import pathlib
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from click.testing import CliRunner

from audit.errors import AuditError
from audit.metrics_http import CONTENT_TYPE, MetricsServer, parse_listen
from cli.clock_cmd import command

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _get(host: str, port: int, path: str = "/metrics") -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=5) as answer:
            return answer.status, answer.headers["Content-Type"], answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


@pytest.mark.parametrize("text, want", [("9100", ("127.0.0.1", 9100)), ("127.0.0.2:0", ("127.0.0.2", 0)),
                                        (":9", None), ("host:port", None), ("70000", None), ("", None)])
def test_listen_addresses_are_parsed_or_refused(text, want):
    if want is None:
        with pytest.raises(AuditError, match="--listen"):
            parse_listen(text)
    else:
        assert parse_listen(text) == want


def test_a_scrape_gets_the_latest_text_and_503_before_any_and_once_stale():
    server = MetricsServer("127.0.0.1", 0, stale_after_s=0.5)
    try:
        host, port = server.address
        status, _, body = _get(host, port)
        assert status == 503 and "no clock sample" in body
        server.publish("mmaudit_clock_state 1\n")
        server.publish("mmaudit_clock_state 3\n")
        assert _get(host, port) == (200, CONTENT_TYPE, "mmaudit_clock_state 3\n")
        assert _get(host, port, "/metrics?x=1")[0] == 200
        assert _get(host, port, "/")[0] == 404
        time.sleep(0.7)
        status, _, body = _get(host, port)
        assert status == 503 and "sampler has stopped" in body
    finally:
        server.close()
    with pytest.raises(OSError):
        _get(host, port)


def test_a_port_in_use_is_a_clear_error():
    first = MetricsServer("127.0.0.1", 0, stale_after_s=5)
    try:
        with pytest.raises(AuditError, match="cannot listen"):
            MetricsServer("127.0.0.1", first.address[1], stale_after_s=5)
    finally:
        first.close()


def test_watch_serves_each_sample_while_it_runs(tmp_path):
    """`mmaudit clock watch --listen` as a real process (no ptp4l: UNKNOWN), scraped while it runs:
    the endpoint gives the exposition of its sample; the port is closed once the watch ends."""
    uds = tmp_path / "none"
    proc = subprocess.Popen([sys.executable, "-c", "from cli.main import cli; cli()", "clock", "watch",
                             "--uds", str(uds), "--count", "6", "--interval", "0.5", "--listen", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        line = proc.stderr.readline()
        match = re.search(r"serving clock metrics at http://127\.0\.0\.1:(\d+)/metrics", line)
        assert match, line
        port = int(match.group(1))
        deadline = time.monotonic() + 10
        status, body = 503, ""
        while status == 503 and time.monotonic() < deadline:     # until the first sample is in
            status, content_type, body = _get("127.0.0.1", port)
            time.sleep(0.05)
        assert status == 200 and content_type == CONTENT_TYPE
        assert f'mmaudit_clock_state{{uds="{uds}"}} 0' in body
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, err
    assert len([x for x in out.splitlines() if x.startswith("UNKNOWN")]) == 6
    with pytest.raises(OSError):
        _get("127.0.0.1", port)


def test_a_bad_listen_address_is_a_usage_error_before_sampling(tmp_path):
    result = CliRunner().invoke(command, ["watch", "--uds", str(tmp_path / "none"), "--count", "1",
                                          "--listen", "127.0.0.1:99999"])
    assert result.exit_code == 2 and "--listen" in result.output and "UNKNOWN" not in result.output
