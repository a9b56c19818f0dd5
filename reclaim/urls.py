"""Reclaim workbench URLs, included under /operator/reclaim/ (namespace operator:reclaim)."""

from django.urls import path

from . import views

app_name = "reclaim"

urlpatterns = [
    path("", views.decision_list, name="list"),
    path("<int:pk>/", views.decision_detail, name="detail"),
    path("<int:pk>/approve/", views.decision_approve, name="approve"),
    path("<int:pk>/reject/", views.decision_reject, name="reject"),
    path("<int:pk>/score/", views.decision_rescore, name="score"),
]
