"""Bridges to what newer Airflow and common-compat releases offer.

common-compat 1.21+ needs Python 3.11, so on Python 3.10 the provider runs with common-compat
1.20, which has ``get_async_connection`` but neither ``get_async_extra_dejson`` nor the
``ResumableJobMixin`` bridge. Airflow 3.3 ships the mixin itself; below that, the stand-in here
starts a new execution on every try, as common-compat's own stand-in does.

Why not reattach through the XCom an earlier try pushed: Airflow 3 clears a task's XComs when
a new try starts (only a resume from deferral keeps them), so that id is gone by then.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import Context

try:
    from airflow.providers.common.compat.sdk import ResumableJobMixin
except ImportError:
    try:
        from airflow.sdk import ResumableJobMixin  # type: ignore[no-redef]
    except ImportError:

        class ResumableJobMixin:  # type: ignore[no-redef]
            """Airflow < 3.3 without common-compat's bridge: every try starts a new execution."""

            external_id_key = "remote_job_id"

            def __init__(self, *, durable: bool = True, **kwargs: Any) -> None:
                super().__init__(**kwargs)
                self.durable = False

            def execute_resumable(self, context: Context) -> Any:
                external_id = self.submit_job(context)  # type: ignore[attr-defined]
                self.poll_until_complete(external_id, context)  # type: ignore[attr-defined]
                return self.get_job_result(external_id, context)  # type: ignore[attr-defined]


async def get_async_extra_dejson(conn: Any) -> dict[str, Any]:
    """The connection's extras without blocking the event loop, on every common-compat release."""
    try:
        from airflow.providers.common.compat.connection import get_async_extra_dejson as compat_extra
    except ImportError:
        from asgiref.sync import sync_to_async

        return await sync_to_async(lambda: conn.extra_dejson)()
    return await compat_extra(conn)


def mask_secret(secret: str) -> None:
    """Register a credential with Airflow's secrets masker (common-compat 1.20 does not bridge it)."""
    try:
        from airflow.providers.common.compat.sdk import mask_secret as masker
    except ImportError:
        try:
            from airflow.sdk.log import mask_secret as masker  # type: ignore[no-redef]
        except ImportError:
            from airflow.sdk.execution_time.secrets_masker import mask_secret as masker  # type: ignore[no-redef]
    masker(secret)


async def amask_secret(secret: str) -> None:
    """``mask_secret`` for event loops: Airflow's async variant, else the sync one in a worker thread."""
    try:
        from airflow.sdk.log import amask_secret as async_masker
    except ImportError:
        from asgiref.sync import sync_to_async

        await sync_to_async(mask_secret)(secret)
        return
    await async_masker(secret)


__all__ = ["ResumableJobMixin", "amask_secret", "get_async_extra_dejson", "mask_secret"]
