"""Model back ends behind the small interfaces of learnerfit/domain/inference.py: transformers (CPU or GPU),
vLLM (GPU), an OpenAI-compatible endpoint, Triton for reward models; where weights come from; the followed learner."""
