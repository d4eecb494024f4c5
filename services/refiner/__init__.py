"""Refiner service: the Oracle repairs a learner trace (refine) or solves the problem itself (synthesize)."""
