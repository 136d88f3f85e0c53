"""The job engine: the library (owner), transports, events, and one attempt of a job as a worker runs it (attempt.py)."""
