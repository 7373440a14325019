"""jobplane trainer: trains per-bot NLP models and reports to the plane."""
__version__ = "0.1.0"
