"""Checkpoint registry: a directory of learner checkpoints with an SQLite index, served over gRPC."""
