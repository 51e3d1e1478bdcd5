"""Gettext catalogs of the pages a service draws, in pt-BR and English.

The message ids are the pt-BR texts themselves; `<locale dir>/<lang>/LC_MESSAGES/messages.po`
holds each other language. Babel reads the .po file when the service starts and
compiles it in memory, so there is no build step and no compiled file in the repository.
"""
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

DEFAULT_LOCALE = "pt_BR"
# The switch's value, as in `?lang=`, and the locale Babel formats with.
LANGUAGES = {"pt-BR": "pt_BR", "en": "en"}


def catalog_path(locale_dir, locale):
    return Path(locale_dir) / locale / "LC_MESSAGES" / "messages.po"


def load_translations(locale_dir, locale):
    """The compiled catalog of `locale` (none for pt-BR, the ids' own language)."""
    if locale == DEFAULT_LOCALE:
        return NullTranslations()
    with catalog_path(locale_dir, locale).open("rb") as po:
        catalog = read_po(po, locale=locale)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


def requested_locale(request, chosen=None):
    """`chosen` (a `LANGUAGES` key: the switch), else the best of `Accept-Language`, else pt-BR."""
    if request is None:
        return DEFAULT_LOCALE
    language = chosen if chosen in LANGUAGES else request.accept_languages.best_match(
        list(LANGUAGES), default="pt-BR")
    return LANGUAGES[language]


def N_(message):
    """Marks a text for the catalog, translated where it is shown."""
    return message
