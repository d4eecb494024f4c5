"""Model back ends behind small interfaces (generate, and later log-probs and reward); the engine is a setting."""
