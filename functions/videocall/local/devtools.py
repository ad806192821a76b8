"""Local development helpers: Firebase-emulator ID tokens and seeding users and appointments.

Emulator tokens are unsigned (alg "none"): firebase-admin accepts them only when
FIREBASE_AUTH_EMULATOR_HOST is set, which Settings refuses in any deployed stage.

Seed file format (see dev/seed.json):
    {"users": [{"key": "dr_lee", "firebase_uid": "dr-lee", "role": "provider", "display_name": "Dr Lee"}, ...],
     "appointments": [{"id": "appt_123", "provider": "dr_lee", "patient": "pat_kim",
                       "video_enabled": true, "scheduled_at": "2026-11-24T10:00:00Z", "status": "scheduled"}]}
`provider` / `patient` name a user's key (or firebase_uid). Seeding is idempotent (upserts).
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import psycopg
from psycopg.rows import dict_row


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).rstrip(b"=").decode()


def emulator_id_token(firebase_uid: str, project_id: str, *, lifetime_seconds: int = 3600) -> str:
    now = int(time.time())
    payload = {
        "iss": f"https://securetoken.google.com/{project_id}",
        "aud": project_id,
        "auth_time": now,
        "user_id": firebase_uid,
        "sub": firebase_uid,
        "iat": now,
        "exp": now + lifetime_seconds,
        "firebase": {"identities": {}, "sign_in_provider": "custom"},
    }
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(payload)}."


def seed(database_url: str, data: dict[str, Any], project_id: str) -> list[dict[str, Any]]:
    users = data.get("users", [])
    appointments = data.get("appointments", [])
    out = []
    with psycopg.connect(database_url, row_factory=dict_row) as conn, conn.transaction():
        ids: dict[str, str] = {}
        for user in users:
            row = conn.execute(
                """INSERT INTO users (firebase_uid, role, display_name) VALUES (%s, %s, %s)
                   ON CONFLICT (firebase_uid) DO UPDATE SET role = EXCLUDED.role, display_name = EXCLUDED.display_name
                   RETURNING id::text AS id""",
                (user["firebase_uid"], user["role"], user.get("display_name", user["firebase_uid"])),
            ).fetchone()
            assert row is not None
            ids[user.get("key", user["firebase_uid"])] = row["id"]
            ids[user["firebase_uid"]] = row["id"]
            out.append({
                "key": user.get("key", user["firebase_uid"]),
                "id": row["id"],
                "firebase_uid": user["firebase_uid"],
                "role": user["role"],
                "token": emulator_id_token(user["firebase_uid"], project_id),
            })  # fmt: skip

        def user_id(name: str) -> str:
            """A user of this file (by key or firebase_uid), or one seeded earlier (by firebase_uid)."""
            if name in ids:
                return ids[name]
            found = conn.execute("SELECT id::text AS id FROM users WHERE firebase_uid = %s", (name,)).fetchone()
            if found is None:
                raise SystemExit(f"seed: no user {name!r} in this file or the database")
            return str(found["id"])

        for appt in appointments:
            conn.execute(
                """INSERT INTO appointments (id, provider_id, patient_id, video_enabled, scheduled_at, status)
                   VALUES (%s, %s, %s, %s, %s, %s)
                   ON CONFLICT (id) DO UPDATE SET provider_id = EXCLUDED.provider_id,
                       patient_id = EXCLUDED.patient_id, video_enabled = EXCLUDED.video_enabled,
                       scheduled_at = EXCLUDED.scheduled_at, status = EXCLUDED.status,
                       erased_at = NULL  -- seeding again after trying erasure gives a usable appointment""",
                (
                    appt["id"],
                    user_id(appt["provider"]),
                    user_id(appt["patient"]),
                    appt.get("video_enabled", True),
                    appt.get("scheduled_at", "2026-01-01T00:00:00Z"),
                    appt.get("status", "scheduled"),
                ),
            )
    return out
