"""Load for the fault tests, made the way the portal's clients make it: buyers logged
in from their e-mail, plan changes as quote → confirm over the gateway's HTTP, each
POST with its own `Idempotency-Key`, and — for a client that retries — the same POST
again, with the same key, after a 503, a 409 `request_in_progress` or no answer."""
import time
import uuid

import eventlet
import requests

from support.portal_client import log_in, register_subscriptions

BASIC = ("acme-basico-mensal", 1, 2990)
PREMIUM = "acme-premium-mensal"
# What a client repeats as it is: no answer in time, or the first attempt still running.
RETRIED_STATUSES = {502, 503}
RETRIED_CONFLICTS = {"request_in_progress", "concurrent_change"}
RETRY_PAUSE_SECONDS = 0.5
# What each fault scenario counted, printed again in the run's summary.
COUNTS = []


def report(scenario, **counts):
    line = f"{scenario}: " + ", ".join(f"{name}={value}" for name, value in counts.items())
    print(line)
    COUNTS.append(line)


class Outcome:
    def __init__(self, subscription_id):
        self.subscription_id = subscription_id
        self.quote = None
        self.change = None
        self.retries = 0
        self.failure = None

    @property
    def succeeded(self):
        return self.change is not None


def buyers_with_subscriptions(fleet, rpc, buyers, each):
    """`buyers` new buyers logged in, each with `each` monthly Básico subscriptions:
    [(session, subscription_id)]."""
    found = []
    for _ in range(buyers):
        email = f"faults-{uuid.uuid4().hex[:10]}@example.com"
        ids = register_subscriptions(rpc, email, each, *BASIC)
        session = log_in(fleet, email)[0]
        found += [(session, subscription_id) for subscription_id in ids]
    return found


def client_of(session):
    """A client of its own (one connection pool per worker) with `session`'s login."""
    client = requests.Session()
    client.cookies.update(session.cookies)
    client.headers.update(session.headers)
    return client


def retried(answer):
    if answer.status_code == 409:
        return answer.json()["error"]["code"] in RETRIED_CONFLICTS
    return answer.status_code in RETRIED_STATUSES


def post(client, url, body, key, timeout, retry_until):
    """POST with an Idempotency-Key: (answer or None, retries, what went wrong last).
    A client that retries (`retry_until`, a monotonic deadline) repeats it as it is;
    one that does not (`retry_until=None`) takes the first answer."""
    retries = 0
    while True:
        try:
            answer = client.post(url, json=body, headers={"Idempotency-Key": key}, timeout=timeout)
            if not retried(answer):
                return answer, retries, None
            problem = f"{answer.status_code} {answer.text[:200]}"
        except requests.RequestException as error:
            answer, problem = None, repr(error)
        if retry_until is None or time.monotonic() > retry_until:
            return answer, retries, problem
        retries += 1
        eventlet.sleep(RETRY_PAUSE_SECONDS)


def change_plan(fleet, session, subscription_id, timeout, retry_for=None, to_offer=PREMIUM):
    """One plan change, quote then confirmation; its Outcome."""
    outcome = Outcome(subscription_id)
    client = client_of(session)
    base = f"{fleet.gateway_url}/api/v1/me/subscriptions/{subscription_id}/plan-change"
    retry_until = None if retry_for is None else time.monotonic() + retry_for
    key = uuid.uuid4().hex
    try:
        quoted, retries, problem = post(
            client, f"{base}/quote", {"offer_id": to_offer}, f"quote-{key}", timeout, retry_until)
        outcome.retries += retries
        if quoted is None or quoted.status_code != 201:
            outcome.failure = f"quote: {problem or quoted.text[:200]}"
            return outcome
        outcome.quote = quoted.json()["quote"]
        body = {"quote_id": outcome.quote["quote_id"], "installments": 1}
        changed, retries, problem = post(client, base, body, f"change-{key}", timeout, retry_until)
        outcome.retries += retries
        if changed is None or changed.status_code != 200:
            outcome.failure = f"change: {problem or changed.text[:200]}"
            return outcome
        outcome.change = changed.json()
        return outcome
    finally:
        client.close()


def run_concurrently(work, items, concurrency):
    """`work(item)` for every item, `concurrency` at a time; the results in order."""
    pool = eventlet.GreenPool(concurrency)
    return list(pool.imap(work, items))
