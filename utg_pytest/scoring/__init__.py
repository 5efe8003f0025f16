"""Scores of a prediction against the real user turn."""
