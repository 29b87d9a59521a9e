#!/usr/bin/env python3
"""Build the demo operations database bundled with mcpserve (``src/mcpserve/demo/data/demo.sqlite``).

The output is deterministic: every timestamp derives from fixed constants and every "random" choice
comes from a seeded generator, so rebuilding with the same SQLite version yields identical bytes.
The database uses journal_mode DELETE (never WAL, which would need side files next to a read-only,
packaged file) and is VACUUMed so it ships compact.

Usage: ``python scripts/build_demo_db.py [--output PATH]``
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "src" / "mcpserve" / "demo" / "data" / "demo.sqlite"
SEED = 20260302
WINDOW_START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
WINDOW_DAYS = 52  # staging releases land between 5 January and 26 February 2026
SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE services (
    name            TEXT PRIMARY KEY,
    team            TEXT NOT NULL,
    tier            INTEGER NOT NULL CHECK (tier BETWEEN 1 AND 3),
    repository      TEXT NOT NULL,
    language        TEXT NOT NULL,
    on_call_channel TEXT NOT NULL,
    slo_target      REAL NOT NULL,
    description     TEXT NOT NULL
);
CREATE TABLE deployments (
    id          INTEGER PRIMARY KEY,
    service     TEXT NOT NULL REFERENCES services(name),
    version     TEXT NOT NULL,
    environment TEXT NOT NULL CHECK (environment IN ('staging', 'production')),
    status      TEXT NOT NULL CHECK (status IN ('succeeded', 'failed', 'rolled_back', 'in_progress')),
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    deployed_by TEXT NOT NULL,
    commit_sha  TEXT NOT NULL,
    notes       TEXT
);
CREATE INDEX deployments_by_service ON deployments(service, environment, started_at);
CREATE TABLE incidents (
    id           INTEGER PRIMARY KEY,
    service      TEXT NOT NULL REFERENCES services(name),
    severity     TEXT NOT NULL CHECK (severity IN ('sev1', 'sev2', 'sev3', 'sev4')),
    title        TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('open', 'mitigated', 'resolved')),
    opened_at    TEXT NOT NULL,
    mitigated_at TEXT,
    resolved_at  TEXT,
    commander    TEXT NOT NULL,
    summary      TEXT NOT NULL,
    runbook      TEXT
);
CREATE INDEX incidents_by_service ON incidents(service, status);
"""


@dataclass(frozen=True)
class Service:
    name: str
    team: str
    tier: int
    language: str
    slo_target: float
    description: str
    first_version: tuple[int, int, int]
    releases: int
    engineers: tuple[str, ...]


SERVICES = (
    Service("gateway", "platform", 1, "Go", 99.99,
            "Edge API gateway: TLS termination, routing, rate limiting and request authentication for "
            "every public endpoint.", (4, 8, 0), 4, ("mkowalski", "tfischer")),
    Service("auth-service", "identity", 1, "Go", 99.99,
            "Issues and validates session tokens and OAuth access tokens; owns API keys for partners.",
            (3, 2, 0), 4, ("priya.raman", "jlee")),
    Service("checkout-api", "commerce", 1, "Python", 99.95,
            "Cart, pricing and order placement API used by web and mobile checkout.",
            (2, 12, 0), 6, ("alice.nguyen", "bgarcia", "omar.haddad")),
    Service("payments", "payments", 1, "Java", 99.95,
            "Payment authorisation and capture against card processors; writes the payments ledger in "
            "PostgreSQL.", (5, 3, 0), 5, ("dmitri.v", "sophie.martin")),
    Service("inventory", "commerce", 2, "Python", 99.9,
            "Stock levels and reservations per warehouse; reservations are cached in Redis.",
            (1, 19, 0), 4, ("bgarcia", "kenji.sato")),
    Service("search", "discovery", 2, "Java", 99.9,
            "Product search and autocomplete backed by an OpenSearch cluster.",
            (7, 1, 0), 4, ("lucia.romero", "hpatel")),
    Service("recommendations", "discovery", 3, "Python", 99.5,
            "Personalised product recommendations; model scores are precomputed nightly and served "
            "from Redis.", (0, 31, 0), 3, ("hpatel",)),
    Service("notifications", "engagement", 2, "TypeScript", 99.9,
            "Email, SMS and push notifications fed by the order-events queue.",
            (2, 4, 0), 4, ("emma.white", "rahul.mehta")),
    Service("user-profile", "identity", 2, "Go", 99.9,
            "Customer profiles, addresses and preferences.", (1, 7, 0), 3, ("jlee",)),
    Service("reporting", "data", 3, "Python", 99.0,
            "Nightly finance and operations reports built from a PostgreSQL read replica.",
            (0, 9, 0), 3, ("nina.berg",)),
)  # fmt: skip

