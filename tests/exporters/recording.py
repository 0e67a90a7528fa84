"""A real network backend that records where it was asked to connect (tests of the guard)."""

from __future__ import annotations

from collections.abc import Iterable

import httpcore


class RecordingBackend(httpcore.SyncBackend):
    """Real sockets, with a record of every address the guard asked to connect to."""

    def __init__(self) -> None:
        self.connects: list[tuple[str, int]] = []

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        self.connects.append((host, port))
        return super().connect_tcp(host, port, timeout, local_address, socket_options)
