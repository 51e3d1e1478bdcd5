"""Every text billing's card pages may show, the rules' problems included, is in their
English catalog, with the same placeholders."""
import re

from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from services.billing import pages
from services.common.config import REPO_ROOT
from services.common.i18n import catalog_path


def texts_of_the_card_pages():
    """What `make messages` extracts for billing, by the same mapping (its babel.cfg)."""
    with (REPO_ROOT / "services/billing/babel.cfg").open() as mapping:
        method_map, options_map = parse_mapping_cfg(mapping)
    keywords = {"_": None, "gettext": None, "N_": None}
    found = extract_from_dir(REPO_ROOT, method_map, options_map, keywords=keywords)
    return {message if isinstance(message, str) else message[0] for _, _, message, _, _ in found}


def test_every_text_of_the_card_pages_has_its_english_translation():
    texts = texts_of_the_card_pages()
    assert {"CPF ou CNPJ inválido: confira os números.", "Salvar cartão", "Informe um e-mail."} <= texts
    with catalog_path(pages.HERE / "locale", "en").open("rb") as po:
        catalog = read_po(po, locale="en")
    untranslated = sorted(text for text in texts if not (catalog.get(text) and catalog.get(text).string))
    assert not untranslated, "translate in services/billing/locale/en/LC_MESSAGES/messages.po: " + "; ".join(untranslated)
    for message in catalog:
        if message.id:
            assert re.findall(r"%\(\w+\)s", message.id) == re.findall(r"%\(\w+\)s", message.string), message.id
