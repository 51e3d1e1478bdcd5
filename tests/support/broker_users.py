"""The deploy's broker users (deploy/rabbitmq/broker_users.py) on a private RabbitMQ
node: each user created with a password of the test's own, then the definitions
imported for one vhost, as `rabbitmqctl import_definitions` loads them anywhere."""
import importlib.util
import json

from services.common.config import REPO_ROOT


def broker_users_module():
    path = REPO_ROOT / "deploy" / "rabbitmq" / "broker_users.py"
    spec = importlib.util.spec_from_file_location("broker_users", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_broker_users(node, vhost, folder):
    """{user: its AMQP URI on `vhost`} once `node` has every user and its permissions."""
    users = broker_users_module()
    uris = {}
    for user in users.USERS:
        password = f"{user}-password"
        node.ctl("add_user", user, password)
        uris[user] = f"amqp://{user}:{password}@127.0.0.1:{node.port}/{vhost}"
    definitions_file = folder / f"definitions-{vhost}.json"
    definitions_file.write_text(json.dumps(users.definitions(vhost)))
    node.ctl("import_definitions", str(definitions_file))
    return uris
