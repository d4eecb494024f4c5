"""Drift scorer service: the learner's perplexity on each trajectory (its adaptation cost)."""
