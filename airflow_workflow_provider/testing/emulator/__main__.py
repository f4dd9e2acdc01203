"""``python -m airflow_workflow_provider.testing.emulator [--port N] [--url-file PATH]`` runs the emulator."""

from airflow_workflow_provider.testing.emulator.cli import main

raise SystemExit(main())
