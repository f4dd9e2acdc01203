"""The one event schema that triggers send and operators and sensors read.

Kept free of heavy imports: operator modules import it while a DAG file is parsed.
"""

from __future__ import annotations

import math
from typing import Any, Literal

EventStatus = Literal["success", "failure", "reached", "timeout", "error"]
# success: the execution succeeded; failure: it failed or was canceled; reached: it entered one of the
# states the caller asked to stop at (e.g. Cloudflare "waiting"); timeout: the wait ran out; error: the
# vendor API could not be asked.


def execution_event(
    status: EventStatus,
    *,
    workflow: str,
    execution_id: str,
    message: str,
    execution: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "status": status,
        "workflow": workflow,
        "execution_id": execution_id,
        "message": message,
        "execution": execution,
    }


def batch_event(
    status: EventStatus,
    *,
    workflow: str,
    execution_ids: list[str],
    message: str,
    executions: list[dict[str, Any]],
) -> dict[str, Any]:
    """The event of a trigger following several executions (a Cloudflare batch): one summary each."""
    return {
        "status": status,
        "workflow": workflow,
        "execution_ids": list(execution_ids),
        "message": message,
        "executions": executions,
    }


def next_slot(previous: float, interval: float, now: float) -> float:
    """The next check on a fixed grid ``previous + k * interval`` that is still ahead of ``now``.

    Waits keep to their grid, in the worker as in the triggerer: a slow answer or a stalled loop
    delays one check, not every later one; slots missed while waiting for an answer are skipped.
    """
    following = previous + interval
    if following <= now:
        following += math.ceil((now - following) / interval + 1e-9) * interval
    return following
