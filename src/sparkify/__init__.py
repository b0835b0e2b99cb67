"""Sparkify data pipeline: shared code for the Airflow DAG, staging loaders and tooling."""
