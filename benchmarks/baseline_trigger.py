"""The baseline of the triggerer-scale benchmark: a trivial trigger that opens a new HTTP session per poll.

That is what the dbt Cloud provider's trigger does (its hook's async calls each open an
``aiohttp.ClientSession``). It polls the same GET endpoint as ours, with the same interval, and fires one
event when the execution is terminal. SailPoint's bearer token is fetched once per trigger, as ours does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from airflow.triggers.base import BaseTrigger, TriggerEvent

from benchmarks import rawapi


class SessionPerPollTrigger(BaseTrigger):
    def __init__(self, *, vendor: str, base_url: str, workflow: str, execution_id: str, poll_interval: float) -> None:
        super().__init__()
        self.vendor = vendor
        self.base_url = base_url
        self.workflow = workflow
        self.execution_id = execution_id
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "vendor": self.vendor,
                "base_url": self.base_url,
                "workflow": self.workflow,
                "execution_id": self.execution_id,
                "poll_interval": self.poll_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        token = None
        if self.vendor == "sailpoint":
            async with (
                aiohttp.ClientSession() as session,
                session.post(self.base_url + rawapi.TOKEN_PATH, data=rawapi.TOKEN_FORM) as answer,
            ):
                token = (await answer.json())["access_token"]
        url = self.base_url + rawapi.get_path(self.vendor, self.workflow, self.execution_id)
        headers = rawapi.headers(self.vendor, token)
        while True:
            async with (
                aiohttp.ClientSession(headers=headers) as session,
                session.get(url, params=rawapi.get_params(self.vendor)) as answer,
            ):
                answer.raise_for_status()
                status = rawapi.status(self.vendor, await answer.json())
            if status in rawapi.TERMINAL[self.vendor]:
                outcome = "success" if status == rawapi.SUCCEEDED[self.vendor] else "failure"
                yield TriggerEvent({"status": outcome, "execution_id": self.execution_id})
                return
            await asyncio.sleep(self.poll_interval)
