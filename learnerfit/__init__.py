"""LearnerFit: curation of math-reasoning data for a small learner model."""
