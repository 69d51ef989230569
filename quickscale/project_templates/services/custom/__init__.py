"""Your services: one module each, discovered at start-up.

Create one with ``quickscale generate-service NAME --type ...``; it is live
after the next ``quickscale up`` (``bootstrap`` creates its ``Service`` row).
"""
