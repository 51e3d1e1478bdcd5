"""Who sent a message, as the broker vouches for it: its AMQP `user_id`, which
RabbitMQ refuses unless it names the publishing connection's own user.

Which broker user may publish what is deploy/rabbitmq/broker_users.py's; this is what
the receiving side checks besides.
"""
import kombu

OPERATOR = "operator"  # portalctl's broker user


def broker_user(amqp_uri):
    """The user a connection to `amqp_uri` logs in as."""
    return kombu.Connection(amqp_uri).userid


def caller_allowed(caller, callers, own_user):
    """Whether a message `caller` (its `user_id`, None if it named none) sent may be
    acted on: any caller when `callers` is None; else one of `callers`, or the
    receiver's own user (a deployment where every process shares one user, as in
    development, has nothing to tell apart)."""
    return callers is None or (caller is not None and (caller in callers or caller == own_user))
