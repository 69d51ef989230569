"""Root URL configuration: each app owns its own urls module."""

from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path

from api.endpoints import api
from common.views import health

urlpatterns: list[URLPattern | URLResolver] = [
    path("health/", health, name="health"),
    path("admin/", admin.site.urls),
    # Our account pages (profile, settings, delete) first, then allauth's.
    path("accounts/", include("users.urls")),
    path("accounts/", include("allauth.urls")),
    path("credits/", include("credits.urls")),
    path("services/", include("services.urls")),
    path("api/", api.urls),
    path("api-keys/", include("api.urls")),
    path("dashboard/", include("admin_dashboard.urls")),
    path("", include("stripe_manager.urls")),
    path("", include("public.urls")),
]

# Uploaded media in development only; production serves MEDIA_ROOT from the proxy
# or a volume. static() returns nothing when DEBUG is off.
urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
