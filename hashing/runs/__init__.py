"""The life of a run folder: config checks, atomic writes, status markers, resume, summary.

* :mod:`~hashing.runs.config_checks`: top-level config values checked before any data is read.
* :mod:`~hashing.runs.atomic`: every artifact and cache is written whole or not at all;
  :mod:`~hashing.runs.checkpoint_io` does the same for Lightning's checkpoints.
* :mod:`~hashing.runs.errors`: the user's errors (bad values, missing files, a full or
  read-only disk) as one paragraph and exit status 2; :mod:`~hashing.runs.hydra_errors` for
  those Hydra meets before the job (an unknown key, a run folder it cannot make).
* :mod:`~hashing.runs.stopping`: Ctrl-C outside the training loop: exit 130, no traceback.
* :mod:`~hashing.runs.status`: ``failed.json`` / ``interrupted.json`` markers for reports.
* :mod:`~hashing.runs.resume`: ``resume=<run dir>``: the command line and the checkpoint.
* :mod:`~hashing.runs.summary`: the table a run prints at its end.
"""
