"""Inference-time tools: samplers, Best-of-N, Speculative Rejection and programmatic verifiers."""
