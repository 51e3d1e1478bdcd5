"""How buyers read money and time; the rules live in services.common.formatting, which
the e-mails share."""
from services.common.formatting import date, date_time, money  # noqa: F401
