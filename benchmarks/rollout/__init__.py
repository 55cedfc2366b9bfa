"""Rollout benchmark: check lateness and CPU with many rollouts in analysis at once."""
