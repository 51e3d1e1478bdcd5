"""auth: login links, sessions, merchants' SSO tickets and API keys.

Entrypoints only: load the input, apply the rules of `domain`, persist with the
event in one transaction, dump the answer. No token, code, nonce, ticket or key is
ever stored in clear, logged or put in an event or a persistent message: the login
e-mail goes to notifications as a non-persistent RPC, sent after the answer so that
its timing tells nothing; every RPC request and reply is non-persistent (services.common.rpc).
"""
import logging
import uuid
from datetime import timedelta

from nameko.dependency_providers import Config
from nameko.timer import timer
from sqlalchemy import delete, func, select, update

from services.auth import domain
from services.auth.dependencies import Background
from services.auth.models import ApiKey, LoginCodeFailure, LoginRequest, Session, SsoTicket, outbox
from services.auth.schemas import (
    ActiveSessionSchema, ApiKeyLookupSchema, ApiKeySchema, IssueSsoTicketSchema,
    LoginLinkRequestedSchema, LoginTokenSchema, MerchantIdSchema, RedeemedLoginSchema, RedeemLoginSchema,
    RedeemSsoTicketSchema, RequestLoginLinkSchema, SessionIdSchema, SessionStartedSchema, SessionTokenSchema,
    SsoTicketSchema,
)
from services.common import clock
from services.common.db import Database, lock_for_transaction
from services.common.envelope import EventType, event_catalog
from services.common.errors import EXPECTED_ERRORS, NotFound, RuleRefused, TooManyRequests, Unauthorized
from services.common.identity import owned_row, owned_rows
from services.common.outbox import Outbox
from services.common.callers import OPERATOR
from services.common.rpc import Pingable, TimedRpc, rpc
from services.common.schemas import IdentitySchema
from services.common.validation import load

log = logging.getLogger(__name__)

EVENTS = event_catalog(
    EventType("login_link_requested", LoginLinkRequestedSchema()),
    EventType("session_started", SessionStartedSchema()),
)

ACCEPTED = {"accepted": True}
INVALID_LOGIN_LINK = "Este link de acesso é inválido ou expirou. Peça um novo."
CODE_REQUIRED = "Para sua segurança, digite o código de 6 dígitos que enviamos no e-mail."
WRONG_CODE = "Código incorreto. Confira o e-mail e tente de novo."
CODE_ALONE_LOCKED = (
    "Muitas tentativas com código para este e-mail nas últimas 24 horas. "
    "Para entrar, use o link que enviamos no e-mail."
)
SESSION_EXPIRED = "Sua sessão expirou. Entre novamente para continuar."
INVALID_SSO_TICKET = "Este acesso expirou ou já foi usado. Volte à loja e entre de novo."
INVALID_API_KEY = "Invalid or revoked API key."

# Used login requests and SSO tickets are deleted this long after they were made
# (or after the rate-limit window, if that is longer).
RETENTION = timedelta(days=1)
PURGE_INTERVAL_SECONDS = 3600

IDENTITY = IdentitySchema()


def invalid_login_link():
    # One answer for unknown, used, expired and dead links: nothing to tell them apart.
    return Unauthorized(INVALID_LOGIN_LINK, code="invalid_login_link")


