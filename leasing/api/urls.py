"""Routes of the tenant API under `/api/v1/` (leasing side)."""

from django.urls import path

from . import views

listings = views.ListingViewSet
leases = views.LeaseViewSet

urlpatterns = [
    path("listings/", listings.as_view({"get": "list"}), name="listing-list"),
    path("listings/<int:pk>/", listings.as_view({"get": "retrieve"}), name="listing-detail"),
    path("lease-requests/", views.LeaseRequestView.as_view(), name="lease-request"),
    path("leases/", leases.as_view({"get": "list"}), name="lease-list"),
    path("leases/<int:pk>/", leases.as_view({"get": "retrieve"}), name="lease-detail"),
    path(
        "leases/<int:lease_id>/notices/",
        views.LeaseNoticesView.as_view(),
        name="lease-notices",
    ),
    path(
        "leases/<int:lease_id>/notices/<int:pk>/confirm-withdrawal/",
        views.ConfirmWithdrawalView.as_view(),
        name="notice-confirm-withdrawal",
    ),
]
