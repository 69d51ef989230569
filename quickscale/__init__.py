"""QuickScale: generate and run a complete Django SaaS project."""

__version__ = "0.1.0"
