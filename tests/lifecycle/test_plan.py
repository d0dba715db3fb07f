"""The plan of a request, decided once when it is accepted: its kind and what follows its run."""

from __future__ import annotations

import pytest

from sluice.errors import Unprocessable
from sluice.lifecycle.plan import EMBEDDINGS, FORWARD_TARGET, Plan, plan_for
from sluice.workflows.model import ChainEntry, Workflow

CHAIN = (ChainEntry(provider="simulated", model="sim-1"),)
PLAIN = Workflow(name="plain", chain=CHAIN, event="new_chat")
HOOKED = Workflow(name="hooked", chain=CHAIN, webhook_url="https://backend.example/hook")
FORWARDED = Workflow(name="fwd", chain=CHAIN, webhook_url=FORWARD_TARGET)


def test_no_webhook_means_nothing_follows_the_run() -> None:
    plan = plan_for({}, PLAIN)
    assert plan == Plan() and not plan.follows_run and plan.kind == "chat"


def test_a_webhook_url_gets_the_result_whatever_it_is() -> None:
    plan = plan_for({"webhook_url": "https://b.example/w"}, PLAIN)
    assert plan.target == "https://b.example/w" and plan.follows_run
    assert plan.webhook_on("completed") and plan.webhook_on("failed") and plan.webhook_on("cancelled")
    assert plan.callback_event is None


def test_the_callback_step_and_explicit_subscriptions() -> None:
    plan = plan_for({"webhook_url": "https://b.example/w", "events": ["webhook_received"]}, PLAIN)
    # The callback step carries the result; a cancel is told as a lifecycle webhook (its callback is refused).
    assert plan.callback_event == "webhook_received" and plan.lifecycle == {"cancelled"}
    by_name = plan_for({"events": ["new_chat", "request.failed"], "webhook_url": "https://b.example/w"}, PLAIN)
    assert by_name.callback_event == "new_chat" and by_name.lifecycle == {"failed"}
    cancels = plan_for({"events": ["task.cancelled"], "webhook_url": "https://b.example/w"}, PLAIN)
    assert cancels.lifecycle == {"cancelled"} and not cancels.webhook_on("completed")


def test_the_workflow_webhook_and_the_forward_tunnel() -> None:
    assert plan_for({}, HOOKED).target == "https://backend.example/hook"
    assert plan_for({"webhook_url": "https://other.example"}, HOOKED).target == "https://other.example"
    assert plan_for({"webhook_url": "https://other.example"}, FORWARDED).target == FORWARD_TARGET


def test_delivery_method_none_sends_nothing_and_refuses_a_contradiction() -> None:
    assert plan_for({"delivery_method": "none"}, HOOKED) == Plan()
    with pytest.raises(Unprocessable, match="delivery_method 'none' sends no webhook"):
        plan_for({"delivery_method": "none", "webhook_url": "https://b.example/w"}, PLAIN)
    with pytest.raises(Unprocessable, match="delivery_method 'none'"):
        plan_for({"delivery_method": "none", "events": ["webhook_received"]}, PLAIN)


def test_delivery_method_webhook_needs_a_target() -> None:
    assert plan_for({"delivery_method": "webhook"}, HOOKED).target == "https://backend.example/hook"
    with pytest.raises(Unprocessable, match="needs a webhook_url"):
        plan_for({"delivery_method": "webhook"}, PLAIN)


def test_a_plan_survives_the_store() -> None:
    plan = plan_for({"webhook_url": "https://b.example/w", "events": ["request.completed", "webhook_received"]}, PLAIN)
    assert Plan.from_record(plan.to_record()) == plan
    assert Plan.from_record({}) == Plan()  # fields added later have defaults


def test_embeddings_go_to_their_caller_only() -> None:
    # The vectors are never recorded, so no webhook could carry them, whatever the workflow names.
    for workflow in (PLAIN, HOOKED, FORWARDED):
        plan = plan_for({"workflow": workflow.name, "input": ["x"]}, workflow, EMBEDDINGS)
        assert plan == Plan(kind=EMBEDDINGS) and not plan.follows_run
    assert Plan.from_record(Plan(kind=EMBEDDINGS).to_record()).kind == EMBEDDINGS
