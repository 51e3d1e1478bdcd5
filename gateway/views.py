"""One view model per page, shared by the JSON API and the HTML pages.

Each function asks the services for what its page shows (independent calls in
parallel) and combines the answers into one dict; `buyer_api.py` answers it as JSON
and `pages.py` renders it. `rpc` is the gateway service (its RPC proxies).
"""
from services.common.errors import PortalError


def merchant_profile(rpc, merchant_id):
    """Name, support channels and branding of a merchant, or None if subscriptions cannot say."""
    try:
        merchant = rpc.subscriptions.get_merchant(merchant_id)
    except PortalError:
        return None
    return {
        "id": merchant["id"],
        "name": merchant.get("brand_name") or merchant["name"],
        "accent_color": merchant.get("accent_color"),
        "support": {
            "email": merchant.get("support_email"),
            "phone": merchant.get("support_phone"),
            "url": merchant.get("support_url"),
        },
    }


def orders(rpc, identity):
    return {"orders": rpc.billing.list_orders(identity)}


def order_detail(rpc, identity, code):
    """The order, with the support channels of the merchant who sold it."""
    order = rpc.billing.get_order(identity, code)
    return {"order": order, "merchant": merchant_profile(rpc, order["merchant"]["id"])}


def subscriptions(rpc, identity):
    return {"subscriptions": rpc.subscriptions.list_subscriptions(identity)}


def subscription_detail(rpc, identity, subscription_id):
    """The subscription (with what the buyer may do now and its next charge, as the
    subscriptions service says) and its invoice history: the orders of its cycles and
    changes, newest first."""
    subscription_call = rpc.subscriptions.get_subscription.call_async(identity, subscription_id)
    invoices_call = rpc.billing.list_orders.call_async(identity, subscription_id)
    subscription, invoices = subscription_call.result(), invoices_call.result()
    return {"subscription": subscription, "next_charge": subscription["next_charge"], "invoices": invoices}


def plan_options(rpc, identity, subscription_id):
    return rpc.subscriptions.plan_options(identity, subscription_id)


def activity(rpc, identity, subscription_id):
    return {"activity": rpc.subscriptions.activity(identity, subscription_id)}


def sessions(rpc, identity):
    return {"sessions": rpc.auth.list_sessions(identity)}
