"""Murmur's load tests: a Locust workload modelled on the seeded graph, SLO gates, shapes.

`locustfile.py` is what Locust loads; `run.py` is what `make load` runs (it prepares the
per-run report folder and starts Locust). `slo.py`, `shapes.py` and `workload.py` are plain
Python with no Locust import, so the unit tests run them without Locust installed.
"""
