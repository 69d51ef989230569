from django.urls import path

from services import views

app_name = "services"

urlpatterns = [
    path("", views.service_list, name="list"),
    path("usage/", views.usage_history, name="usage"),
    path("<str:name>/", views.service_detail, name="detail"),
]
