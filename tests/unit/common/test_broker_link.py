import pytest
from kombu.exceptions import OperationalError
from nameko.messaging import QueueConsumer

from services.common.broker_link import stop_without_broker, tolerate_broken_links, unless_link_broke


@pytest.mark.parametrize("error", [ConnectionResetError(104, "reset"), BrokenPipeError(), OperationalError("gone")])
def test_a_broken_link_while_answering_is_a_warning_not_a_dead_container(error, caplog):
    def answer(message):
        raise error

    assert unless_link_broke(answer)("message") is None
    assert "the broker delivers the message again" in caplog.text


def test_other_errors_and_results_pass_through():
    assert unless_link_broke(lambda value: value * 2)(21) == 42

    def broken(message):
        raise ValueError("a bug")

    with pytest.raises(ValueError):
        unless_link_broke(broken)("message")


def test_nameko_acknowledgements_are_wrapped_once():
    tolerate_broken_links()
    wrapped = QueueConsumer.ack_message
    tolerate_broken_links()
    assert QueueConsumer.ack_message is wrapped and wrapped.tolerates_broken_link
    assert QueueConsumer.requeue_message.tolerates_broken_link


def test_nameko_queue_consumer_is_made_stoppable_without_a_broker_once():
    stop_without_broker()
    stop, kill = QueueConsumer.stop, QueueConsumer.kill
    stop_without_broker()
    assert (QueueConsumer.stop, QueueConsumer.kill) == (stop, kill)
    assert QueueConsumer.stops_without_broker and QueueConsumer.linked is False
