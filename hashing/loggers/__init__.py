"""Experiment loggers set up for hashing runs (see conf/logger/)."""

from hashing.loggers.run_folder import publish_run_folder

__all__ = ["publish_run_folder"]
