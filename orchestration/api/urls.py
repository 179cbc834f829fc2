from django.urls import path

from . import views

urlpatterns = [
    path("enrollments/", views.EnrollView.as_view(), name="api-enrollments"),
    path("due/", views.DueQueueView.as_view(), name="api-due"),
    path("due/<int:pk>/ack/", views.AckView.as_view(), name="api-due-ack"),
    path("signals/", views.SignalView.as_view(), name="api-signals"),
]
