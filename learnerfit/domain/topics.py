"""Default Kafka topic names: the pipeline's wiring, in the order records flow."""

PROBLEMS = "problems"                # gateway -> generator
TRAJECTORIES = "trajectories"        # generator (and later the Oracle services) -> reward scorer
REWARDED = "rewarded"                # reward scorer -> drift scorer
SCORED = "scored"                    # drift scorer (quality and compatibility known) -> curator, gateway
DECISIONS = "curation-decisions"     # curator -> gateway progress (one per problem)
CURATED = "curated"                  # curator -> trainer, gateway results
CHECKPOINTS = "checkpoints"          # trainer -> anyone following the learner: a checkpoint was registered
ORACLE_REJECTED = "oracle-rejected"  # refiner, style aligner: outputs a guardrail rejected, with the reason
