"""Project-wide request and response rules (settings.MIDDLEWARE).

``ContentSecurityPolicyMiddleware``   sends settings.CONTENT_SECURITY_POLICY with every response: the pages load
                                      scripts and styles only from this site, so an injected inline script never
                                      runs. (Django 5.2 has no CSP support of its own; 6.0 adds it.)
``RejectControlCharactersMiddleware`` a URL whose path or query holds a control character (NUL, ESC, DEL, C1…)
                                      names nothing that exists: 404 before any view or query sees it. PostgreSQL
                                      refuses NUL in text, so such a value used to end in a 500.
"""

import re
from collections.abc import Callable

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse

# Unicode's category Cc: the C0 controls, DEL and the C1 controls.
CONTROL_CHARACTER = re.compile("[\x00-\x1f\x7f-\x9f]")


def has_control_character(text: str) -> bool:
    return CONTROL_CHARACTER.search(text) is not None


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        return response


class RejectControlCharactersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if has_control_character(request.path_info) or any(
            has_control_character(key) or any(has_control_character(value) for value in values)
            for key, values in request.GET.lists()
        ):
            raise Http404("There is no such page.")
        return self.get_response(request)
