"""The life of a run folder: config checks, atomic writes, status markers, resume, summary.

* :mod:`~hashing.runs.config_checks`: top-level config values checked before any data is read.
* :mod:`~hashing.runs.atomic`: every artifact and cache is written whole or not at all.
* :mod:`~hashing.runs.status`: ``failed.json`` / ``interrupted.json`` markers for reports.
* :mod:`~hashing.runs.resume`: ``resume=<run dir>``: the command line and the checkpoint.
* :mod:`~hashing.runs.summary`: the table a run prints at its end.
"""
