"""The checkpoint registry: the store (a directory plus an SQLite index, owned by the registry service and the
trainer) and a client of the registry service's gRPC API (for everyone else)."""
