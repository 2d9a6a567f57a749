"""Finding the shipper processes of a spool, and making sure none is left behind."""

from __future__ import annotations

from pathlib import Path

import psutil

SHIPPER_MODULE = "emstrack._delivery.shipper"


def shipper_processes(spool: Path) -> list[psutil.Process]:
    """Live shipper processes working on ``spool`` (whoever started them)."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        command = process.info["cmdline"] or []
        alive = process.info["status"] != psutil.STATUS_ZOMBIE
        if SHIPPER_MODULE in command and str(spool) in command and alive:
            found.append(process)
    return found


def wait_for_shippers(spool: Path, timeout: float = 120) -> list[psutil.Process]:
    """Wait until every shipper of ``spool`` has exited by itself; return those still alive."""
    _, alive = psutil.wait_procs(shipper_processes(spool), timeout=timeout)
    return alive


def kill_shippers(spool: Path) -> int:
    """SIGKILL every shipper of ``spool`` (a whole machine dying); return how many."""
    found = shipper_processes(spool)
    for process in found:
        process.kill()
    psutil.wait_procs(found, timeout=30)
    return len(found)