# Deployment outcomes that differ from "succeeded"; keyed by (service, release index, environment).
# A failed staging deployment means that release never reached production.
OUTCOMES: dict[tuple[str, int, str], str] = {
    ("checkout-api", 2, "production"): "rolled_back",
    ("checkout-api", 4, "staging"): "failed",
    ("payments", 1, "production"): "failed",
    ("payments", 3, "production"): "rolled_back",
    ("search", 2, "staging"): "failed",
    ("notifications", 3, "production"): "rolled_back",
    ("inventory", 1, "production"): "rolled_back",
    ("gateway", 3, "production"): "in_progress",
    ("auth-service", 2, "staging"): "failed",
    ("reporting", 1, "production"): "failed",
    ("user-profile", 2, "production"): "in_progress",
}
# Deployments still running when the dataset was captured start shortly before it.
CAPTURED_AT = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)
IN_PROGRESS_STARTS = {
    "gateway": CAPTURED_AT - timedelta(minutes=14),
    "user-profile": CAPTURED_AT - timedelta(minutes=6),
}
NOTES = {
    "failed": "Health checks never passed; deploy aborted automatically and the previous version kept "
    "serving.",
    "rolled_back": "Error rate rose after the rollout; rolled back to the previous version.",
}


@dataclass(frozen=True)
class Incident:
    service: str
    severity: str
    title: str
    status: str
    opened: str | tuple[int, int]  # ISO timestamp, or (release index, minutes after production deploy)
    minutes_to_mitigate: int | None  # ignored for release-caused incidents: the rollback mitigates
    minutes_to_resolve: int | None
    commander: str
    summary: str
    runbook: str | None


