"""Trainer service: consumes curated examples, fine-tunes the learner when enough arrived (or on Train), registers."""
