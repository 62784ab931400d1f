"""A plain ptp4l client (free_running 0: its PI servo steers the clock, the port goes SLAVE) in the
PTP lab, whose clock jumps 2 ms: the samples are DEGRADED with the jump in the bound until the
clock has re-settled, whether ptp4l slews the jump out (step_threshold 0, ptp4l's default: the
port stays SLAVE) or steps it (step_threshold 0.5 ms: s0 and s1, port UNCALIBRATED, then s2).

The machine's clock, which every namespace shares, is never adjusted: the client runs with
tests/audit/vclock.c preloaded, a virtual CLOCK_REALTIME that ptp4l's adjustments move (and that
the test jumps). Everything else is real: ptp4l, pmc, the veth pair, ptp4l's own log.
"""
import os
import pathlib
import shutil
import subprocess
import time

import pytest

from audit.health import UNBOUNDED, HealthConfig, HealthTracker
from audit.pmc import PmcClient
from audit.ptplab import PtpLab
from audit.sampler import PmcSampler
from journal.catalogue import ClockState
from tests.audit.test_linuxptp_netns import created_lab

pytestmark = pytest.mark.netns

# 2 ms: twice RTS 25's 1 ms for other algorithmic trading (eu-algo), so the bound is over it even
# after the servo slewed up to 500 ppm of a Sync interval out before the jump is measured (with a
# 1 ms jump the bound came in at 0.996 ms: compliant, and the test failed)
JUMP_NS = 2_000_000
STEP_NS = 50_000             # HealthConfig.max_offset_step_ns
# A line per Sync, with the servo state. Fixed PI gains: with software timestamping's defaults
# (ki 0.001 scaled to 8 Syncs/s) the servo waits 0.016 / ki, ~37 s, to estimate the frequency
# before it locks; kp 2, ki 0.3 lock at once and settle a 2 ms jump in seconds.
PLAIN = "summary_interval -3\npi_proportional_const 2.0\npi_integral_const 0.3\n"


def _build_vclock(out: pathlib.Path) -> pathlib.Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build the virtual clock (tests/audit/vclock.c)")
    so = out / "vclock.so"
    src = pathlib.Path(__file__).with_name("vclock.c")
    subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(so), str(src), "-ldl"], check=True,
                   capture_output=True, timeout=60)
    # the shim must load into this ptp4l, or a plain client would steer the machine's clock
    mark = out / "probe.mark"
    subprocess.run(["env", f"LD_PRELOAD={so}", f"VCLOCK_MARK={mark}", "ptp4l", "-v"], check=True,
                   capture_output=True, timeout=10)
    assert mark.exists(), "vclock.so did not load into ptp4l"
    return so


@pytest.fixture
def lab(tmp_path):
    so = _build_vclock(tmp_path)
    with created_lab() as lab:
        lab.vclock, lab.step_file = so, tmp_path / "step"
        yield lab


def _start_plain(lab: PtpLab, extra: str) -> None:
    """The client first, with no GM to follow (so nothing to adjust yet) until its shim is known
    to be loaded; only then the GM."""
    mark = lab.dir / "client.mark"
    lab.start_client(PLAIN + extra, env={"LD_PRELOAD": str(lab.vclock), "VCLOCK_MARK": str(mark),
                                         "VCLOCK_STEP_FILE": str(lab.step_file)}, free_running=False)
    try:
        lab.wait_until(mark.exists, timeout_s=5, interval_s=0.02)
    except AssertionError:
        lab.kill("client")
        raise
    lab.start_gm()


def _jump(lab: PtpLab, ns: int) -> None:
    tmp = lab.step_file.with_suffix(".tmp")
    tmp.write_text(str(ns))
    os.rename(tmp, lab.step_file)


