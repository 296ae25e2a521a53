"""forgebot: a self-hosted GitOps bot that turns labelled issues into tested pull requests."""

__version__ = "0.1.0"
