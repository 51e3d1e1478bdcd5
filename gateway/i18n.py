"""The pages' languages: pt-BR by default, English by `Accept-Language` or the switch.

The message ids are the pt-BR texts themselves (templates use `_()`, Python code
`_()` or `N_()` for texts translated later); `gateway/locale/<lang>/LC_MESSAGES/messages.po`
holds each other language. Babel reads the .po file when the gateway starts and
compiles it in memory, so there is no build step and no compiled file in the repository.
`tests/unit/gateway/test_i18n.py` extracts every id and checks each one is translated.
"""
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from gateway import csrf

LOCALE_DIR = Path(__file__).parent / "locale"
DEFAULT_LOCALE = "pt_BR"
# The switch's value, as in `?lang=` and the cookie, and the locale Babel formats with.
LANGUAGES = {"pt-BR": "pt_BR", "en": "en"}
LANGUAGE_COOKIE = "portal_lang"
LANGUAGE_COOKIE_MAX_AGE = 365 * 24 * 3600


def catalog_path(locale):
    return LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"


def _load(locale):
    if locale == DEFAULT_LOCALE:
        return NullTranslations()
    with catalog_path(locale).open("rb") as po:
        catalog = read_po(po, locale=locale)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


TRANSLATIONS = {locale: _load(locale) for locale in LANGUAGES.values()}


def chosen_language(request):
    """The switch's value (`?lang=`), else the cookie it left, else None."""
    for value in (request.args.get("lang"), request.cookies.get(LANGUAGE_COOKIE)):
        if value in LANGUAGES:
            return value
    return None


def locale_of(request):
    """The request's locale: the switch, else the best of `Accept-Language`, else pt-BR."""
    if request is None:
        return DEFAULT_LOCALE
    language = chosen_language(request) or request.accept_languages.best_match(list(LANGUAGES), default="pt-BR")
    return LANGUAGES[language]


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


def N_(message):
    """Marks a text for the catalog, translated where it is shown."""
    return message


_ = gettext
