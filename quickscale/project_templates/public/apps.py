from django.apps import AppConfig


class PublicConfig(AppConfig):
    """Pages anyone can see: landing and about."""

    name = "public"
    verbose_name = "Public pages"
