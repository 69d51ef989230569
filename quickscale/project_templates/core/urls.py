"""Root URL configuration: each app owns its own urls module."""

from django.conf import settings
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path, re_path

from api.endpoints import api
from common.views import favicon, health, live, nul_byte_not_found
from core.metrics import metrics
from users.views import avatar

# The admin wears the project's name (templates/admin/base_site.html adds the colours).
admin.site.site_header = f"{settings.PROJECT_NAME} admin"
admin.site.site_title = f"{settings.PROJECT_NAME} admin"
admin.site.index_title = f"Manage {settings.PROJECT_NAME}"

urlpatterns: list[URLPattern | URLResolver] = [
    path("health/", health, name="health"),
    path("health/live/", live, name="health_live"),
    path("favicon.ico", favicon, name="favicon"),
    # Prometheus' scrape target, for a bearer of METRICS_TOKEN only (404 when it is unset).
    path("metrics", metrics, name="metrics"),
    # The API answers every address under /api/ itself, in its JSON envelope.
    path("api/", api.urls),
    # Any other address holding a NUL byte is a 404 before a view can use it in a
    # lookup (PostgreSQL refuses NUL in text, so the query would fail with a 500).
    re_path(r"\x00", nul_byte_not_found),
    path("admin/", admin.site.urls),
    # Our account pages (profile, settings, delete) first, then allauth's.
    path("accounts/", include("users.urls")),
    path("accounts/", include("allauth.urls")),
    path("credits/", include("credits.urls")),
    path("services/", include("services.urls")),
    path("chat/", include("chat.urls")),
    path("api-keys/", include("api.urls")),
    path("dashboard/", include("admin_dashboard.urls")),
    path("home/", include("home.urls")),
    path("", include("stripe_manager.urls")),
    path("", include("public.urls")),
]

# Avatars, in every environment, by users.views.avatar, which answers only with
# the images it wrote. Nothing else under MEDIA_ROOT has a URL, in development
# either: a file served with a type guessed from its name could be a page or a
# script on this origin. (With S3_BUCKET set, pages link avatars on the bucket's
# own origin instead: common.media_storage.)
urlpatterns += [
    path(f"{settings.MEDIA_URL.strip('/')}/avatars/<str:name>", avatar, name="avatar"),
]
