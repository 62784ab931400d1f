"""The journal's append rates with its directory on a tmpfs mounted `huge=within_size` (2 MiB pages),
beside the same runs in the default tmpfs (4 KiB pages): the journal_bench section that shows what
the kernel's per-page work costs a fresh segment, and what a RAM-resident deployment saves by
mounting its journal directory with huge pages.

Owns only the mount and the comparison; the C program, the Python batch rounds and the table
helpers are journal_bench's. The mount is private to this run (a fresh directory under /tmp,
unmounted afterwards); without root or tmpfs huge-page support the section says why it is missing.
"""
from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import subprocess
import tempfile

HUGE_MOUNT_SIZE = "4g"   # three fresh 64 MiB-segment journals at a time at most


@contextlib.contextmanager
def huge_tmpfs():
    """(path, None) of a private tmpfs with huge=within_size, or (None, why it could not be made)."""
    if os.geteuid() != 0:
        yield None, "not root: no tmpfs can be mounted"
        return
    point = pathlib.Path(tempfile.mkdtemp(prefix="mmj-huge-"))
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={HUGE_MOUNT_SIZE},huge=within_size,mode=0700",
                           "tmpfs", str(point)], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        point.rmdir()
        yield None, f"mount -t tmpfs -o huge=within_size failed: {done.stderr.strip()[:200]}"
        return
    try:
        yield point, None
    finally:
        subprocess.run(["umount", str(point)], capture_output=True, timeout=60)
        point.rmdir()


