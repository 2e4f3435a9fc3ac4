from django.urls import path

from . import views

app_name = "newsletter"
urlpatterns = [
    path("archive/<slug:newsletter>/<uuid:public_id>/", views.issue_page, name="issue"),
]
