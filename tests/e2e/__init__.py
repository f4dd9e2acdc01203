"""End-to-end tests: a real Airflow deployment, its UI in headless Chromium, and the built package."""