def _shmem_huge_kb() -> int:
    """ShmemHugePages from /proc/meminfo (kB of tmpfs/shmem in huge pages, system-wide)."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("ShmemHugePages:"):
                return int(line.split()[1])
    return 0


def _huge_kb_of_a_journal(mount: pathlib.Path) -> int:
    """ShmemHugePages gained while a journal with one written segment is open in `mount`: whether the
    kernel really gives the mount huge pages."""
    from journal import Journal
    before = _shmem_huge_kb()
    j = Journal(str(mount / "probe"), segment_size=64 << 20)
    try:
        j.append_batch(3, [bytes(64)] * 4096, 0, 1, 0)
        return _shmem_huge_kb() - before
    finally:
        j.close()
        shutil.rmtree(mount / "probe", ignore_errors=True)


def _host_backing_note() -> str:
    """Why the huge-page rows swing between runs on a VM whose kernel reports free memory to its host."""
    try:
        cmdline = pathlib.Path("/proc/cmdline").read_text().split()
    except OSError:
        cmdline = []
    order = next((arg.split("=", 1)[1] for arg in cmdline if arg.startswith("page_reporting.page_reporting_order=")),
                 None)
    if order is None:
        return ("This kernel's command line sets no free page reporting order: huge pages are cleared at the "
                "speed of this machine's memory.")
    return (f"This machine is a VM whose kernel reports free memory to its host in blocks of 2^{order} pages "
            f"(page_reporting.page_reporting_order={order} on /proc/cmdline); the host reclaims reported blocks "
            "and backs them again on first touch. Huge pages come from exactly such high-order free blocks, so "
            "clearing a fresh one runs at whatever speed the host's re-backing allows: perf of a slow C batch "
            "run put 52% of the process's samples in clear_page_erms under MADV_POPULATE_WRITE, and the table "
            "'Where a fresh segment page's time goes' shows the kernel clearing fresh anonymous memory about "
            "ten times slower than memset clears the same memory once mapped. The rows below therefore swing "
            "between runs with how much of the memory they get the host still backs (the C rows give the "
            "lowest and highest of their three runs). One untimed journal is written and removed in the mount "
            "before the rows, whose first run would otherwise take the coldest memory; a journal that keeps "
            "growing on this VM takes fresh memory all day, so its cost lies between these rows and the "
            "cold one. On hardware, or a VM without free "
            "page reporting, a fresh huge page costs only its clearing.")


def section(exe: pathlib.Path | None, run_c, python_batch, c_records: int,
            default_rows: dict) -> list[str]:
    """The huge-page table: C batch and single appends and the Python batch at 64 bytes, each the median
    of three fresh journals, in the huge-page mount, against `default_rows` (the same runs in the default
    tmpfs: key -> (records per second, per CPU-s))."""
    title = "### The same appends with the journal directory on a tmpfs mounted huge=within_size (2 MiB pages)"
    if exe is None:
        return [title, "", "Left out: the C program did not build (see above).", ""]
    with huge_tmpfs() as (mount, why):
        if mount is None:
            return [title, "", f"Left out: {why}.", ""]
        huge_seen = _huge_kb_of_a_journal(mount)
        rows = {}
        # one untimed journal first: otherwise whichever row runs first takes the mount's cold memory
        run_c(exe, "batch", c_records * 4, 64, 1024, work=mount, runs=1)
        c = run_c(exe, "batch", c_records * 4, 64, 1024, work=mount)
        rows["C batch"] = (1e9 / c["batch_ns_per_record"], 1e9 / c["batch_cpu_ns_per_record"])
        spreads = {"C batch": (c["batch_cpu_ns_per_record_min"], c["batch_cpu_ns_per_record_max"])}
        c = run_c(exe, "append", c_records, 64, work=mount)
        rows["C single"] = (1e9 / c["loop_ns_per_record"], 1e9 / c["loop_cpu_ns_per_record"])
        spreads["C single"] = (c["loop_cpu_ns_per_record_min"], c["loop_cpu_ns_per_record_max"])
        wall, cpu, _ = python_batch(64, c_records * 4, mount)
        rows["Python batch"] = (wall, cpu)
    labels = {"C batch": "journal (C), mmj_append_batch, 1024/call", "C single": "journal (C), mmj_append in a loop",
              "Python batch": "journal (Python), append_batch, 1024/call"}
    out = [title, "",
           "Each a median of three runs in a fresh journal, 64-byte records, in a private tmpfs this benchmark "
           f"mounts (size={HUGE_MOUNT_SIZE}, huge=within_size) and unmounts; the default-tmpfs columns are the "
           "runs above. A segment's 64 MiB then take 32 huge pages: posix_fallocate reserves them without "
           "clearing, and the helper's first prefault of each 2 MiB clears and maps it in one fault, so the "
           "per-4 KiB-page work of the default tmpfs (allocation, mapping, unmapping: table 'Where a fresh "
           "segment page's time goes') mostly goes. What remains is clearing the memory and the append itself. "
           "The journal needs no option for this: a deployment mounts its journal directory so.", "",
           _host_backing_note(), "",
           "| append | records/s | records/CPU-s | records/CPU-s, default tmpfs | huge / default (CPU) | "
           "CPU ns/record (C: lowest-highest of the three) | target |", "|---|---|---|---|---|---|---|"]
    for key, (wall, cpu) in rows.items():
        base = default_rows.get(key)
        target = ">= 20 M/CPU-s" if key.endswith("batch") else "<= 50 ns/record"
        met = (cpu >= 20e6) if key.endswith("batch") else (1e9 / cpu <= 50)
        spread = f" ({spreads[key][0]:.1f}-{spreads[key][1]:.1f})" if key in spreads else ""
        ratio = f"{base[1]:,.0f} | {cpu / base[1]:.2f}x" if base else "- | -"
        out.append(f"| {labels[key]} | {wall:,.0f} | {cpu:,.0f} | {ratio} | {1e9 / cpu:.1f}{spread} | "
                   f"{target}: {'met' if met else 'NOT met'} |")
    out += ["", f"Huge pages gained (ShmemHugePages) while a probe journal with one segment was open in the mount: {huge_seen:,} kB"
            + (" (none: the kernel gave this mount 4 KiB pages, so the rows above measure no huge pages)"
               if huge_seen == 0 else "") + ".", ""]
    return out
