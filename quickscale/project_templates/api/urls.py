from django.urls import path

from api import views

app_name = "api_keys"

urlpatterns = [
    path("", views.api_keys_page, name="list"),
    path("<int:key_id>/revoke/", views.api_key_revoke_view, name="revoke"),
]
