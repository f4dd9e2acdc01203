"""Stand-ins for what Airflow's task runner hands an operator, for tests that call ``execute`` directly."""

from __future__ import annotations

from typing import Any

import pendulum


class TaskStateStore:
    """Holds values across tries of one task instance, like ``context["task_state_store"]``."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any, **_: Any) -> None:
        assert value is not None
        self.values[key] = value


class TaskInstance:
    dag_id, task_id, run_id, map_index = "durable_dag", "run", "manual__2026-11-23", -1

    def __init__(self, try_number: int = 1) -> None:
        self.try_number = try_number
        self.xcom: dict[str, Any] = {}
        self.stats_tags: dict[str, str] = {}
        self.start_date = pendulum.now("UTC")

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


def context(store: TaskStateStore | None = None, try_number: int = 1) -> dict[str, Any]:
    return {"ti": TaskInstance(try_number), "task_state_store": store}
