"""``python -m airflow_workflow_provider.testing`` runs the emulator, like ``...testing.emulator``."""

from airflow_workflow_provider.testing.emulator import main

raise SystemExit(main())
