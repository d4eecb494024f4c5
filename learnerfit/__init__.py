"""LearnerFit: curates math-reasoning training data for a small learner on quality and compatibility.

Layers, each importing only those below it (checked by import-linter, see pyproject.toml):
`errors`, `v1` (generated records) < `domain` < `models`, `registry` < `runtime` <
`services` < `cli`, `local`. `trainer/` holds training.
"""
