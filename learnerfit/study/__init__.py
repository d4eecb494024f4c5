"""`learnerfit study`: which training data helps the learner, measured. The study's state, its statistics, the
training sets it saves and the report it writes; the command that drives the services is learnerfit/cli/study.py."""
