"""What the Oracle-side services (refiner, style aligner) share: prompts, style measures, guardrails, lineage."""
