"""The search service behind ``python -m hashing.serve``: an index folder over HTTP and a web page
(docs/serving.md)."""
