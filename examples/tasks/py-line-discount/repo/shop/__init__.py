"""The web shop's order model and pricing."""
