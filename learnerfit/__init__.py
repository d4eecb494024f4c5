"""LearnerFit: curates math-reasoning training data for a small learner on quality and compatibility.

Layers, each importing only those below it (checked by import-linter, `[tool.importlinter]` in pyproject.toml):
`errors`, `section`, `recent`, `paths`, `catalog`, `v1` (generated records) < `domain` < `models`, `registry` < `runtime` <
`trainer` < `services` < `local`, `generate` < `study` < `cli`; `catalog` (every service, named by module) sits at
the bottom, so the CLI and the local stack know the services without importing one.
"""
