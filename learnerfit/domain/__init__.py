"""Pure logic of LearnerFit: problems, answers, style, prompts, the Oracle, curation, batch progress.

Nothing here imports gRPC, Kafka or torch: each stage's logic is a plain class or
function from records to records, which the services wrap for gRPC and Kafka alike.
"""
