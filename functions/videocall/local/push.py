"""The local stand-in for FCM: records what would have been sent instead of sending it.

Each push is built into the same firebase_admin.messaging.Message the real sender sends and encoded as
firebase-admin encodes it for FCM's HTTP v1 API, so what is recorded is the JSON FCM would receive.
- In memory (`sent`), for tests; `unregistered` holds tokens to answer as FCM's UNREGISTERED.
- With an `outbox` file (the local stack: `.videocall/notifications.jsonl`, or VIDEOCALL_DATA_DIR), one
  JSON line per push, without the token, so `videocall dev notifications` (another process) shows them.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from videocall.notifications.models import Outcome, Push
from videocall.notifications.sender import build_message, encode

OUTBOX_NAME = "notifications.jsonl"
_OUTBOX_LOCK = threading.Lock()  # every runtime of the local server (one per worker thread) appends here


def outbox_path() -> Path:
    return Path(os.environ.get("VIDEOCALL_DATA_DIR", ".videocall")) / OUTBOX_NAME


@dataclass(frozen=True)
class SentPush:
    user_id: str
    installation_id: str
    platform: str
    kind: str
    data: dict[str, str]
    message: dict[str, Any]  # the `message` of FCM's v1 send request
    token: str = field(repr=False)


class LocalPushSender:
    def __init__(self, outbox: Path | None = None) -> None:
        self.sent: list[SentPush] = []
        self.unregistered: set[str] = set()
        self._outbox = outbox
        self._lock = threading.Lock()

    def send(self, pushes: Sequence[Push]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        now = time.time()
        for push in pushes:
            message = encode(build_message(push, now=now))
            if push.token in self.unregistered:
                outcomes.append(Outcome("unregistered", "UnregisteredError"))
                continue
            record = SentPush(push.user_id, push.installation_id, push.platform, push.kind, dict(push.data),
                              message, push.token)  # fmt: skip
            with self._lock:
                self.sent.append(record)
            if self._outbox is not None:
                self._append(record, now)
            outcomes.append(Outcome("sent"))
        return outcomes

    def to(self, user_id: str) -> list[SentPush]:
        return [s for s in self.sent if s.user_id == user_id]

    def _append(self, record: SentPush, now: float) -> None:
        assert self._outbox is not None
        self._outbox.parent.mkdir(parents=True, exist_ok=True)
        message = {k: v for k, v in record.message.items() if k != "token"}
        line = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)), "userId": record.user_id,
                "installationId": record.installation_id, "platform": record.platform, "type": record.kind,
                "data": record.data, "message": message}  # fmt: skip
        with _OUTBOX_LOCK, self._outbox.open("a", encoding="utf-8") as out:
            out.write(json.dumps(line, sort_keys=True) + "\n")


def read_outbox(path: Path | None = None, *, limit: int = 20) -> list[dict[str, Any]]:
    """The last `limit` pushes the local stack recorded, oldest first."""
    path = path or outbox_path()
    if not path.exists():
        return []
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [json.loads(line) for line in lines[-limit:]] if limit > 0 else []


def clear_outbox(path: Path | None = None) -> None:
    (path or outbox_path()).unlink(missing_ok=True)
