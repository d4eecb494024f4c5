"""Curation: per problem, which scored candidate (if any) becomes training data, and why."""
