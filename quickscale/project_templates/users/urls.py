from django.urls import path

from users import views

app_name = "users"

urlpatterns = [
    path("profile/", views.profile, name="profile"),
    path("settings/", views.account_settings, name="settings"),
    path("delete/", views.account_delete, name="delete"),
    path("email-preferences/", views.email_preferences, name="email_preferences"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
]