class AuthService(Pingable):
    name = "auth"

    config = Config()
    db = Database("AUTH_DB_URL")
    events = Outbox("AUTH_DB_URL", outbox, EVENTS)
    subscriptions = TimedRpc("subscriptions")
    # Non-persistent, as every RPC (services.common.rpc): the message carrying the
    # link and code never reaches the broker's disk.
    notifications = TimedRpc("notifications")
    background = Background()

    # Login links -----------------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED_ERRORS, sensitive_arguments=("nonce",))
    def request_login_link(self, email, client_address=None, nonce=None, merchant_id=None):
        """Record a login request and answer at once, the same for every e-mail;
        `merchant_id`: the merchant whose support asks for its buyer (the gateway has
        checked the buyer is one of its own), announced as the actor.

        Known and unknown e-mails take the same path here (a row, a background job);
        only the job, after the answer, asks subscriptions and sends, or not. Past a
        rate limit the answer is the same and nothing is recorded or sent.
        """
        payload = load(RequestLoginLinkSchema(), {"email": email, "client_address": client_address, "nonce": nonce,
                                                  "merchant_id": merchant_id})
        now = clock.now()
        request_id = str(uuid.uuid4())
        token = domain.new_token()
        code = domain.new_code()
        request = LoginRequest(
            id=request_id,
            email=payload["email"],
            token_hash=domain.hash_token(token),
            code_hash=domain.hash_code(code, request_id),
            nonce_hash=domain.hash_token(payload["nonce"]) if payload["nonce"] else None,
            client_address=payload["client_address"],
            created_at=now,
            expires_at=domain.login_request_expiry(now, int(self.config["LOGIN_LINK_TTL_SECONDS"])),
            consumed_at=None,
            failed_code_attempts=0,
        )
        with self.db.transaction() as session:
            if not self._within_rate_limits(session, request):
                log.info("login request over the rate limit: nothing recorded or sent")
                return ACCEPTED
            session.add(request)
        self.background(self._deliver_login_email, request, token, code, payload["merchant_id"])
        return ACCEPTED

    def _within_rate_limits(self, session, request):
        # Concurrent requests for the same e-mail or from the same address count one
        # after another, each seeing the rows of those before it.
        locks = [f"auth:login-requests-for:{request.email}"]
        if request.client_address:
            locks.append(f"auth:login-requests-from:{request.client_address}")
        lock_for_transaction(session, *locks)
        since = domain.rate_window_start(request.created_at, int(self.config["LOGIN_RATE_WINDOW_SECONDS"]))
        recent = select(func.count()).select_from(LoginRequest).where(LoginRequest.created_at > since)
        for_email = session.scalar(recent.where(LoginRequest.email == request.email))
        from_address = (
            session.scalar(recent.where(LoginRequest.client_address == request.client_address))
            if request.client_address else 0
        )
        return domain.login_request_allowed(
            for_email, from_address,
            int(self.config["LOGIN_RATE_LIMIT_PER_EMAIL"]), int(self.config["LOGIN_RATE_LIMIT_PER_ADDRESS"]),
        )

    def _deliver_login_email(self, request, token, code, merchant_id):
        """The background half of `request_login_link`: e-mail known buyers only."""
        try:
            if not self.subscriptions.customer_exists(request.email):
                return
            with self.db.transaction() as session:
                self.events.record(session, "login_link_requested", merchant_id, {
                    "request_id": request.id, "email": request.email, "actor": "merchant" if merchant_id else "buyer",
                })
            result = self.notifications.send_login_email(
                email=request.email,
                link=domain.login_link(self.config["PORTAL_BASE_URL"], token),
                code=code,
                expires_at=request.expires_at.isoformat(),
            )
        except Exception as error:  # any failure: the buyer may ask again
            # The class name only: a remote error's text could echo the arguments.
            log.warning("login e-mail for request %s not sent: %s", request.id, type(error).__name__)
            return
        if result.get("status") != "sent":
            log.warning("login e-mail for request %s not sent: %s", request.id, result.get("status"))

    @rpc(expected_exceptions=EXPECTED_ERRORS, sensitive_arguments=("token",))
    def describe_login_link(self, token):
        """What a link's page shows before anything is used: whose login it is, masked.
        Reads only; an unusable link gets the same refusal as at redemption."""
        payload = load(LoginTokenSchema(), {"token": token})
        with self.db.transaction() as session:
            request = session.scalar(
                self._usable_login_requests(clock.now())
                .where(LoginRequest.token_hash == domain.hash_token(payload["token"]))
            )
        if request is None:
            raise invalid_login_link()
        return {"email_hint": domain.masked_email(request.email)}

    @rpc(expected_exceptions=EXPECTED_ERRORS, sensitive_arguments=("token", "nonce", "code"))
    def redeem_login(self, token=None, nonce=None, code=None, user_agent=None, client_address=None):
        """Exchange a login request, once, for a new session and its token.

        Proof is the link's token plus the nonce of the browser that asked, or the
        6-digit code with the token or with that nonce (the buyer who reads mail on
        another device). Every code try counts; after MAX_CODE_ATTEMPTS the request
        is dead. The code with the nonce alone is refused for every request of an
        e-mail that had LOGIN_CODE_FAILURES_PER_EMAIL_PER_DAY wrong ones so typed in
        the last 24 hours.
        """
        payload = load(RedeemLoginSchema(), {
            "token": token, "nonce": nonce, "code": code,
            "user_agent": user_agent, "client_address": client_address,
        })
        now = clock.now()
        started = None
        with self.db.transaction() as session:
            request = self._login_request_to_redeem(session, payload, now)
            refusal = self._unproven(session, request, payload, now)
            if refusal is None:
                refusal, started = self._consume_login_request(session, request, payload, now)
        # Raised after the commit: a wrong code's counted try must stay counted.
        if refusal is not None:
            raise refusal
        return started

    def _login_request_to_redeem(self, session, payload, now):
        """The usable request the link's token names, or else the browser's nonce."""
        if payload["token"]:
            found_by = LoginRequest.token_hash == domain.hash_token(payload["token"])
        elif payload["nonce"]:
            found_by = LoginRequest.nonce_hash == domain.hash_token(payload["nonce"])
        else:
            return None
        return session.scalar(self._usable_login_requests(now).where(found_by))

    @staticmethod
    def _usable_login_requests(now):
        return select(LoginRequest).where(
            LoginRequest.consumed_at.is_(None),
            LoginRequest.expires_at > now,
            LoginRequest.failed_code_attempts < domain.MAX_CODE_ATTEMPTS,
        )

    def _unproven(self, session, request, payload, now):
        """The refusal when the caller has not proved it may use `request`, else None."""
        if request is None:
            return invalid_login_link()
        if (
            payload["token"] and payload["nonce"] and request.nonce_hash
            and domain.secret_matches(payload["nonce"], request.nonce_hash)
        ):
            return None
        if payload["code"] is None:
            return Unauthorized(CODE_REQUIRED, code="code_required", fields={"code": [CODE_REQUIRED]})
        # Counted per e-mail, with purchases or not (both have requests to guess at),
        # so this refusal tells nothing about the address.
        code_alone = not payload["token"]
        if code_alone and not self._code_alone_allowed(session, request.email, now):
            return TooManyRequests(
                CODE_ALONE_LOCKED, code="code_login_locked", fields={"code": [CODE_ALONE_LOCKED]},
            )
        # Count the try before checking it, in one statement, so that concurrent
        # guesses cannot get past the limit.
        counted = session.execute(
            update(LoginRequest)
            .where(
                LoginRequest.id == request.id,
                LoginRequest.consumed_at.is_(None),
                LoginRequest.failed_code_attempts < domain.MAX_CODE_ATTEMPTS,
            )
            .values(failed_code_attempts=LoginRequest.failed_code_attempts + 1)
            .execution_options(synchronize_session=False)
        )
        if counted.rowcount != 1:
            return invalid_login_link()
        if not domain.code_matches(payload["code"], request.id, request.code_hash):
            if code_alone:
                session.add(LoginCodeFailure(id=str(uuid.uuid4()), email=request.email, failed_at=now))
            return Unauthorized(WRONG_CODE, code="invalid_code", fields={"code": [WRONG_CODE]})
        return None

    def _code_alone_allowed(self, session, email, now):
        # Held until the wrong code is recorded: concurrent guesses count one after another.
        lock_for_transaction(session, f"auth:login-code-failures-of:{email}")
        failures = session.scalar(
            select(func.count()).select_from(LoginCodeFailure)
            .where(LoginCodeFailure.email == email, LoginCodeFailure.failed_at > domain.code_failure_window_start(now))
        )
        return domain.code_alone_allowed(failures, int(self.config["LOGIN_CODE_FAILURES_PER_EMAIL_PER_DAY"]))

    def _consume_login_request(self, session, request, payload, now):
        # domain.login_request_usable as one statement: of concurrent redemptions
        # exactly one changes the row, so exactly one session is opened.
        consumed = session.execute(
            update(LoginRequest)
            .where(
                LoginRequest.id == request.id,
                LoginRequest.consumed_at.is_(None),
                LoginRequest.expires_at > now,
            )
            .values(consumed_at=now)
            .execution_options(synchronize_session=False)
        )
        if consumed.rowcount != 1:
            return invalid_login_link(), None
        # The buyer is in: older links for the same e-mail must not work any more.
        session.execute(
            update(LoginRequest)
            .where(LoginRequest.email == request.email, LoginRequest.consumed_at.is_(None))
            .values(consumed_at=now)
            .execution_options(synchronize_session=False)
        )
        return None, self._open_session(session, request.email, None, None, payload, now)

    def _open_session(self, session, email, merchant_id, return_url, payload, now):
        """A new session with a fresh random token (never one the caller brought)."""
        session_token = domain.new_token()
        new_session = Session(
            id=str(uuid.uuid4()),
            email=email,
            merchant_id=merchant_id,
            return_url=return_url,
            token_hash=domain.hash_token(session_token),
            user_agent=payload["user_agent"],
            client_address=payload["client_address"],
            created_at=now,
            last_seen_at=now,
            expires_at=domain.session_expiry(now, int(self.config["SESSION_ABSOLUTE_SECONDS"])),
            ended_at=None,
        )
        session.add(new_session)
        self.events.record(session, "session_started", merchant_id, {
            "session_id": new_session.id, "email": email, "merchant_id": merchant_id,
        })
        return RedeemedLoginSchema().dump({"session_token": session_token, "session": new_session})

    # Sessions --------------------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED_ERRORS, sensitive_arguments=("session_token",))
    def get_session(self, session_token):
        """The identity behind an active session token; counts as activity (written down
        at most every `ACTIVITY_RESOLUTION` of the idle timeout)."""
        payload = load(SessionTokenSchema(), {"session_token": session_token})
        now = clock.now()
        with self.db.transaction() as session:
            found = session.scalar(
                select(Session).where(Session.token_hash == domain.hash_token(payload["session_token"]))
            )
            if found is None or not self._active(found, now):
                raise Unauthorized(SESSION_EXPIRED, code="session_expired")
            if domain.activity_worth_recording(found.last_seen_at, now, int(self.config["SESSION_IDLE_SECONDS"])):
                found.last_seen_at = now
        return IDENTITY.dump({
            "session_id": found.id, "email": found.email, "merchant_id": found.merchant_id,
            "return_url": found.return_url,
        })

    def _active(self, row, now):
        return domain.session_active(
            row.ended_at, row.expires_at, row.last_seen_at, now, int(self.config["SESSION_IDLE_SECONDS"]),
        )

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

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_sessions(self, identity):
        """The buyer's active sessions, newest first (a merchant-scoped session sees
        only that merchant's)."""
        identity = load(IDENTITY, identity)
        now = clock.now()
        with self.db.transaction() as session:
            rows = owned_rows(session, Session, identity, Session.created_at.desc())
        return ActiveSessionSchema(many=True).dump([
            {
                "id": row.id, "device": domain.device_label(row.user_agent),
                "client_address": row.client_address, "created_at": row.created_at,
                "last_seen_at": row.last_seen_at, "current": row.id == identity["session_id"],
                "merchant_id": row.merchant_id,
            }
            for row in rows if self._active(row, now)
        ])

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def end_session_by_id(self, identity, session_id):
        """End one of the buyer's sessions (another device); another buyer's is not found."""
        identity = load(IDENTITY, identity)
        payload = load(SessionIdSchema(), {"session_id": session_id})
        with self.db.transaction() as session:
            row = owned_row(session, Session, identity, "Sessão não encontrada.", id=payload["session_id"])
            if row.ended_at is None:
                row.ended_at = clock.now()
        return {"ended": True}

    # SSO ---------------------------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def issue_sso_ticket(self, merchant_id, email, return_url):
        """A one-time URL that logs `email` in, scoped to the merchant, for a few seconds."""
        payload = load(IssueSsoTicketSchema(), {"merchant_id": merchant_id, "email": email, "return_url": return_url})
        merchant_call = self.subscriptions.get_merchant.call_async(payload["merchant_id"])
        customer_call = self.subscriptions.customer_exists.call_async(
            payload["email"], merchant_id=payload["merchant_id"],
        )
        if not domain.return_url_allowed(payload["return_url"], merchant_call.result()["allowed_origins"]):
            raise RuleRefused(
                "return_url must be on one of the merchant's allowed origins.", code="return_url_not_allowed",
                fields={"return_url": ["Not on the merchant's allowed origins."]},
            )
        if not customer_call.result():
            raise RuleRefused(
                "This e-mail has no purchases from this merchant.", code="unknown_customer",
                fields={"email": ["No purchases from this merchant."]},
            )
        now = clock.now()
        ticket = domain.new_token()
        expires_at = now + timedelta(seconds=int(self.config["SSO_TICKET_TTL_SECONDS"]))
        with self.db.transaction() as session:
            session.add(SsoTicket(
                id=str(uuid.uuid4()), ticket_hash=domain.hash_token(ticket),
                merchant_id=payload["merchant_id"], email=payload["email"], return_url=payload["return_url"],
                created_at=now, expires_at=expires_at, consumed_at=None,
            ))
        return SsoTicketSchema().dump({
            "url": domain.sso_link(self.config["PORTAL_BASE_URL"], ticket), "expires_at": expires_at,
        })

    @rpc(expected_exceptions=EXPECTED_ERRORS, sensitive_arguments=("ticket",))
    def redeem_sso_ticket(self, ticket, user_agent=None, client_address=None):
        """Exchange an SSO ticket, once and before it expires, for a merchant-scoped session."""
        payload = load(RedeemSsoTicketSchema(), {
            "ticket": ticket, "user_agent": user_agent, "client_address": client_address,
        })
        ticket_hash = domain.hash_token(payload["ticket"])
        now = clock.now()
        with self.db.transaction() as session:
            consumed = session.execute(
                update(SsoTicket)
                .where(
                    SsoTicket.ticket_hash == ticket_hash,
                    SsoTicket.consumed_at.is_(None),
                    SsoTicket.expires_at > now,
                )
                .values(consumed_at=now)
                .execution_options(synchronize_session=False)
            )
            if consumed.rowcount != 1:
                raise Unauthorized(INVALID_SSO_TICKET, code="invalid_sso_ticket")
            found = session.scalar(select(SsoTicket).where(SsoTicket.ticket_hash == ticket_hash))
            return self._open_session(session, found.email, found.merchant_id, found.return_url, payload, now)

    # Merchant API keys -------------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED_ERRORS, callers=(OPERATOR,))
    def create_api_key(self, merchant_id):
        """A new key for an existing merchant. The answer is the only place the whole
        key ever appears; only its prefix and hash are kept."""
        payload = load(MerchantIdSchema(), {"merchant_id": merchant_id})
        self.subscriptions.get_merchant(payload["merchant_id"])  # NotFound for an unknown merchant
        prefix, key = domain.new_api_key()
        row = ApiKey(
            id=str(uuid.uuid4()), prefix=prefix, key_hash=domain.hash_token(key),
            merchant_id=payload["merchant_id"], created_at=clock.now(), revoked_at=None,
        )
        with self.db.transaction() as session:
            session.add(row)
        return {**ApiKeySchema().dump(row), "key": key}

    @rpc(expected_exceptions=EXPECTED_ERRORS, callers=(OPERATOR,))
    def revoke_api_key(self, prefix):
        """The key with this prefix stops working at once; revoking twice is fine."""
        payload = load(ApiKeyLookupSchema(), {"prefix": prefix})
        with self.db.transaction() as session:
            row = session.scalar(select(ApiKey).where(ApiKey.prefix == payload["prefix"]))
            if row is None:
                raise NotFound("No API key has this prefix.")
            if row.revoked_at is None:
                row.revoked_at = clock.now()
        return ApiKeySchema().dump(row)

    @rpc(expected_exceptions=EXPECTED_ERRORS, callers=(OPERATOR,))
    def list_api_keys(self, merchant_id=None):
        """Every key (prefixes, never keys), or one merchant's."""
        query = select(ApiKey).order_by(ApiKey.merchant_id, ApiKey.created_at)
        if merchant_id is not None:
            merchant_id = load(MerchantIdSchema(), {"merchant_id": merchant_id})["merchant_id"]
            query = query.where(ApiKey.merchant_id == merchant_id)
        with self.db.transaction() as session:
            return ApiKeySchema(many=True).dump(session.scalars(query).all())

    @rpc(expected_exceptions=EXPECTED_ERRORS, sensitive_arguments=("key",))
    def authenticate_api_key(self, key):
        """The merchant a valid, unrevoked key belongs to; anything else is Unauthorized."""
        prefix = domain.api_key_prefix(key) if isinstance(key, str) else None
        found = None
        if prefix is not None:
            with self.db.transaction() as session:
                found = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
        if found is None or found.revoked_at is not None or not domain.secret_matches(key, found.key_hash):
            raise Unauthorized(INVALID_API_KEY, code="invalid_api_key")
        return {"merchant_id": found.merchant_id}

    # Housekeeping --------------------------------------------------------------------

    @timer(interval=PURGE_INTERVAL_SECONDS)
    def purge_old_requests(self):
        """Delete login requests, SSO tickets and wrong codes no rule needs any more."""
        now = clock.now()
        window = timedelta(seconds=int(self.config["LOGIN_RATE_WINDOW_SECONDS"]))
        cutoff = now - max(RETENTION, window)
        with self.db.transaction() as session:
            session.execute(delete(LoginRequest).where(LoginRequest.expires_at < cutoff))
            session.execute(delete(SsoTicket).where(SsoTicket.expires_at < cutoff))
            session.execute(
                delete(LoginCodeFailure).where(LoginCodeFailure.failed_at <= domain.code_failure_window_start(now))
            )
