"""The local stack's AWS stand-ins, wired as AWS wires them:

- the Chime meetings emulator and the media-pipelines emulator (each checked against its botocore
  service model), the latter writing real files into the local S3;
- `BUS`, Chime's EventBridge for this process: the emulators emit the events Chime would send, and
  `BUS.deliver()` hands each to the function its EventRoute names: the same handler modules Lambda
  runs. The local server delivers after every request; tests do the same.
"""

from __future__ import annotations

import threading
from collections import deque
from importlib import import_module
from typing import Any

from videocall.core.settings import Settings
from videocall.local.chime_emulator import ChimeEmulator
from videocall.local.pipelines_emulator import MediaPipelinesEmulator


class LocalEventBus:
    def __init__(self) -> None:
        self._queue: deque[dict[str, Any]] = deque()
        self._lock = threading.Lock()
        self.delivered: list[tuple[dict[str, Any], dict[str, Any]]] = []  # (event, handler result)

    def emit(self, event: dict[str, Any]) -> None:
        with self._lock:
            self._queue.append(event)

    def deliver(self) -> int:
        """Run every pending event through its handler, including the events those handlers cause."""
        from videocall.local.server import LambdaContextStub
        from videocall.routes import EVENT_ROUTES

        handlers = {route.detail_type: route.module for route in EVENT_ROUTES}
        count = 0
        while True:
            with self._lock:
                if not self._queue:
                    return count
                event = self._queue.popleft()
            module = handlers.get(event.get("detail-type", ""))
            if module is None:
                continue
            result = import_module(module).handler(event, LambdaContextStub())
            self.delivered.append((event, result))
            count += 1

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
        self.delivered.clear()


BUS = LocalEventBus()
_SHARED: tuple[ChimeEmulator, Any, Any] | None = None
_SHARED_LOCK = threading.Lock()


def local_clients(
    settings: Settings, *, pipelines_client: Any = None, s3_client: Any = None
) -> tuple[ChimeEmulator, Any, Any]:
    """The meetings emulator, the media-pipelines emulator and an S3 client for the local S3
    (S3_ENDPOINT_URL; in tests, moto in process). One set per process, as there is one Chime: every
    runtime of the local server (request handling, the scheduled jobs) sees the same meetings."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None or pipelines_client is not None or s3_client is not None:
            _SHARED = _make_clients(settings, pipelines_client, s3_client)
        return _SHARED


def _make_clients(settings: Settings, pipelines_client: Any, s3_client: Any) -> tuple[ChimeEmulator, Any, Any]:
    from videocall.local.s3 import s3_client as make_s3_client

    s3 = s3_client or make_s3_client(settings.s3_endpoint_url, settings.recordings_bucket_region)
    chime = ChimeEmulator(region=settings.chime_control_region, emit=BUS.emit)
    pipelines = pipelines_client or MediaPipelinesEmulator(s3_client=s3, region=settings.chime_media_region,
                                                           emit=BUS.emit)  # fmt: skip
    if isinstance(pipelines, MediaPipelinesEmulator):
        wire(chime, pipelines, s3)
    return chime, pipelines, s3


def wire(chime: ChimeEmulator, pipelines: MediaPipelinesEmulator, s3: Any) -> None:
    """What AWS does between the two services: a meeting's end stops its capture, and a capture of a
    transcribed meeting carries the transcript."""
    from videocall.local.transcript_writer import writer

    chime.on_meeting_ended.append(pipelines.meeting_ended)
    pipelines.before_stop.append(writer(chime, s3))
