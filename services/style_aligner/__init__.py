"""Style aligner service: Style-Aligned Refinement (rewrite) and step repair continued by the learner."""
