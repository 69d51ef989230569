import importlib
import pkgutil

from django.apps import AppConfig

# Imported at start-up: each module registers its LLM services (``@register_service``).
DISCOVERED_PACKAGES = ("llm.defaults", "llm.custom")


class LlmConfig(AppConfig):
    """LLM services: providers (official SDKs), per-token metering, the llm service type."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "llm"
    verbose_name = "LLM services"

    def ready(self) -> None:
        """Register the default LLM services and every module in ``llm/custom/``."""
        for package_name in DISCOVERED_PACKAGES:
            package = importlib.import_module(package_name)
            for module in pkgutil.iter_modules(package.__path__):
                if not module.name.startswith("_"):
                    importlib.import_module(f"{package_name}.{module.name}")