INCIDENTS = (
    Incident("gateway", "sev2", "Intermittent 502s from gateway after upstream keep-alive change", "resolved",
             "2026-01-08T14:22:00Z", 25, 190, "mkowalski",
             "Upstream idle timeout was shorter than the gateway keep-alive; stale connections produced "
             "502s for 0.4% of requests. Aligned timeouts.", "high-latency-triage.md"),
    Incident("payments", "sev1", "Card authorisations failing for Visa via primary processor", "resolved",
             "2026-01-12T09:41:00Z", 18, 240, "sophie.martin",
             "Processor rotated its TLS intermediate; our pinned bundle rejected it. Failed over to the "
             "secondary processor, then updated the CA bundle.", "tls-certificate-renewal.md"),
    Incident("checkout-api", "sev3", "Slow cart page for large carts", "resolved",
             "2026-01-14T11:05:00Z", 120, 2880, "alice.nguyen",
             "N+1 price lookups for carts with more than 50 lines; batched the pricing calls.",
             "high-latency-triage.md"),
    Incident("inventory", "sev2", "Reservation errors during Redis memory pressure", "resolved",
             "2026-01-16T19:30:00Z", 35, 600, "kenji.sato",
             "Redis reached maxmemory with noeviction; SETs for new reservations failed. Expired stale "
             "keys and raised maxmemory; added TTLs to reservation keys.", "redis-memory-pressure.md"),
    Incident("search", "sev3", "Autocomplete p99 above 800 ms", "resolved",
             "2026-01-20T15:12:00Z", 45, 300, "lucia.romero",
             "A shard relocation during peak traffic saturated two OpenSearch data nodes.",
             "high-latency-triage.md"),
    Incident("notifications", "sev3", "Order confirmation emails delayed up to 40 minutes", "resolved",
             "2026-01-21T08:50:00Z", 30, 150, "emma.white",
             "Email provider throttled us after a bulk marketing send shared the same sender pool.",
             "queue-backlog.md"),
    Incident("checkout-api", "sev2", "5xx spike on POST /orders after checkout-api release", "resolved",
             (2, 11), None, 95, "bgarcia",
             "New order-validation code raised on legacy gift-card payloads. Rolled back, added a "
             "regression test and re-released.", "deploy-rollback.md"),
    Incident("auth-service", "sev2", "Partner API key leaked in public repository", "resolved",
             "2026-01-27T13:02:00Z", 22, 380, "priya.raman",
             "A partner committed a live key to a public repository. Revoked and rotated the key, "
             "audited its usage for the exposure window.", "rotating-api-keys.md"),
    Incident("payments", "sev2", "Ledger writes slow during primary database failover", "resolved",
             "2026-01-29T03:14:00Z", 12, 70, "dmitri.v",
             "Primary PostgreSQL host lost its disk; automatic failover took 4 minutes and connection "
             "pools held dead connections for another 6.", "database-failover.md"),
    Incident("inventory", "sev3", "Stock counts wrong after inventory release", "resolved",
             (1, 30), None, 200, "bgarcia",
             "Migration defaulted a warehouse flag incorrectly; rolled back and backfilled.",
             "deploy-rollback.md"),
    Incident("reporting", "sev4", "Daily revenue report missing EU orders", "resolved",
             "2026-02-03T07:10:00Z", None, 1440, "nina.berg",
             "Read replica lagged behind during the nightly job; report re-run after catch-up.",
             "database-failover.md"),
    Incident("gateway", "sev1", "Expired TLS certificate on api.acme.example", "resolved",
             "2026-02-05T00:03:00Z", 21, 65, "tfischer",
             "Renewal job had failed silently for 3 weeks after a DNS-01 credential change. Issued "
             "the certificate manually, fixed the credential, added expiry alerting at 21 days.",
             "tls-certificate-renewal.md"),
    Incident("user-profile", "sev4", "Address autocomplete provider returning stale data", "resolved",
             "2026-02-06T10:00:00Z", None, 4320, "jlee",
             "Third-party provider issue; tracked until their fix shipped.", None),
    Incident("payments", "sev2", "Refund capture errors after payments release", "resolved",
             (3, 7), None, 120, "sophie.martin",
             "Serialisation change broke refunds in currencies without minor units (JPY). Rolled back.",
             "deploy-rollback.md"),
    Incident("recommendations", "sev4", "Recommendations fell back to bestsellers for 2 hours", "resolved",
             "2026-02-10T05:20:00Z", 60, 130, "hpatel",
             "Nightly score load evicted by Redis maxmemory policy; loaded in smaller batches.",
             "redis-memory-pressure.md"),
    Incident("search", "sev3", "Search indexing lag above 30 minutes", "resolved",
             "2026-02-12T16:45:00Z", 40, 210, "hpatel",
             "Indexer consumer group rebalanced repeatedly because of a too-short session timeout.",
             "queue-backlog.md"),
    Incident("notifications", "sev2", "Push notifications not sent after notifications release", "resolved",
             (3, 16), None, 85, "rahul.mehta",
             "APNs client upgrade changed the token format; rolled back.", "deploy-rollback.md"),
    Incident("checkout-api", "sev3", "Checkout p99 latency regression from pricing cache misses", "resolved",
             "2026-02-18T12:30:00Z", 50, 400, "omar.haddad",
             "Pricing cache keys changed shape; cold cache for 6 hours. Warmed the cache.",
             "high-latency-triage.md"),
    Incident("auth-service", "sev3", "Token validation latency during key rotation", "resolved",
             "2026-02-20T09:15:00Z", 20, 90, "jlee",
             "JWKS cache refreshed synchronously on every unknown kid; made refresh single-flight.",
             "rotating-api-keys.md"),
    Incident("payments", "sev3", "Secondary processor certificate expires in 10 days", "mitigated",
             "2026-02-23T10:00:00Z", 180, None, "dmitri.v",
             "Renewed certificate requested from the processor; temporary exception approved.",
             "tls-certificate-renewal.md"),
    Incident("inventory", "sev3", "Redis used_memory at 88% of maxmemory on inventory cache", "mitigated",
             "2026-02-25T14:40:00Z", 55, None, "kenji.sato",
             "Large reservation hashes from a bulk import; trimmed them, capacity increase pending.",
             "redis-memory-pressure.md"),
    Incident("checkout-api", "sev2", "Elevated p99 latency on GET /cart", "open",
             "2026-03-02T14:52:00Z", None, None, "alice.nguyen",
             "p99 rose from 320 ms to 1.4 s at 14:45 UTC; error rate normal. Investigating the pricing "
             "dependency and database connection pool saturation.", "high-latency-triage.md"),
    Incident("notifications", "sev3", "order-events queue backlog growing", "open",
             "2026-03-02T15:20:00Z", None, None, "emma.white",
             "Backlog at 120k messages and rising; consumers healthy but SMS provider responses slow.",
             "queue-backlog.md"),
    Incident("search", "sev4", "Synonym dictionary out of date in autocomplete", "open",
             "2026-03-01T11:00:00Z", None, None, "lucia.romero",
             "Merchandising reported missing synonyms; dictionary sync job last succeeded 9 days ago.",
             None),
    Incident("gateway", "sev3", "Rate limiter rejecting bursts from mobile app", "open",
             "2026-03-02T13:05:00Z", None, None, "mkowalski",
             "Mobile app 7.2 retries aggressively; 429s up 6x. Deciding between a temporary limit "
             "increase and an app-side fix.", "incident-response.md"),
)  # fmt: skip


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _working_time(rng: random.Random, day: datetime) -> datetime:
    """A time on a weekday between 09:00 and 16:59 UTC, on or after ``day``."""
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day.replace(hour=rng.randint(9, 16), minute=rng.randint(0, 59), second=0, microsecond=0)


