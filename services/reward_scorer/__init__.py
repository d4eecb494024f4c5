"""The reward scorer service: quality of each trajectory (answer verified against the reference)."""
