from django.urls import path

from . import views

app_name = "enrollments"

urlpatterns = [
    path("reports/pars/", views.pars_report_page, name="pars-report"),
    path("reports/pars/learners.csv", views.pars_learners_csv, name="pars-learners-csv"),
    path("reports/pars/missing.csv", views.pars_missing_csv, name="pars-missing-csv"),
    path("certificates/", views.certificate_list, name="certificate-list"),
    path("certificates/<int:pk>/", views.certificate_page, name="certificate"),
    path("certificates/<int:pk>/pdf/", views.certificate_pdf_download, name="certificate-pdf"),
]
