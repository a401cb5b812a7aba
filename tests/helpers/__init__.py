"""Helpers the tests share: running the pipeline and CLI, probes and callbacks tests inject."""
