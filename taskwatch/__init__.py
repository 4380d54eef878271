"""taskwatch: a terminal UI for Celery clusters and their schedulers."""

__version__ = "0.1.0"