def _commit_sha(service: str, version: str) -> str:
    return hashlib.sha1(f"{service}@{version}".encode(), usedforsecurity=False).hexdigest()


def _versions(service: Service, rng: random.Random) -> Iterator[str]:
    major, minor, patch = service.first_version
    for _ in range(service.releases):
        yield f"{major}.{minor}.{patch}"
        if rng.random() < 0.4:
            minor, patch = minor + 1, 0
        else:
            patch += 1


def _service_deployments(service: Service, rng: random.Random) -> Iterator[dict[str, object]]:
    """Staging then production deployments for each release of one service."""
    span = WINDOW_DAYS / service.releases
    for index, version in enumerate(_versions(service, rng)):
        day = WINDOW_START + timedelta(days=index * span + rng.uniform(0, span * 0.9))
        staging_start = _working_time(rng, day)
        for environment in ("staging", "production"):
            status = OUTCOMES.get((service.name, index, environment), "succeeded")
            if status == "in_progress":
                start = IN_PROGRESS_STARTS[service.name]
            elif environment == "staging":
                start = staging_start
            else:  # production follows on a later working day
                start = _working_time(rng, staging_start + timedelta(days=1))
            minutes = rng.randint(4, 12) if environment == "staging" else rng.randint(9, 24)
            if status == "rolled_back":
                minutes += rng.randint(15, 35)
            yield {
                "service": service.name,
                "version": version,
                "environment": environment,
                "status": status,
                "started_at": _iso(start),
                "finished_at": None if status == "in_progress" else _iso(start + timedelta(minutes=minutes)),
                "deployed_by": rng.choice(service.engineers),
                "commit_sha": _commit_sha(service.name, version),
                "notes": NOTES.get(status),
                "release_index": index,
            }
            if status == "failed" and environment == "staging":
                break


