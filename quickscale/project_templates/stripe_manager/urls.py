from django.urls import path

from stripe_manager import views
from stripe_manager.simulator import views as simulator_views

app_name = "stripe_manager"

urlpatterns = [
    path("stripe/webhook/", views.webhook, name="webhook"),
    path("pricing/", views.pricing, name="pricing"),
    path("billing/", views.billing, name="billing"),
    path("billing/checkout/", views.checkout, name="checkout"),
    path("billing/plan/change/", views.change_plan, name="change_plan"),
    path("billing/plan/cancel/", views.cancel_plan, name="cancel_plan"),
    path("billing/plan/resume/", views.resume_plan, name="resume_plan"),
    path("billing/portal/", views.portal, name="portal"),
    path("billing/auto-top-up/", views.auto_top_up_settings, name="auto_top_up"),
    path("billing/history.csv", views.billing_csv, name="billing_csv"),
    path("billing/receipts/<str:receipt_number>/", views.receipt, name="receipt"),
    # Where Checkout returns by default (STRIPE_SUCCESS_URL / STRIPE_CANCEL_URL).
    path("credits/success/", views.checkout_success, name="success"),
    path("credits/cancel/", views.checkout_cancel, name="cancel"),
    path(
        "stripe/simulator/checkout/<str:session_id>/",
        simulator_views.checkout,
        name="simulator_checkout",
    ),
    path(
        "stripe/simulator/portal/<str:portal_id>/", simulator_views.portal, name="simulator_portal"
    ),
    path("stripe/simulator/renew/", simulator_views.renew, name="simulator_renew"),
]
