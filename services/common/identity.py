"""Who is asking, and the one rule every buyer query keeps.

Each buyer RPC receives the identity of the gateway's session (e-mail, merchant scope,
session id), never one taken from a request body. The owning service limits every
query to the rows that identity owns, so another buyer's row answers "not found",
exactly like a row that does not exist.
"""
import re

from sqlalchemy import select

from services.common.errors import NotFound
from services.common.i18n import N_

MAX_EMAIL_LENGTH = 254
MAX_LOCAL_PART_LENGTH = 64

# Deliberately strict: the address must be one a checkout could have accepted and
# an SMTP server will deliver to (dot-atom local part, a dotted host name).
_LOCAL_PART = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_DOMAIN_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_TOP_LEVEL_LABEL = re.compile(r"[a-z]{2,63}|xn--[a-z0-9-]{1,59}")


class InvalidEmail(ValueError):
    """The text is not an e-mail address a login link could be sent to."""


def normalize_email(raw):
    """The canonical form of a buyer's e-mail (trimmed, lower-case), or InvalidEmail.

    Every service keeps and compares addresses in this form, so the e-mail a buyer
    logs in with finds what the checkout registered under it.
    """
    if not isinstance(raw, str):
        raise InvalidEmail(N_("Informe um e-mail."))
    email = raw.strip().lower()
    if not email:
        raise InvalidEmail(N_("Informe um e-mail."))
    local, at, domain = email.rpartition("@")
    labels = domain.split(".")
    if (
        not at
        or len(email) > MAX_EMAIL_LENGTH
        or len(local) > MAX_LOCAL_PART_LENGTH
        or not _LOCAL_PART.fullmatch(local)
        or len(labels) < 2
        or not all(_DOMAIN_LABEL.fullmatch(label) for label in labels)
        or not _TOP_LEVEL_LABEL.fullmatch(labels[-1])
    ):
        raise InvalidEmail(N_("Informe um e-mail válido, como nome@exemplo.com."))
    return email


def owner_filters(identity):
    """Column filters limiting a query to what this buyer owns.

    Always the buyer's e-mail; also the merchant when the session is scoped to one
    (a merchant's SSO), so that session sees that merchant only. An identity without
    a valid e-mail raises InvalidEmail: no buyer query runs unfiltered.
    """
    filters = {"email": normalize_email(identity.get("email"))}
    if identity.get("merchant_id") is not None:
        filters["merchant_id"] = identity["merchant_id"]
    return filters


def owned_rows(session, model, identity, *order_by, **key):
    """Every row of `model` the buyer owns (those with `key`, if given), in `order_by` order."""
    query = select(model).filter_by(**key, **owner_filters(identity)).order_by(*order_by)
    return session.scalars(query).all()


def owned_row(session, model, identity, not_found, **key):
    """The row of `model` with `key` if the buyer owns it, else NotFound(`not_found`)."""
    row = session.scalars(select(model).filter_by(**key, **owner_filters(identity))).one_or_none()
    if row is None:
        raise NotFound(not_found)
    return row
