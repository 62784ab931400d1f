"""The kernel send path's idle-time warmer (mm_core.txwarm): its own loopback connection, one byte
per step and nothing left to pile up, a typed error and its sockets closed when it fails, and the
busy-poll runner stepping it with the shadow engine (and ending it, in one alert, when it fails);
with each step the runner's order planning runs on its stand-in pull, sending and journaling
nothing."""
import dataclasses
import socket
import struct

import pytest

import mm_core.runner as runner_module
import mm_core.runner_orders as runner_orders
from journal import Journal, Reader
from journal.catalogue import RecordType, unpack_json
from mm_core.txwarm import TxPathWarmer, TxWarmError
from tests.mm_core.test_runner_busy import md_runner


def test_each_step_sends_one_byte_on_its_own_loopback_connection_and_drains_it():
    warmer = TxPathWarmer()
    try:
        out, into = warmer._out, warmer._in
        assert out.getsockname()[0] == "127.0.0.1" and out.getpeername() == into.getsockname()
        assert out.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        for _ in range(500):
            warmer.step()
        assert warmer.sent == 500
        # on loopback the byte is delivered inside send(): each step read back its own
        with pytest.raises(BlockingIOError):
            into.recv(1)
    finally:
        warmer.close()
    assert warmer._out is None and warmer._in is None and out.fileno() < 0 and into.fileno() < 0


def test_a_stranger_connecting_first_is_refused(monkeypatch):
    strangers = []
    connect = socket.create_connection

    def stranger_first(address, timeout=None):
        strangers.append(connect(address))        # another local process, a moment earlier
        return connect(address, timeout=timeout)

    monkeypatch.setattr(socket, "create_connection", stranger_first)
    with pytest.raises(TxWarmError, match="not ours"):
        TxPathWarmer()
    assert strangers and strangers[0].recv(1) == b""   # closed unread: nothing was sent to it
    strangers[0].close()


def test_a_step_after_close_is_a_typed_error():
    warmer = TxPathWarmer()
    warmer.close()
    with pytest.raises(TxWarmError, match="closed"):
        warmer.step()


def test_a_broken_connection_is_a_typed_error_and_closes_both_ends():
    warmer = TxPathWarmer()
    out = warmer._out
    warmer._in.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    warmer._in.close()                   # the peer resets the connection
    with pytest.raises(TxWarmError, match="failed"):
        for _ in range(10):              # the reset is seen by the first send or the next
            warmer.step()
    assert out.fileno() < 0 and warmer._out is None and warmer._in is None


def _idle_run(tmp_path, name: str, **settings):
    """A busy-poll runner with nothing to read for 0.3 s: (its report, the journal's alerts)."""
    with Journal(tmp_path / name) as journal:
        runner, peer, _ = md_runner(journal, True)
        runner.settings = dataclasses.replace(runner.settings, **settings)
        sent_before = runner.tcp_bytes
        report = runner.run(0.3)
        peer.close()
    assert runner._tx_warm is None       # closed with the run
    with Reader(str(tmp_path / name)) as reader:
        records = list(reader.records())
    # idle: the warm steps sent and journaled no order (the run's login and heartbeats aside)
    assert report.orders_sent == 0 and not any(r.rtype == RecordType.ORDER_SENT for r in records)
    assert runner.tcp_bytes - sent_before < 100
    docs = [unpack_json(r.payload) for r in records if r.rtype == RecordType.METRICS]
    return report, [d for d in docs if "alert" in d]


def test_the_busy_poll_loop_warms_the_send_path_with_each_shadow_step(tmp_path):
    report, alerts = _idle_run(tmp_path, "on")
    assert report.warm_steps > 100 and report.tx_warm_sends == report.warm_steps and not alerts
    report, _ = _idle_run(tmp_path, "off", warm_interval_ns=0)
    assert report.tx_warm_sends == 0
    report, _ = _idle_run(tmp_path, "wait", busy_poll=False)
    assert report.tx_warm_sends == 0


def test_a_failing_warmer_is_turned_off_with_one_alert_and_the_run_goes_on(tmp_path, monkeypatch):
    class Failing(TxPathWarmer):
        def step(self):
            if self.sent == 3:
                self.close()
                raise TxWarmError("the warming connection failed: reset")
            super().step()

    monkeypatch.setattr(runner_module, "TxPathWarmer", Failing)
    report, alerts = _idle_run(tmp_path, "failing")
    assert report.stop_reason == "duration" and report.warm_steps > 100 and report.tx_warm_sends == 3
    assert [a["alert"] for a in alerts] == ["tx-warm-failed"] and "reset" in alerts[0]["detail"]


def test_no_connection_to_warm_with_is_one_alert_and_the_run_goes_on(tmp_path, monkeypatch):
    def unmade():
        raise TxWarmError("no loopback connection to warm the send path with: refused")

    monkeypatch.setattr(runner_module, "TxPathWarmer", unmade)
    report, alerts = _idle_run(tmp_path, "unmade")
    assert report.stop_reason == "duration" and report.warm_steps > 100 and report.tx_warm_sends == 0
    assert [a["alert"] for a in alerts] == ["tx-warm-failed"] and "refused" in alerts[0]["detail"]


def test_each_warm_step_runs_the_order_planning_on_the_stand_in_pull(tmp_path, monkeypatch):
    planned = []
    plan = runner_module.Runner._orders_plan

    def counted(self, actions, oe):
        planned.append(actions)
        return plan(self, actions, oe)

    monkeypatch.setattr(runner_module.Runner, "_orders_plan", counted)
    report, alerts = _idle_run(tmp_path, "planned")
    # one per warm step (upkeep plans it too, after the run's first wake-ups; the close-out's
    # decisions go through the planning as well)
    warm = [a for a in planned if a is runner_orders._WARM_PULL]
    assert report.warm_steps > 100 and len(warm) >= report.warm_steps and not alerts
    planned.clear()
    report, _ = _idle_run(tmp_path, "unplanned", warm_interval_ns=0)
    assert len([a for a in planned if a is runner_orders._WARM_PULL]) < 10    # upkeep's alone
