"""DEBUG-only pages that show what the local mail catcher received."""

from django.http import Http404, HttpResponse
from django.shortcuts import render

from .mailcatcher import read_message, recent_messages


def inbox(request):
    return render(request, "site/devmail.html", {"messages_": recent_messages()})


def message(request, name: str):
    msg = read_message(name)
    if msg is None:
        raise Http404
    part = request.GET.get("part", "html")
    body = msg.get_body(preferencelist=("html",) if part == "html" else ("plain",))
    if part == "source":
        return HttpResponse(msg.as_bytes(), content_type="text/plain; charset=utf-8")
    if body is None:
        raise Http404
    content_type = "text/html" if part == "html" else "text/plain"
    return HttpResponse(body.get_content(), content_type=f"{content_type}; charset=utf-8")
