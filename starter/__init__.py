"""The edges people and systems touch: the `revops` CLI, the HTTP API and the embedded stack."""
