"""Article import page for the article admin (filled in with the importer)."""


class ArticleImportAdminMixin:
    pass
