"""Preference data: formats, validation, tokenization with truncation, batching, synthetic tasks."""
