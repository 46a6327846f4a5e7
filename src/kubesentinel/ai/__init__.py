"""Behavioural analyzer: learns each workload's normal behaviour and scores deviations."""
