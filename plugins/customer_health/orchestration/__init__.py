"""Orchestration: the nightly DAG's steps, failure alerts, and the local Airflow runner.

See docs/nightly.md and docs/deployment.md.
"""
