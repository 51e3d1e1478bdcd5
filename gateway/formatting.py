"""How buyers read money and time: BRL as `R$ 1.234,56`, dates as `dd/mm/aaaa` in the
buyer's timezone (São Paulo by default); everything is stored as cents and UTC."""
from datetime import datetime

from babel.dates import format_date, format_datetime
from babel.numbers import format_currency

DEFAULT_LOCALE = "pt_BR"
DEFAULT_TIMEZONE = "America/Sao_Paulo"


def money(cents, locale=DEFAULT_LOCALE):
    return format_currency(cents / 100, "BRL", locale=locale)


def _parsed(value):
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def date(value, locale=DEFAULT_LOCALE, timezone=DEFAULT_TIMEZONE):
    if not value:
        return ""
    moment = _parsed(value)
    if isinstance(moment, datetime):
        return format_datetime(moment, "dd/MM/yyyy", tzinfo=timezone, locale=locale)
    return format_date(moment, "dd/MM/yyyy", locale=locale)


def date_time(value, locale=DEFAULT_LOCALE, timezone=DEFAULT_TIMEZONE):
    if not value:
        return ""
    return format_datetime(_parsed(value), "dd/MM/yyyy HH:mm", tzinfo=timezone, locale=locale)
