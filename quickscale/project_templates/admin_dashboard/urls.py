from django.urls import path

from admin_dashboard import views

app_name = "admin_dashboard"

urlpatterns = [
    path("", views.home, name="dashboard"),
    path("audit/", views.audit_log, name="audit"),
    path("users/", views.user_list, name="users"),
    path("users/<int:pk>/", views.user_detail, name="user_detail"),
    path("users/<int:pk>/adjust/", views.user_adjust, name="user_adjust"),
]
