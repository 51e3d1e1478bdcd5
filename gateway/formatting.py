"""How buyers read money and time, in the page's locale; the rules live in
services.common.formatting, which the e-mails share."""
from gateway.i18n import current_locale
from services.common import formatting


def money(cents):
    return formatting.money(cents, locale=current_locale())


def date(value):
    return formatting.date(value, locale=current_locale())


def date_time(value):
    return formatting.date_time(value, locale=current_locale())
