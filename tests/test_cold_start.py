"""Cold starts: importing the handler modules (what Lambda's init phase runs) in the environment a
deployed function has, tracing on, loads nothing that only a request needs. benchmarks/cold_start.py
measures the time; this keeps the lazy imports from coming back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

FUNCTIONS = Path(__file__).resolve().parents[1] / "functions"
# Loaded on the first verification (firebase-admin, google-auth and what they pull in), or never: the
# X-Ray SDK's patch_all used to import every library it can patch (httpx, requests, sqlite3).
LAZY = (
    "firebase_admin",
    "google.auth.transport.requests",
    "google.oauth2",
    "cachecontrol",
    "requests",
    "httpx",
    "cryptography",
    "sqlite3",
)
DEPLOYED = {
    "STAGE": "prod",
    "FIREBASE_PROJECT_ID": "videocall-cold",
    "CHIME_BACKEND": "aws",
    "DB_AUTH": "iam",
    "DB_HOST": "proxy.example.internal",
    "DB_USER": "videocall_app",
    "POWERTOOLS_TRACE_DISABLED": "false",
    "LAMBDA_TASK_ROOT": str(FUNCTIONS),  # Powertools turns tracing on only inside Lambda
    "AWS_LAMBDA_FUNCTION_NAME": "videocall-cold",
    "AWS_REGION": "eu-central-1",
    "AWS_DEFAULT_REGION": "eu-central-1",
    "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
    "PYTHONPATH": str(FUNCTIONS),
}
PROBE = """
import importlib, json, pkgutil, sys
import handlers
for module in pkgutil.iter_modules(handlers.__path__):
    importlib.import_module("handlers." + module.name)
from aws_xray_sdk.core import patcher
from videocall.core.observability import tracer
after_import = [m for m in LAZY if m in sys.modules]
from videocall.runtime import runtime
runtime().authenticator.prepare()
print(json.dumps({"after_import": after_import, "after_prepare": [m for m in LAZY if m in sys.modules],
                  "patched": sorted(patcher._PATCHED_MODULES), "tracing": not tracer.disabled}))
"""


def test_handler_imports_load_no_request_time_library_and_patch_only_botocore():
    env = {k: v for k, v in os.environ.items() if k not in ("FIREBASE_AUTH_EMULATOR_HOST", "DATABASE_URL")}
    env.update(DEPLOYED)
    result = subprocess.run(
        [sys.executable, "-c", f"LAZY = {LAZY!r}\n{PROBE}"],
        env=env, cwd=FUNCTIONS, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["tracing"], "the probe must run with tracing on, as deployed"
    assert seen["after_import"] == []
    assert seen["patched"] == ["botocore"]
    # The probe can see these modules: the first verification loads what it needs.
    assert {"firebase_admin", "google.oauth2", "cryptography"} <= set(seen["after_prepare"])
