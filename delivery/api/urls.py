from django.urls import path

from . import views

urlpatterns = [
    path("assemblies/", views.AssemblyJobCreateView.as_view(), name="api-assembly-create"),
    path("assemblies/<uuid:job_id>/", views.AssemblyJobDetailView.as_view(),
         name="api-assembly-detail"),
    path("assemblies/<uuid:job_id>/results/", views.AssemblyJobResultsView.as_view(),
         name="api-assembly-results"),
    path("events/", views.EventView.as_view(), name="api-events"),
    path("webhooks/", views.WebhookListView.as_view(), name="api-webhooks"),
    path("webhooks/<int:pk>/", views.WebhookDetailView.as_view(), name="api-webhook-detail"),
]
