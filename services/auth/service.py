"""auth: login links, and the sessions they open.

Entrypoints only: load the input, apply the rules of `domain`, persist with the
event in one transaction, dump the answer. No token or code is ever stored, logged
or put in an event; the login e-mail goes to notifications as a non-persistent RPC.
"""
import logging
import uuid

from nameko.dependency_providers import Config
from nameko.rpc import rpc
from sqlalchemy import select, update

from services.auth import domain
from services.auth.models import LoginRequest, Session, outbox
from services.auth.schemas import (
    LoginLinkRequestedSchema, RedeemedLoginSchema, RedeemLoginSchema, RequestLoginLinkSchema,
    SessionStartedSchema, SessionTokenSchema,
)
from services.common import clock
from services.common.db import Database
from services.common.envelope import EventType, event_catalog
from services.common.errors import EXPECTED_ERRORS, Unauthorized
from services.common.outbox import Outbox
from services.common.rpc import Pingable, TimedRpc
from services.common.schemas import IdentitySchema
from services.common.validation import load

log = logging.getLogger(__name__)

EVENTS = event_catalog(
    EventType("login_link_requested", LoginLinkRequestedSchema()),
    EventType("session_started", SessionStartedSchema()),
)

INVALID_LOGIN_LINK = "Este link de acesso é inválido ou expirou. Peça um novo."
SESSION_EXPIRED = "Sua sessão expirou. Entre novamente para continuar."

# Non-persistent delivery: the message carrying the link and code never reaches the
# broker's disk.
TRANSIENT = 1


class AuthService(Pingable):
    name = "auth"

    config = Config()
    db = Database("AUTH_DB_URL")
    events = Outbox("AUTH_DB_URL", outbox, EVENTS)
    subscriptions = TimedRpc("subscriptions")
    notifications = TimedRpc("notifications", delivery_mode=TRANSIENT)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def request_login_link(self, email, client_address=None):
        """Send a login e-mail if `email` has purchases; the answer never tells which."""
        payload = load(RequestLoginLinkSchema(), {"email": email, "client_address": client_address})
        email = payload["email"]
        if self.subscriptions.customer_exists(email):
            self._issue_login_link(email, payload["client_address"])
        return {"accepted": True}

    def _issue_login_link(self, email, client_address):
        now = clock.now()
        request_id = str(uuid.uuid4())
        token = domain.new_token()
        code = domain.new_code()
        expires_at = domain.login_request_expiry(now, int(self.config["LOGIN_LINK_TTL_SECONDS"]))
        with self.db.transaction() as session:
            session.add(LoginRequest(
                id=request_id,
                email=email,
                token_hash=domain.hash_token(token),
                code_hash=domain.hash_code(code, request_id),
                client_address=client_address,
                created_at=now,
                expires_at=expires_at,
                consumed_at=None,
                failed_code_attempts=0,
            ))
            self.events.record(session, "login_link_requested", None, {"request_id": request_id, "email": email})
        # Only after the commit: a link that works must exist before the buyer gets it.
        try:
            result = self.notifications.send_login_email(
                email=email,
                link=domain.login_link(self.config["PORTAL_BASE_URL"], token),
                code=code,
                expires_at=expires_at.isoformat(),
            )
        except Exception as error:  # any failure: the buyer may ask again; the answer stays the same
            # The class name only: a remote error's text could echo the arguments.
            log.warning("login e-mail for request %s not sent: %s", request_id, type(error).__name__)
            return
        if result.get("status") != "sent":
            log.warning("login e-mail for request %s not sent: %s", request_id, result.get("status"))

    @rpc(expected_exceptions=EXPECTED_ERRORS, sensitive_arguments=("token",))
    def redeem_login(self, token, user_agent=None, client_address=None):
        """Exchange a login link's token, once, for a new session and its token."""
        payload = load(RedeemLoginSchema(), {
            "token": token, "user_agent": user_agent, "client_address": client_address,
        })
        token_hash = domain.hash_token(payload["token"])
        now = clock.now()
        session_token = domain.new_token()
        with self.db.transaction() as session:
            # domain.login_request_usable as one statement: of concurrent redemptions
            # exactly one changes the row, so exactly one session is opened.
            consumed = session.execute(
                update(LoginRequest)
                .where(
                    LoginRequest.token_hash == token_hash,
                    LoginRequest.consumed_at.is_(None),
                    LoginRequest.expires_at > now,
                )
                .values(consumed_at=now)
                .execution_options(synchronize_session=False)
            )
            if consumed.rowcount != 1:
                raise Unauthorized(INVALID_LOGIN_LINK, code="invalid_login_link")
            email = session.scalar(select(LoginRequest.email).where(LoginRequest.token_hash == token_hash))
            # The buyer is in: older links for the same e-mail must not work any more.
            session.execute(
                update(LoginRequest)
                .where(LoginRequest.email == email, LoginRequest.consumed_at.is_(None))
                .values(consumed_at=now)
                .execution_options(synchronize_session=False)
            )
            new_session = Session(
                id=str(uuid.uuid4()),
                email=email,
                merchant_id=None,
                token_hash=domain.hash_token(session_token),
                user_agent=payload["user_agent"],
                client_address=payload["client_address"],
                created_at=now,
                last_seen_at=now,
                expires_at=domain.session_expiry(now, int(self.config["SESSION_ABSOLUTE_SECONDS"])),
                ended_at=None,
            )
            session.add(new_session)
            self.events.record(session, "session_started", None, {
                "session_id": new_session.id, "email": email, "merchant_id": None,
            })
        return RedeemedLoginSchema().dump({"session_token": session_token, "session": new_session})

    @rpc(expected_exceptions=EXPECTED_ERRORS, sensitive_arguments=("session_token",))
    def get_session(self, session_token):
        """The identity behind an active session token; counts as activity."""
        payload = load(SessionTokenSchema(), {"session_token": session_token})
        now = clock.now()
        with self.db.transaction() as session:
            found = session.scalar(
                select(Session).where(Session.token_hash == domain.hash_token(payload["session_token"]))
            )
            if found is None or not domain.session_active(
                found.ended_at, found.expires_at, found.last_seen_at, now,
                int(self.config["SESSION_IDLE_SECONDS"]),
            ):
                raise Unauthorized(SESSION_EXPIRED, code="session_expired")
            found.last_seen_at = now
        return IdentitySchema().dump({
            "session_id": found.id, "email": found.email, "merchant_id": found.merchant_id,
        })

    @rpc(expected_exceptions=EXPECTED_ERRORS, sensitive_arguments=("session_token",))
    def end_session(self, session_token):
        """Log out: the token stops working at once. Ending an ended session is fine."""
        payload = load(SessionTokenSchema(), {"session_token": session_token})
        with self.db.transaction() as session:
            session.execute(
                update(Session)
                .where(
                    Session.token_hash == domain.hash_token(payload["session_token"]),
                    Session.ended_at.is_(None),
                )
                .values(ended_at=clock.now())
                .execution_options(synchronize_session=False)
            )
        return {"ended": True}
