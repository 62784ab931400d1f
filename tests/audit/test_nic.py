"""ethtool -T parsing and the SIOC[GS]HWTSTAMP ioctls against real interfaces."""
import pytest

from audit.errors import HwTimestampingUnsupported, ParseError, TimestampingError
from audit.nic import HwRxFilter, HwStampConfig, HwTxType, enable_hw_timestamping, ethtool_timestamping, \
    get_hw_timestamping, parse_ethtool_t
from tests.audit.standin import write_session_checking_tool

SOFTWARE_ONLY = """\
Time stamping parameters for veth0:
Capabilities:
\tsoftware-transmit
\tsoftware-receive
\tsoftware-system-clock
PTP Hardware Clock: none
Hardware Transmit Timestamp Modes: none
Hardware Receive Filter Modes: none
"""

HARDWARE = """\
Time stamping parameters for enp1s0:
Capabilities:
\thardware-transmit
\tsoftware-transmit
\thardware-receive
\tsoftware-receive
\tsoftware-system-clock
\thardware-raw-clock
PTP Hardware Clock: 2
Hardware Transmit Timestamp Modes:
\toff
\ton
Hardware Receive Filter Modes:
\tnone
\tall
"""

# ethtool 5.x prints the kernel constant next to each name
HARDWARE_OLD_STYLE = """\
Time stamping parameters for eth0:
Capabilities:
\thardware-transmit     (SOF_TIMESTAMPING_TX_HARDWARE)
\thardware-receive      (SOF_TIMESTAMPING_RX_HARDWARE)
\thardware-raw-clock    (SOF_TIMESTAMPING_RAW_HARDWARE)
PTP Hardware Clock: 0
Hardware Transmit Timestamp Modes:
\toff                   (HWTSTAMP_TX_OFF)
\ton                    (HWTSTAMP_TX_ON)
Hardware Receive Filter Modes:
\tnone                  (HWTSTAMP_FILTER_NONE)
\tptpv2-event           (HWTSTAMP_FILTER_PTP_V2_EVENT)
"""


def test_software_only_interface():
    caps = parse_ethtool_t(SOFTWARE_ONLY)
    assert caps.interface == "veth0" and caps.phc_index is None and caps.phc_device is None
    assert caps.capabilities == ("software-transmit", "software-receive", "software-system-clock")
    assert caps.tx_modes == () and caps.rx_filters == () and not caps.hardware_capable


@pytest.mark.parametrize("text,iface,phc,filters", [
    (HARDWARE, "enp1s0", 2, ("none", "all")),
    (HARDWARE_OLD_STYLE, "eth0", 0, ("none", "ptpv2-event")),
])
def test_hardware_interface(text, iface, phc, filters):
    caps = parse_ethtool_t(text)
    assert (caps.interface, caps.phc_index, caps.phc_device) == (iface, phc, f"/dev/ptp{phc}")
    assert caps.tx_modes == ("off", "on") and caps.rx_filters == filters
    assert caps.hardware_capable


@pytest.mark.parametrize("text", ["", "Cannot get device time stamping settings\n",
                                  SOFTWARE_ONLY.replace("PTP Hardware Clock: none\n", ""),
                                  SOFTWARE_ONLY.replace("none\nHardware Transmit", "zero\nHardware Transmit", 1)])
def test_bad_ethtool_output(text):
    with pytest.raises(ParseError):
        parse_ethtool_t(text)


def test_real_ethtool_on_loopback():
    caps = ethtool_timestamping("lo")
    assert caps.interface == "lo" and "software-receive" in caps.capabilities
    assert not caps.hardware_capable


def test_ethtool_runs_in_a_session_of_its_own_holding_the_job_signals(tmp_path):
    # a hang-up or Ctrl-C sent to the job while it starts must not kill it (audit.childproc)
    fake = write_session_checking_tool(tmp_path / "ethtool", SOFTWARE_ONLY)
    caps = ethtool_timestamping("veth0", ethtool=fake)
    assert caps.interface == "veth0" and not caps.hardware_capable


def test_real_ethtool_on_missing_interface():
    with pytest.raises(ParseError, match="failed"):
        ethtool_timestamping("nosuchif0")


def test_loopback_has_no_hardware_timestamping():
    with pytest.raises(HwTimestampingUnsupported):
        get_hw_timestamping("lo")
    with pytest.raises(HwTimestampingUnsupported):
        enable_hw_timestamping("lo", HwTxType.ON, HwRxFilter.ALL)


def test_bad_interface_names():
    with pytest.raises(TimestampingError, match="no such interface"):
        get_hw_timestamping("nosuchif0")
    with pytest.raises(TimestampingError, match="bad interface name"):
        get_hw_timestamping("x" * 16)


def test_config_description():
    assert HwStampConfig(1, 1).describe() == "tx ON, rx filter ALL" and HwStampConfig(1, 1).enabled
    assert not HwStampConfig(0, 0).enabled
