"""The agent's HTTP side, wired once for ``pgradar run`` and ``pgradar demo``.

/metrics (statements, tables, indexes and the custom queries), /problems, the
status page and the probes, with /metrics rendered again in the background
after every scheduled job rather than on each scrape.
"""

from __future__ import annotations

from pgradar.agent.runtime.agent import Agent
from pgradar.agent.settings.config import Config
from pgradar.exporters.http import AgentHTTPServer
from pgradar.exporters.prometheus import registry_for
from pgradar.exporters.report import document, render_json
from pgradar.exporters.status import status_route
from pgradar.exporters.webconfig import WebConfig


def serve(
    agent: Agent, config: Config, web: WebConfig | None = None, page_refresh_s: int | None = None
) -> AgentHTTPServer:
    """Start the agent and its HTTP server on ``config.listen``; OSError when the address cannot be bound.

    ``page_refresh_s`` overrides how often the status page reloads itself.
    The caller stops both: ``server.stop()``, then ``agent.stop()``.
    """
    registry = registry_for(
        agent.state, config.top_statements, config.top_tables, config.top_indexes, config.relation_series
    )
    if agent.custom:
        from pgradar.exporters.custom import CustomCollector

        registry.register(CustomCollector(agent.custom.values()))
    http = AgentHTTPServer(config.listen.host, config.listen.port, registry, agent.healthy, agent.ready, web)
    http.routes["/problems"] = lambda query, accept: (
        200,
        "application/json",
        render_json(document(agent.state, text_policy=config.statement_text)).encode(),
    )
    page = {} if page_refresh_s is None else {"refresh_s": page_refresh_s}
    http.routes["/"] = status_route(agent.state, text_policy=config.statement_text, **page)
    # Every job changes what /metrics shows: render then, not on each scrape.
    agent.on_change(http.render_in_background())
    agent.start()
    http.start()
    return http
