from django.urls import path, re_path

from . import second_factor_views, views

app_name = "approvals"
urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("login/", views.ReviewLoginView.as_view(), name="login"),
    path("logout/", views.ReviewLogoutView.as_view(), name="logout"),
    path("approved/", views.approved, name="approved"),
    path("metrics/", views.metrics_dashboard, name="metrics"),
    path("second-factor/", second_factor_views.second_factor_page, name="second_factor"),
    path("v/<int:version_id>/", views.review, name="review"),
    path("v/<int:version_id>/decide/", views.decide, name="decide"),
    path("v/<int:version_id>/withdraw/", views.withdraw, name="withdraw"),
    path("v/<int:version_id>/submit/", views.submit, name="submit"),
    path("v/<int:version_id>/comment/", views.comment, name="comment"),
    path("v/<int:version_id>/annotate/", views.annotate, name="annotate"),
    path("v/<int:version_id>/annotations/<int:annotation_id>/resolve/", views.resolve_annotation,
         name="resolve_annotation"),
    path("v/<int:version_id>/annotations/<int:annotation_id>/reopen/", views.reopen_annotation,
         name="reopen_annotation"),
    path("v/<int:version_id>/preview/<str:width>/", views.preview, name="preview"),
    path("v/<int:version_id>/inspection.pdf", views.inspection_package, name="inspection"),
    path("v/<int:version_id>/form-2253/", views.record_form_2253, name="record_form_2253"),
    path("form-2253/", views.form_2253_due, name="form_2253_due"),
    path("m/<str:code>/history/", views.history, name="history"),
    re_path(r"^m/(?P<code>[A-Za-z0-9-]+)/export\.(?P<fmt>csv|json)$", views.export_history,
            name="export"),
]
