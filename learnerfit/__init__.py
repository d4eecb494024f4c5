"""LearnerFit: curates math-reasoning training data for a small learner on quality and compatibility.

Layers, each importing only those below it (checked by import-linter, `[tool.importlinter]` in pyproject.toml):
`errors`, `section`, `recent`, `paths`, `v1` (generated records) < `domain` < `models`, `registry` < `runtime` <
`trainer` < `services` < `local` < `study` < `cli`.
"""
