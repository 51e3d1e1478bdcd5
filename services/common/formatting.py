"""How buyers read money and time, on portal pages and in e-mails: BRL as `R$ 1.234,56`, dates as `dd/mm/aaaa` in the
buyer's timezone (São Paulo by default); everything is stored as cents and UTC."""
from datetime import date as calendar_date
from datetime import datetime
from decimal import Decimal

from babel.dates import format_date, format_datetime, get_timezone
from babel.numbers import format_currency

DEFAULT_LOCALE = "pt_BR"
DEFAULT_TIMEZONE = "America/Sao_Paulo"
# Other locales read dates the way Babel writes them there ("Dec 2, 2026").
DATE_PATTERNS = {DEFAULT_LOCALE: "dd/MM/yyyy"}
DATE_TIME_PATTERNS = {DEFAULT_LOCALE: "dd/MM/yyyy HH:mm"}


def money(cents, locale=DEFAULT_LOCALE):
    # Decimal, not float: cents stay exact however large the amount.
    return format_currency(Decimal(cents).scaleb(-2), "BRL", locale=locale)


def _parsed(value):
    if not isinstance(value, str):
        return value
    # A day with no time ("2026-05-07", a boleto's due date) is that day everywhere.
    return calendar_date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)


def date(value, locale=DEFAULT_LOCALE, timezone=DEFAULT_TIMEZONE):
    if not value:
        return ""
    moment = _parsed(value)
    if isinstance(moment, datetime):
        moment = moment.astimezone(get_timezone(timezone)).date()
    return format_date(moment, DATE_PATTERNS.get(locale, "medium"), locale=locale)


def date_time(value, locale=DEFAULT_LOCALE, timezone=DEFAULT_TIMEZONE):
    if not value:
        return ""
    return format_datetime(_parsed(value), DATE_TIME_PATTERNS.get(locale, "medium"), tzinfo=timezone, locale=locale)
