from django.urls import path, re_path

from . import views

app_name = "approvals"
urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("login/", views.ReviewLoginView.as_view(), name="login"),
    path("logout/", views.ReviewLogoutView.as_view(), name="logout"),
    path("metrics/", views.metrics_dashboard, name="metrics"),
    path("v/<int:version_id>/", views.review, name="review"),
    path("v/<int:version_id>/decide/", views.decide, name="decide"),
    path("v/<int:version_id>/withdraw/", views.withdraw, name="withdraw"),
    path("v/<int:version_id>/submit/", views.submit, name="submit"),
    path("v/<int:version_id>/comment/", views.comment, name="comment"),
    path("v/<int:version_id>/preview/<str:width>/", views.preview, name="preview"),
    path("m/<str:code>/history/", views.history, name="history"),
    re_path(r"^m/(?P<code>[A-Za-z0-9-]+)/export\.(?P<fmt>csv|json)$", views.export_history,
            name="export"),
]
