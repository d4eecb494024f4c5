"""The gateway service: accepts batches of problems, reports their progress, streams their curated examples."""
