"""``forgebot eval``: measure the bot on a suite of small tasks with hidden tests.

``tasks`` loads and validates a suite folder, ``harness`` runs each task through the real
service on a fresh local forge, ``grade`` runs the hidden tests in the sandbox, and
``results`` holds what was found and renders it as a table or JSON. See docs/eval.md.
"""
