from django.urls import path

from credits import views

app_name = "credits"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("history.csv", views.history_csv, name="history_csv"),
]
