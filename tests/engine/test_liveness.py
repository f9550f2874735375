"""Host identities: what lets a worker judge another's lease from its pid."""

from __future__ import annotations

import pytest
from durably.core.engine.liveness import host_identity, hostname_of


def test_two_processes_of_one_host_share_an_identity() -> None:
    assert host_identity() == host_identity()
    assert hostname_of(host_identity())


def test_an_identity_can_be_given_to_act_as_another_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    real = host_identity()
    monkeypatch.setenv("DURABLY_HOST_ID", "machine-2/boot/ns")
    assert host_identity() == "machine-2/boot/ns" != real
    assert hostname_of(host_identity()) == "machine-2"
