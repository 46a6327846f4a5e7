"""Incident reports: what happened, why the workload was exposed, and what to do now."""
