"""Training: typed configs, the one loop, and the jobs built on it."""
