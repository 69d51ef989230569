"""Root URL configuration: each app owns its own urls module."""

from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path

from api.endpoints import api
from common.views import health
from users.views import avatar

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

# Avatars in every environment (users.views.avatar); the rest of MEDIA_ROOT in
# development only (static() returns nothing when DEBUG is off).
urlpatterns += [
    path(f"{settings.MEDIA_URL.strip('/')}/avatars/<str:name>", avatar, name="avatar"),
    *static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT),
]
