"""The trainer service: consumes curated examples and fine-tunes the learner with TRL.

Not built yet (planned with the registry and the closed loop); the package exists so the
layout shows where it goes.
"""
