from django.apps import AppConfig


class ChatConfig(AppConfig):
    """Multi-turn chat over an LLM: conversations per user, replies streamed token by token."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "chat"

    def ready(self) -> None:
        """Register the ``chat`` service (its class lives in this app, not in services/)."""
        from chat import service  # noqa: F401
