"""A tiny greeting service, used as the target repository of forgebot's demo."""
