"""Preference data, the lowest layer (imports nothing above it): reading input files and writing outputs
atomically (``io``), row formats and validation (``formats``), Arrow loading and caching (``dataset``),
tokenization with truncation (``chat``), batching (``collate``), and ``data check`` / ``data convert``."""
