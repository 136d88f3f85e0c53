"""The job engine: the library (owner), transports, events, and the job runner workers use."""
