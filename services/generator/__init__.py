"""The learner generator service: N sampled solutions per problem from the learner model."""
