"""LLM services of this project: `quickscale generate-service NAME --type llm` writes them here.

Every module here is imported when Django starts (``llm.apps``), so its
``@register_service`` class is live from the next start of the web server.
"""
