from django.urls import path

from admin_dashboard import views

app_name = "admin_dashboard"

urlpatterns = [
    path("", views.home, name="dashboard"),
    path("audit/", views.audit_log, name="audit"),
    path("users/", views.user_list, name="users"),
    path("users/<int:pk>/", views.user_detail, name="user_detail"),
    path("users/<int:pk>/adjust/", views.user_adjust, name="user_adjust"),
    path("users/<int:pk>/unlock/", views.user_unlock, name="user_unlock"),
    path("payments/", views.payment_list, name="payments"),
    path("payments/<int:pk>/", views.payment_detail, name="payment_detail"),
    path("payments/<int:pk>/refund/", views.payment_refund, name="payment_refund"),
    path("products/", views.products, name="products"),
    path("services/", views.service_list, name="services"),
    path("services/<str:name>/", views.service_detail, name="service_detail"),
    path("services/<str:name>/toggle/", views.service_toggle, name="service_toggle"),
]
