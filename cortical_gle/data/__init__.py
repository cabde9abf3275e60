"""Datasets: generated offline, shipped small, or read from a folder the user names."""
