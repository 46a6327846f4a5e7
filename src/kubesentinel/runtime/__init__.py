"""Live stream monitor: Falco alerts in, correlated incidents out."""
