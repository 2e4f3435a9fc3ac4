from django.urls import path

from . import feeds, views

app_name = "newsletter"
urlpatterns = [
    path("", views.home, name="home"),
    path("archive/<slug:newsletter>/", views.archive, name="archive"),
    path("archive/<slug:newsletter>/feed/", feeds.IssuesRssFeed(), name="feed"),
    path("archive/<slug:newsletter>/atom/", feeds.IssuesAtomFeed(), name="atom"),
    # The view-in-browser link frozen into every email: keep this name and URL shape.
    path("archive/<slug:newsletter>/<uuid:public_id>/", views.issue_page, name="issue"),
]
