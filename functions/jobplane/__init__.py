"""jobplane: an event-driven jobs plane for training per-bot NLP models."""
__version__ = "0.1.0"
