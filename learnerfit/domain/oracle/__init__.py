"""The Oracle side: which learner samples call for Oracle work, the prompts, the guardrails, lineage,
and the logic of the two Oracle services (refine.py, align.py)."""
