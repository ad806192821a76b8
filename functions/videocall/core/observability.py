"""The logger, tracer and metrics singletons every module shares.

Tracing: X-Ray segments per invocation (capture_lambda_handler) with the boto3 calls to Chime, S3 and
the rest as subsegments: the X-Ray SDK patches botocore only. Not `patch_all`, which imports every
library it could patch (httpx with rich and click, requests, sqlite3, psycopg) into every function's
cold start for subsegments we do not need (psycopg's patch traces only `connect`, not our queries).
The one other remote call, the fetch of Google's token certificates (once per max-age), gets an
explicit subsegment (`traced`). Domain methods are deliberately not wrapped in
tracer.capture_method: it logs every exception with its traceback and message, and a 4xx is an
exception in the domain.

Never log a request body, a header, an ID token, a JoinToken, a name, transcript or chat text.
Log identifiers (meeting id, appointment id, user id) and outcomes only.
"""

from __future__ import annotations

import os
import traceback
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

SERVICE = os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "videocall")
NAMESPACE = os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Telehealth/VideoCall")

logger = Logger(service=SERVICE)
TRACED_MODULES = ("botocore",)
tracer = Tracer(service=SERVICE, patch_modules=TRACED_MODULES)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

__all__ = ["MetricUnit", "count_failure", "logger", "metrics", "safe_traceback", "traced", "tracer"]


def traced(name: str) -> AbstractContextManager[Any]:
    """An X-Ray subsegment around a remote call no patched library traces (nothing when tracing is off)."""
    if tracer.disabled:
        return nullcontext()
    return tracer.provider.in_subsegment(name)


def count_failure(cause: str) -> None:
    """One `Failures` metric with its cause as a dimension (own EMF blob, so dimensions don't leak)."""
    with single_metric(
        name="Failures",
        unit=MetricUnit.Count,
        value=1,
        namespace=NAMESPACE,
        default_dimensions={"service": SERVICE},
    ) as metric:
        metric.add_dimension(name="cause", value=cause)


def safe_traceback(exc: BaseException) -> list[str]:
    """Where an unexpected error happened, without its message (messages can carry data)."""
    frames = traceback.extract_tb(exc.__traceback__)
    return [f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} in {f.name}" for f in frames[-8:]]
