from django.urls import path

from . import views

urlpatterns = [
    path("modules/<str:code>/versions/<int:number>/annotations/",
         views.VersionAnnotationsView.as_view(), name="api-version-annotations"),
    path("annotations/<int:pk>/resolve/", views.ResolveAnnotationView.as_view(),
         name="api-annotation-resolve"),
    path("annotations/<int:pk>/reopen/", views.ReopenAnnotationView.as_view(),
         name="api-annotation-reopen"),
]