def _samples_until_settled(lab: PtpLab, extra: str):
    _start_plain(lab, extra)
    sampler = PmcSampler(PmcClient(lab.client_uds), ptp4l_log=str(lab.dir / "client.log"))
    tracker = HealthTracker(HealthConfig())
    # locked and settled: three LOCKED samples in SLAVE in a row
    run = []
    deadline = time.monotonic() + 30
    while len(run) < 3:
        assert time.monotonic() < deadline, f"client never locked: {run}\n{lab.log_text()}"
        s = tracker.update(sampler())
        run = run + [s] if s.state == ClockState.LOCKED and s.port_state == "SLAVE" else []
        time.sleep(0.2)
    log = lab.dir / "client.log"
    seen = log.stat().st_size
    _jump(lab, JUMP_NS)
    lab.wait_until(lambda: not lab.step_file.exists(), timeout_s=5, interval_s=0.02)
    time.sleep(0.3)                           # a Sync or two on the jumped clock
    after = []
    deadline = time.monotonic() + 60
    while not after or after[-1].state != ClockState.LOCKED:
        assert time.monotonic() < deadline, f"never re-settled: {[(x.state.name, x.offset_ns) for x in after]}"
        after.append(tracker.update(sampler()))
        time.sleep(0.25)
    return after, log.read_text()[seen:]


def _check(after) -> None:
    *owing, locked = after
    described = [(x.state.name, x.port_state, x.offset_ns, x.path_delay_ns, x.error_bound_ns) for x in after]
    degraded = [s for s in owing if s.state == ClockState.DEGRADED]
    assert degraded, described
    for s in owing:
        # never LOCKED nor a holdover while the jump is owed. Without a measured bound it is
        # FREERUN: a servo slewing at its 500 ppm limit skews the delay exchange, and a
        # non-positive path delay is no measurement (UNKNOWN: pmc did not answer in time)
        assert s.state in (ClockState.DEGRADED, ClockState.FREERUN, ClockState.UNKNOWN), described
        if s.state != ClockState.DEGRADED:
            assert s.error_bound_ns == UNBOUNDED and s.compliant_mask == 0, described
            continue
        # bound = |offset| + jump + max(asymmetry 1 us, path delay) + GM accuracy (0x21: 100 ns)
        jump = s.error_bound_ns - abs(s.offset_ns) - max(1_000, s.path_delay_ns) - 100
        # the jump is measured between two Syncs, so it is the jump less what the servo slewed
        # out meanwhile (up to 500 ppm of the interval): the bound may be a little under it
        assert jump >= JUMP_NS * 9 // 10, described
        assert not s.compliant("eu-algo") and s.compliant("us-cat"), described
    # LOCKED again only after three settled samples: SLAVE, |offset| within the 50 us step
    assert len(owing) >= 3
    for s in owing[-2:] + [locked]:
        assert s.port_state == "SLAVE" and abs(s.offset_ns) <= STEP_NS, described
    assert locked.error_bound_ns == abs(locked.offset_ns) + 1_000 + 100


def test_a_plain_client_slewing_a_jump_out_is_degraded_until_resettled(lab):
    after, _log = _samples_until_settled(lab, "")
    _check(after)
    assert {s.port_state for s in after} == {"SLAVE"}, _log  # slewed: ptp4l never left SLAVE
    assert max(abs(s.offset_ns) for s in after) > STEP_NS    # and took a while over it


def test_a_plain_client_stepping_a_jump_out_is_degraded_until_resettled(lab):
    after, log = _samples_until_settled(lab, "step_threshold 0.0005\n")
    _check(after)
    assert " s0 " in log and " s1 " in log                   # ptp4l unlocked, then stepped the clock


def test_a_tagged_ptp4l_log_is_followed(lab):
    """ptp4l with linuxptp's message_tag option prefixes every message with the tag: its servo
    lines must still be read (they were not, so no logged jump was ever seen), and a followed
    log whose servo lines are all read carries no note that it understood none."""
    _start_plain(lab, "message_tag [ptp4l.0.config]\n")
    sampler = PmcSampler(PmcClient(lab.client_uds), ptp4l_log=str(lab.dir / "client.log"))
    observations = []
    lab.wait_until(lambda: observations.append(sampler()) or
                   observations[-1].servo_excursion_ns is not None, timeout_s=15, interval_s=0.2)
    assert "[ptp4l.0.config] master offset" in (lab.dir / "client.log").read_text()
    assert observations[-1].servo_log_note is None
    tracker = HealthTracker(HealthConfig())
    assert lab.wait_until(lambda: tracker.update(sampler()).state == ClockState.LOCKED,
                          timeout_s=30, interval_s=0.2)
