"""LearnerFit services: one package per deployable process, plus what they share."""
