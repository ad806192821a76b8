"""Calling AWS: throttling retried with capped exponential backoff and full jitter, and every other
failure turned into a domain error by the caller's `translate`. Error messages from AWS are never
shown or logged (they can echo request values): only their codes.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from videocall.core.observability import logger


class AwsCaller:
    def __init__(
        self,
        *,
        service: str,
        throttle_codes: frozenset[str],
        translate: Callable[[str, ClientError, str], Exception],
        unreachable: Callable[[], Exception],
        max_attempts: int = 5,
        base_delay: float = 0.1,
        max_delay: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._service = service
        self._throttle_codes = throttle_codes
        self._translate = translate
        self._unreachable = unreachable
        self._max_attempts = max_attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self.sleep = sleep
        self.calls = 0  # AWS calls made, retries included: benchmarks and tests read it

    def call(self, client: Any, operation: str, **params: Any) -> dict[str, Any]:
        method = getattr(client, operation)
        for attempt in range(1, self._max_attempts + 1):
            self.calls += 1
            try:
                result: dict[str, Any] = method(**params)
                return result
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code in self._throttle_codes and attempt < self._max_attempts:
                    delay = random.uniform(0, min(self._max_delay, self._base_delay * 2 ** (attempt - 1)))  # noqa: S311
                    logger.info(f"{self._service} throttled, backing off", extra={"operation": operation})
                    self.sleep(delay)
                    continue
                raise self._translate(operation, exc, code) from None
            except BotoCoreError as exc:  # connection errors, timeouts: no answer
                logger.warning(
                    f"{self._service} unreachable", extra={"operation": operation, "error_type": type(exc).__name__}
                )
                raise self._unreachable() from None
        raise AssertionError("unreachable")  # pragma: no cover


def retry_after_seconds(exc: ClientError) -> int:
    value = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("retry-after", "1")
    try:
        return max(1, int(value))
    except ValueError:
        return 1
