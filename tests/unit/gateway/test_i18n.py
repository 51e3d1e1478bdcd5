"""Every text of the pages is in the catalog, and each request gets its language."""
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from gateway import i18n
from services.common.config import REPO_ROOT
from services.common.formatting import date, money

METHOD_MAP = [("gateway/**.py", "python"), ("gateway/templates/**.html", "jinja2")]
OPTIONS = {"gateway/templates/**.html": {"extensions": "jinja2.ext.i18n"}}


def texts_of_the_pages():
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
    found = extract_from_dir(REPO_ROOT, METHOD_MAP, OPTIONS, keywords=keywords)
    return {message if isinstance(message, str) else message[0] for _, _, message, _, _ in found}


def test_every_text_of_the_pages_has_its_english_translation():
    texts = texts_of_the_pages()
    assert len(texts) > 150 and "Atualizar e pagar agora" in texts
    with i18n.catalog_path("en").open("rb") as po:
        catalog = read_po(po, locale="en")
    untranslated = sorted(text for text in texts if not (catalog.get(text) and catalog.get(text).string))
    assert not untranslated, "run `make messages` and translate: " + "; ".join(untranslated)


def request(headers=None, query=None):
    return Request(EnvironBuilder(headers=headers or {}, query_string=query).get_environ())


def test_pt_br_unless_the_browser_prefers_english_or_the_switch_says_otherwise():
    assert i18n.locale_of(request()) == "pt_BR"
    assert i18n.locale_of(request({"Accept-Language": "en-US,en;q=0.9"})) == "en"
    assert i18n.locale_of(request({"Accept-Language": "pt-BR,en;q=0.5"})) == "pt_BR"
    assert i18n.locale_of(request({"Accept-Language": "de-DE"})) == "pt_BR"
    assert i18n.locale_of(request({"Accept-Language": "en"}, query="lang=pt-BR")) == "pt_BR"
    assert i18n.locale_of(request({"Cookie": "portal_lang=en"})) == "en"
    assert i18n.locale_of(request({"Cookie": "portal_lang=xx"}, query="lang=fr")) == "pt_BR"


def test_the_english_catalog_translates_and_formats_in_english():
    english = i18n.TRANSLATIONS["en"]
    assert english.gettext("Atualizar e pagar agora") == "Update and pay now"
    assert english.gettext("Voltar para %(merchant)s") % {"merchant": "Acme"} == "Back to Acme"
    assert money(123456, locale="en") == "R$1,234.56"
    assert date("2026-11-27T02:00:00+00:00", locale="en") == "Nov 26, 2026"
