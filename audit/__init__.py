"""Timestamps and clock evidence: SO_TIMESTAMPING capture, PHC time, linuxptp clock health.

Modules: capture (timestamped UDP/TCP sockets), fastcap (busy-poll datagram reads in C, over
capture's sockets), txtrack (pending TX stamps, missing ones), sotimestamping (kernel constants
and cmsg decoders), nic (ethtool -T, SIOC[GS]HWTSTAMP), phc (/dev/ptpN, TAI->UTC, phc_ctl), pmc
(linuxptp management queries), ptplog (ptp4l/phc2sys logs), health (states, error bound,
profiles), sampler (pmc -> observation), monitor (the 1 Hz thread that journals CLOCK_SAMPLE),
prometheus (text exposition), metrics_http (the /metrics endpoint Prometheus scrapes). Imports
only journal.
"""
