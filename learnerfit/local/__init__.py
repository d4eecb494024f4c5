"""Running LearnerFit on one machine: the Tansu broker, a Triton server, every service as a process."""
