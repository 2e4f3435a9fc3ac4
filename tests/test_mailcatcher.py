"""The development mail catcher keeps every message it receives where a person can read it."""

import pytest
from django.core.mail import EmailMultiAlternatives, get_connection

from newsletter import mailcatcher
from newsletter.mailcatcher import FolderHandler


@pytest.fixture
def catcher(tmp_path, monkeypatch, smtp_servers):
    monkeypatch.setattr(mailcatcher, "MAIL_DIR", tmp_path)
    handler = smtp_servers(FolderHandler(tmp_path))
    return tmp_path, handler.port


def test_messages_sent_over_smtp_are_kept_as_eml_files(catcher):
    folder, port = catcher
    connection = get_connection("django.core.mail.backends.smtp.EmailBackend", host="127.0.0.1", port=port)
    for n in range(2):
        msg = EmailMultiAlternatives(
            f"Hello {n}", "plain body", "from@example.com", [f"to{n}@example.com"], connection=connection
        )
        msg.attach_alternative("<p>html body</p>", "text/html")
        msg.send()
    connection.close()

    files = sorted(folder.glob("*.eml"))
    assert len(files) == 2
    received = mailcatcher.recent_messages()
    assert [m["Subject"] for _, m in received] == ["Hello 1", "Hello 0"]  # newest first
    assert "X-Envelope-To: to0@example.com" in files[0].read_text()


def test_read_message_refuses_paths_outside_the_folder(catcher):
    assert mailcatcher.read_message("../../etc/passwd") is None
    assert mailcatcher.read_message("missing.eml") is None
