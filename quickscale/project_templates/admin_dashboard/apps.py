from django.apps import AppConfig


class AdminDashboardConfig(AppConfig):
    """Staff pages: users, credits, services, payments, refunds and the audit log."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "admin_dashboard"
    verbose_name = "Admin dashboard"
