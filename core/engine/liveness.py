"""Whether the worker holding a lease is still alive: host identity and process start times.

A lease records its owner's host identity, pid and process start time. Another worker may judge
the owner dead from its pid only when both run on the same host *and* in the same pid namespace:
two containers can share a hostname while their pids mean different processes. The identity is
the hostname, the boot id and the pid namespace; where any part cannot be read, the identity is
unique to this process, so nobody judges its lease from a pid and it ends only by expiry.
``DURABLY_HOST_ID`` overrides the identity (to run workers that act as separate machines on one).
"""

from __future__ import annotations

import os
import secrets
import socket

UNKNOWN_START = -1
"""The start time of a process that exists but cannot be inspected (treated as alive)."""


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as f:
            return f.read().strip() or None
    except OSError:
        return None


def host_identity() -> str:
    """``hostname/boot-id/pid-namespace``: equal for two processes only if their pids are comparable."""
    forced = os.environ.get("DURABLY_HOST_ID")
    if forced:
        return forced
    boot = _read("/proc/sys/kernel/random/boot_id")
    try:
        namespace: str | None = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = None
    if boot is None or namespace is None:
        return f"{socket.gethostname()}/unknown-{secrets.token_hex(8)}"
    return f"{socket.gethostname()}/{boot}/{namespace}"


def hostname_of(identity: str) -> str:
    """The hostname part of a host identity (for messages)."""
    return identity.split("/", 1)[0]


def process_start_time(pid: int) -> int | None:
    """The start time of process ``pid`` (clock ticks since boot), None if it is gone,
    ``UNKNOWN_START`` if it exists but cannot be inspected."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode()
        fields = data.rsplit(")", 1)[1].split()
        if fields[0] in ("Z", "X"):  # killed, not yet reaped by its parent: gone all the same
            return None
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return UNKNOWN_START
        return UNKNOWN_START


def owner_is_gone(pid: int, start_time: int) -> bool:
    """Whether the process ``pid`` that started at ``start_time`` (on this host) has exited."""
    return process_start_time(pid) not in (start_time, UNKNOWN_START)
