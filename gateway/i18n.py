"""The pages' languages: pt-BR by default, English by `Accept-Language` or the switch.

The message ids are the pt-BR texts themselves (templates use `_()`, Python code
`_()` or `N_()` for texts translated later); `gateway/locale/<lang>/LC_MESSAGES/messages.po`
holds each other language. Babel reads the .po file when the gateway starts and
compiles it in memory, so there is no build step and no compiled file in the repository.
`tests/unit/gateway/test_i18n.py` extracts every id and checks each one is translated.
"""
from pathlib import Path

from gateway import csrf
from services.common import i18n as catalogs
from services.common.i18n import DEFAULT_LOCALE, LANGUAGES, N_  # noqa: F401 (the pages' names)

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGE_COOKIE = "portal_lang"
LANGUAGE_COOKIE_MAX_AGE = 365 * 24 * 3600


def catalog_path(locale):
    return catalogs.catalog_path(LOCALE_DIR, locale)


TRANSLATIONS = {locale: catalogs.load_translations(LOCALE_DIR, locale) for locale in LANGUAGES.values()}


def chosen_language(request):
    """The switch's value (`?lang=`), else the cookie it left, else None."""
    for value in (request.args.get("lang"), request.cookies.get(LANGUAGE_COOKIE)):
        if value in LANGUAGES:
            return value
    return None


def locale_of(request):
    """The request's locale: the switch, else the best of `Accept-Language`, else pt-BR."""
    return catalogs.requested_locale(request, request and chosen_language(request))


def current_locale():
    request = csrf.current_request()
    if request is None:
        return DEFAULT_LOCALE
    if not hasattr(request, "locale"):
        request.locale = locale_of(request)
    return request.locale


def translations():
    """The catalog of the request being answered."""
    return TRANSLATIONS[current_locale()]


def gettext(message, **values):
    text = translations().gettext(message)
    return text % values if values else text


_ = gettext
