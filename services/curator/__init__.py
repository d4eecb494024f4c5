"""The curator service: per problem, picks the training example from the scored candidates."""
