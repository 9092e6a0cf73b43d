"""Adapters to outside systems and stores, one module per system. Each activity is idempotent."""