def _deployments() -> list[dict[str, object]]:
    rng = random.Random(SEED)  # noqa: S311 - reproducible sample data, not security
    rows = [row for service in SERVICES for row in _service_deployments(service, rng)]
    rows.sort(key=lambda row: (str(row["started_at"]), str(row["service"])))
    for number, row in enumerate(rows, start=1):
        row["id"] = number
    return rows


def _incident_rows(deployments: Sequence[dict[str, object]]) -> Iterator[dict[str, object]]:
    production = {
        (row["service"], row["release_index"]): (str(row["started_at"]), str(row["finished_at"]))
        for row in deployments
        if row["environment"] == "production"
    }
    rows = []
    for incident in INCIDENTS:
        mitigated: str | None
        if isinstance(incident.opened, tuple):
            # Caused by a release: mitigated when its rollback finished.
            index, delay = incident.opened
            started, mitigated = production[(incident.service, index)]
            opened = datetime.fromisoformat(started) + timedelta(minutes=delay)
        else:
            opened = datetime.fromisoformat(incident.opened)
            mitigated = _after(opened, incident.minutes_to_mitigate)
        rows.append((opened, incident, mitigated))
    rows.sort(key=lambda row: row[0])
    for number, (opened, incident, mitigated) in enumerate(rows, start=101):
        yield {
            "id": number,
            "service": incident.service,
            "severity": incident.severity,
            "title": incident.title,
            "status": incident.status,
            "opened_at": _iso(opened),
            "mitigated_at": mitigated,
            "resolved_at": _after(opened, incident.minutes_to_resolve),
            "commander": incident.commander,
            "summary": incident.summary,
            "runbook": incident.runbook,
        }


def _after(start: datetime, minutes: int | None) -> str | None:
    return None if minutes is None else _iso(start + timedelta(minutes=minutes))


def _insert(
    conn: sqlite3.Connection, table: str, columns: Sequence[str], rows: Sequence[dict[str, object]]
) -> None:
    placeholders = ", ".join(f":{column}" for column in columns)
    conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})", rows)  # noqa: S608


def _service_rows() -> list[dict[str, object]]:
    return [
        {
            "name": s.name,
            "team": s.team,
            "tier": s.tier,
            "repository": f"https://github.example.com/acme/{s.name}",
            "language": s.language,
            "on_call_channel": f"#oncall-{s.team}",
            "slo_target": s.slo_target,
            "description": s.description,
        }
        for s in SERVICES
    ]


def build(output: Path) -> None:
    """Write the demo database to ``output`` atomically (replacing any existing file)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    partial.unlink(missing_ok=True)
    deployments = _deployments()
    conn = sqlite3.connect(partial, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = DELETE")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.executescript(SCHEMA)
        conn.execute("BEGIN")
        _insert(conn, "services", list(_service_rows()[0]), _service_rows())
        _insert(
            conn,
            "deployments",
            ["id", "service", "version", "environment", "status", "started_at", "finished_at",
             "deployed_by", "commit_sha", "notes"],
            deployments,
        )  # fmt: skip
        incidents = list(_incident_rows(deployments))
        _insert(conn, "incidents", list(incidents[0]), incidents)
        conn.execute("COMMIT")
        conn.execute("VACUUM")
    finally:
        conn.close()
    os.replace(partial, output)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where to write the database")
    args = parser.parse_args(argv)
    build(args.output)
    digest = hashlib.sha256(args.output.read_bytes()).hexdigest()
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes, sha256 {digest[:16]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
