"""Which objects an event given to `/job` or `/run` may name: only the service's own inputs.

The event is classified by the supervisor's own parser (`supervisor.events`), so the control
plane and the job can never disagree on what an event names. An event the parser cannot read
is let through: the job then fails with the parser's reason, recorded like any failed job.
"""

from __future__ import annotations

from oscar.errors import ForbiddenError
from oscar.models.service import Service
from supervisor.config import FunctionConfig, StorageEntry
from supervisor.errors import EventError
from supervisor.events import out_of_scope, parse_event


def function_config(service: Service) -> FunctionConfig:
    """The parts of the supervisor's configuration that decide an event's scope."""
    providers = service.storage_providers.model_dump(mode="json", by_alias=True)
    return FunctionConfig(
        name=service.name,
        inputs=[StorageEntry(e.storage_provider, e.path.strip("/")) for e in service.input],
        storage_providers=providers,
        isolation_level=service.isolation_level,
        bucket_list=list(service.bucket_list),
    )


def check_event_scope(service: Service, body: bytes) -> None:
    """Raise `ForbiddenError` (403) when the event names an object outside the service's inputs.

    Blocks (parses the whole body): call it off the event loop.
    """
    config = function_config(service)
    try:
        event = parse_event(body, config)
    except EventError:
        return
    refused = out_of_scope(event, config)
    if refused:
        raise ForbiddenError(f"service '{service.name}': {refused}")
