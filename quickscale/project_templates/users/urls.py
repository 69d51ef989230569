from django.urls import path

from users import views

app_name = "users"

urlpatterns = [
    path("profile/", views.profile, name="profile"),
    path("settings/", views.account_settings, name="settings"),
    path("delete/", views.account_delete, name="delete"),
]
