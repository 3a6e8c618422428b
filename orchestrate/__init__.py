"""The top layer: the nightly pipeline, the command line, the run report, the demo and Airflow glue.

It imports every stage; no stage imports it (see docs/architecture.md, "Layers").
"""
