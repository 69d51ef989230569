"""Your services: one module each, discovered at start-up.

Create one with ``quickscale generate-service NAME --type ...``. Each web server
process, as it starts, creates the ``Service`` row of a new module's class, so
the service is live once a server starts with it: in development the server
reloads on the new file, otherwise ``quickscale restart`` (docs/services.md).
"""
