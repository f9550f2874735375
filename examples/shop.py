"""A fake shop for the order saga: a warehouse, a payment gateway, a carrier and a mailer that keep
their effects in one SQLite ledger, so you (or a test) can count what really happened.

Each service is idempotent by the caller's key, as real ones are (a payment provider's
``Idempotency-Key`` header): a request repeated with a key already seen returns the first answer
and does nothing again. Step bodies are at-least-once (after a crash a body may run again), so the
order saga hands each service its step's ``idempotency_key``. Every request, repeated or not, is
logged in ``requests``: there you see bodies that ran twice, in the other tables effects that
happened once. Requests also carry the execution's ARN as the merchant's reference, which is how
a refund finds the charge of a payment that timed out.

Faults are injected by the order's ``"fail"`` (one point or a list of them):

``payment``
    the gateway times out on every attempt, after taking the charge on the first one;
``shipment`` / ``shipment-always``
    the carrier rejects the shipment (an undeliverable address: not retried) / until repaired
    (``python examples/shop.py repair shipment``: the address was corrected);
``confirmation`` / ``confirmation-always``
    the mail server is down for the first two attempts / until repaired (``repair confirmation``);
``refund-once`` / ``release-once``
    the first refund / release request fails;
``refund-always`` / ``release-always``
    refunds / releases fail until repaired (``python examples/shop.py repair refund``).

A compensation fault without a forward one implies ``shipment`` (something must fail for a
compensation to run). Without any fault, the gateway still times out once, after charging: the
retry, with the same key, does not charge twice. ``"latency"`` (seconds) makes each request take
that long, half before its effect and half after it.

The ledger is the order's ``"ledger"``, else ``$SHOP_LEDGER``, else ``shop.db`` next to
``$DURABLY_DB``, else ``.durably/shop.db`` (next to the default durably database), resolved
against the working directory as the durably database is: start workers where you ran ``durably
run`` or set the variables.

    python examples/shop.py [--ledger PATH]                      what the ledger holds, order by order
    python examples/shop.py repair SERVICE [--order ID]          end an injected ...-always fault
    python examples/shop.py refund-by-hand ORDER_ID              what a person does before answering "resolved"
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

FAULTS = frozenset({"payment", "shipment", "shipment-always", "confirmation", "confirmation-always", "refund-once",
                    "refund-always", "release-once", "release-always"})
FORWARD_FAULTS = frozenset({"payment", "shipment", "shipment-always", "confirmation", "confirmation-always"})
REPAIRABLE = ("refund", "release", "shipment", "confirmation")
"""The faults whose ``-always`` form lasts until ``repair``."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    seq INTEGER PRIMARY KEY, at REAL NOT NULL, pid INTEGER NOT NULL, service TEXT NOT NULL, action TEXT NOT NULL,
    key TEXT NOT NULL, execution TEXT NOT NULL, order_id TEXT NOT NULL, outcome TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS reservations (
    id TEXT PRIMARY KEY, key TEXT NOT NULL, execution TEXT NOT NULL, order_id TEXT NOT NULL,
    quantity INTEGER NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS releases (
    id TEXT PRIMARY KEY, key TEXT NOT NULL, reservation_id TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS charges (
    id TEXT PRIMARY KEY, key TEXT NOT NULL, execution TEXT NOT NULL, order_id TEXT NOT NULL,
    amount INTEGER NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS refunds (
    id TEXT PRIMARY KEY, key TEXT NOT NULL, charge_id TEXT NOT NULL, amount INTEGER NOT NULL,
    by TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS shipments (
    id TEXT PRIMARY KEY, key TEXT NOT NULL, execution TEXT NOT NULL, order_id TEXT NOT NULL,
    reservation_id TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS emails (
    id TEXT PRIMARY KEY, key TEXT NOT NULL, execution TEXT NOT NULL, order_id TEXT NOT NULL,
    recipient TEXT NOT NULL, subject TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS repairs (service TEXT NOT NULL, order_id TEXT, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS requests_by_execution ON requests (execution, service, action);
"""
"""No key is UNIQUE on purpose: a service that failed to deduplicate would show two rows, not an error."""

EFFECTS = {"reservations": "res", "releases": "rel", "charges": "ch", "refunds": "rf", "shipments": "shp",
           "emails": "em"}


class ServiceError(Exception):
    """A service refused a request for good (not worth retrying)."""


def ledger_path(order: Mapping[str, Any]) -> str:
    """The ledger of ``order``, absolute: its ``"ledger"``, ``$SHOP_LEDGER``, next to ``$DURABLY_DB`` (a file),
    or .durably/."""
    chosen = order.get("ledger") or os.environ.get("SHOP_LEDGER")
    if not chosen:
        durably_db = os.environ.get("DURABLY_DB")
        beside = durably_db if durably_db and "://" not in durably_db else None
        chosen = str(Path(beside).parent / "shop.db") if beside else os.path.join(".durably", "shop.db")
    return str(Path(chosen).resolve())


def faults_of(order: Mapping[str, Any]) -> frozenset[str]:
    """The fault points of ``order`` (``"fail"``: one or a list); a compensation fault alone implies ``shipment``."""
    raw = order.get("fail") or ()
    points = frozenset([raw] if isinstance(raw, str) else raw)
    unknown = points - FAULTS
    if unknown:
        raise ValueError(f"unknown fault {sorted(unknown)}; known: {', '.join(sorted(FAULTS))}")
    if points and not points & FORWARD_FAULTS:
        points |= {"shipment"}
    return points


class Ledger:
    """The SQLite file that every service writes; one short transaction per request (safe across processes)."""

    _ready: set[str] = set()
    _ready_lock = threading.Lock()

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        db.execute("PRAGMA busy_timeout = 60000")
        with Ledger._ready_lock:
            if self.path not in Ledger._ready:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                db.execute("PRAGMA journal_mode = WAL")
                db.executescript(SCHEMA)
                Ledger._ready.add(self.path)
        return db

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            db.close()

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        if not Path(self.path).exists():
            return []
        db = self._connect()
        try:
            return list(db.execute(sql, params))
        finally:
            db.close()


class Service:
    """What the four services share: the ledger, the faults of the order, the latency, the request log."""

    name = "service"

    def __init__(self, ledger: Ledger, faults: Iterable[str] = (), latency: float = 0.0) -> None:
        self.ledger = ledger
        self.faults = frozenset(faults)
        self.latency = latency

    @contextmanager
    def request(self, action: str, key: str, execution: str, order_id: str) -> Iterator[_Request]:
        """One request: its effect (or its failure) and its line in ``requests`` commit together."""
        if self.latency:
            time.sleep(self.latency / 2)
        with self.ledger.transaction() as db:
            req = _Request(db, self.name, action, key, execution, order_id)
            try:
                yield req
            except Exception as exc:
                req.log(f"failed: {type(exc).__name__}: {exc}")
                failure: Exception | None = exc
            else:
                req.log(req.outcome)
                failure = None
        if self.latency:
            time.sleep(self.latency / 2)  # a crash here: the effect happened, the caller never heard of it
        if failure is not None:
            raise failure

    def down(self, req: _Request, fault: str) -> bool:
        """Whether an injected outage (``<fault>-once``: the first request; ``<fault>-always``: until repaired)
        refuses this request."""
        if f"{fault}-always" in self.faults:
            repaired = req.db.execute(
                "SELECT 1 FROM repairs WHERE service = ? AND (order_id IS NULL OR order_id = ?)",
                (fault, req.order_id)).fetchone()
            return repaired is None
        return f"{fault}-once" in self.faults and req.earlier == 0


class _Request:
    def __init__(self, db: sqlite3.Connection, service: str, action: str, key: str, execution: str,
                 order_id: str) -> None:
        self.db, self.service, self.action = db, service, action
        self.key, self.execution, self.order_id = key, execution, order_id
        self.outcome = "ok"
        self.earlier = int(db.execute(
            "SELECT count(*) FROM requests WHERE execution = ? AND service = ? AND action = ?",
            (execution, service, action)).fetchone()[0])
        """How many requests of this kind this execution made before (the first is 0)."""

    def seen(self, table: str) -> dict[str, Any] | None:
        """The effect already made under this key (then this request is a repeat), or None."""
        cursor = self.db.execute(f"SELECT * FROM {table} WHERE key = ? ORDER BY at LIMIT 1", (self.key,))
        row = cursor.fetchone()
        if row is None:
            return None
        self.outcome = "repeat"
        return dict(zip([c[0] for c in cursor.description], row, strict=True))

    def insert(self, table: str, **values: Any) -> dict[str, Any]:
        count = self.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        row = {"id": f"{EFFECTS[table]}-{count + 1}", "key": self.key, **values, "at": time.time()}
        self.db.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                        tuple(row.values()))
        return row

    def log(self, outcome: str) -> None:
        self.db.execute("INSERT INTO requests (at, pid, service, action, key, execution, order_id, outcome)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (time.time(), os.getpid(), self.service, self.action,
                                                             self.key, self.execution, self.order_id, outcome))


class Warehouse(Service):
    name = "warehouse"

    def reserve(self, order_id: str, quantity: int, *, key: str, execution: str) -> dict[str, Any]:
        with self.request("reserve", key, execution, order_id) as req:
            row = req.seen("reservations") or req.insert("reservations", execution=execution, order_id=order_id,
                                                         quantity=quantity)
        return {"reservation_id": row["id"], "quantity": row["quantity"]}

    def release(self, reservation_id: str, order_id: str, *, key: str, execution: str) -> dict[str, Any]:
        with self.request("release", key, execution, order_id) as req:
            if self.down(req, "release"):
                raise ConnectionError("warehouse API unavailable")
            row = req.seen("releases") or req.insert("releases", reservation_id=reservation_id)
        return {"release_id": row["id"], "reservation_id": reservation_id}


class PaymentGateway(Service):
    name = "payments"

    def charge(self, order_id: str, amount: int, *, key: str, execution: str) -> dict[str, Any]:
        with self.request("charge", key, execution, order_id) as req:
            row = req.seen("charges") or req.insert("charges", execution=execution, order_id=order_id, amount=amount)
            if "payment" in self.faults or req.earlier == 0:
                raise TimeoutError("payment gateway timed out")  # ... after taking the charge
        return {"charge_id": row["id"], "amount": row["amount"]}

    def refund(self, order_id: str, *, key: str, execution: str, by: str = "api") -> dict[str, Any]:
        """Refund what this execution was charged (nothing, if the charge never happened)."""
        with self.request("refund", key, execution, order_id) as req:
            if by == "api" and self.down(req, "refund"):
                raise ConnectionError("refund API unavailable")
            charges = req.db.execute("SELECT id, amount FROM charges WHERE execution = ? ORDER BY at",
                                     (execution,)).fetchall()
            refunds = []
            for charge_id, amount in charges:
                done = req.db.execute("SELECT id FROM refunds WHERE key = ? AND charge_id = ?",
                                      (key, charge_id)).fetchone()
                if done is not None:
                    req.outcome = "repeat"
                    refunds.append(done[0])
                else:
                    refunds.append(req.insert("refunds", charge_id=charge_id, amount=amount, by=by)["id"])
        return {"refunds": refunds}


class Carrier(Service):
    name = "carrier"

    def ship(self, order_id: str, reservation_id: str, *, key: str, execution: str) -> dict[str, Any]:
        with self.request("ship", key, execution, order_id) as req:
            if "shipment" in self.faults or self.down(req, "shipment"):
                raise ServiceError(f"carrier rejected the shipment of {order_id}: address undeliverable")
            row = req.seen("shipments") or req.insert("shipments", execution=execution, order_id=order_id,
                                                      reservation_id=reservation_id)
        return {"shipment_id": row["id"], "tracking": f"TRK{row['id'].split('-')[1].zfill(8)}"}


class Mailer(Service):
    name = "mailer"

    def send(self, order_id: str, recipient: str, subject: str, *, key: str, execution: str) -> dict[str, Any]:
        with self.request("send", key, execution, order_id) as req:
            if self.down(req, "confirmation") or ("confirmation" in self.faults and req.earlier < 2):
                raise ConnectionError("mail server unavailable")
            row = req.seen("emails") or req.insert("emails", execution=execution, order_id=order_id,
                                                   recipient=recipient, subject=subject)
        return {"email_id": row["id"]}


class Shop:
    """The four services of one order, on its ledger, with its faults."""

    def __init__(self, order: Mapping[str, Any]) -> None:
        self.ledger = Ledger(ledger_path(order))
        faults, latency = faults_of(order), float(order.get("latency", 0))
        self.warehouse = Warehouse(self.ledger, faults, latency)
        self.payments = PaymentGateway(self.ledger, faults, latency)
        self.carrier = Carrier(self.ledger, faults, latency)
        self.mailer = Mailer(self.ledger, faults, latency)


# ---------------------------------------------------------------------------- for people (and tests)
def repair(ledger: Ledger, service: str, order_id: str | None = None) -> None:
    """End an injected ``<service>-always`` fault, for one order or for all."""
    with ledger.transaction() as db:
        db.execute("INSERT INTO repairs (service, order_id, at) VALUES (?, ?, ?)", (service, order_id, time.time()))


def refund_by_hand(ledger: Ledger, order_id: str) -> list[str]:
    """Refund every charge of ``order_id`` not refunded yet, as a person would in the gateway's dashboard."""
    done = []
    for charge_id, execution in ledger.rows(
            "SELECT id, execution FROM charges WHERE order_id = ? AND id NOT IN (SELECT charge_id FROM refunds)",
            order_id):
        gateway = PaymentGateway(ledger)
        done += gateway.refund(order_id, key=f"by-hand-{charge_id}", execution=execution, by="hand")["refunds"]
    return done


def summary(ledger: Ledger) -> dict[str, dict[str, Any]]:
    """Per execution: its order and what the services did for it (ids of each effect)."""
    out: dict[str, dict[str, Any]] = {}

    def entry(execution: str, order_id: str) -> dict[str, Any]:
        return out.setdefault(execution, {"order_id": order_id, "reserved": [], "released": [], "charged": [],
                                          "refunded": [], "shipped": [], "emailed": [], "requests": 0,
                                          "repeats": 0})

    for execution, order_id, outcome in ledger.rows("SELECT execution, order_id, outcome FROM requests ORDER BY seq"):
        e = entry(execution, order_id)
        e["requests"] += 1
        e["repeats"] += outcome == "repeat"
    for table, sql in (
            ("reserved", "SELECT execution, order_id, id FROM reservations"),
            ("released", "SELECT r.execution, r.order_id, l.id FROM releases l"
                         " JOIN reservations r ON r.id = l.reservation_id"),
            ("charged", "SELECT execution, order_id, id FROM charges"),
            ("refunded", "SELECT c.execution, c.order_id, f.id FROM refunds f JOIN charges c ON c.id = f.charge_id"),
            ("shipped", "SELECT execution, order_id, id FROM shipments"),
            ("emailed", "SELECT execution, order_id, id FROM emails")):
        for execution, order_id, effect in ledger.rows(sql):
            entry(execution, order_id)[table].append(effect)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python examples/shop.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ledger", help="the ledger file (default: as the order saga resolves it)")
    sub = parser.add_subparsers(dest="command")
    fix = sub.add_parser("repair", help="end an injected <service>-always fault")
    fix.add_argument("service", choices=REPAIRABLE)
    fix.add_argument("--order", help="only for this order")
    by_hand = sub.add_parser("refund-by-hand", help="refund an order's charges outside the saga")
    by_hand.add_argument("order")
    args = parser.parse_args(argv)
    ledger = Ledger(ledger_path({"ledger": args.ledger}))
    if args.command == "repair":
        repair(ledger, args.service, args.order)
        print(f"{args.service} repaired" + (f" for {args.order}" if args.order else ""))
    elif args.command == "refund-by-hand":
        print(f"refunded by hand: {', '.join(refund_by_hand(ledger, args.order)) or 'nothing to refund'}")
    else:
        print(f"ledger {ledger.path}")
        for execution, e in summary(ledger).items():
            effects = "  ".join(f"{k} {','.join(e[k])}" for k in
                                ("reserved", "released", "charged", "refunded", "shipped", "emailed") if e[k])
            print(f"{e['order_id']:<10} {execution.rsplit('/', 1)[-1][:8]}  {effects or '-'}"
                  f"  ({e['requests']} requests, {e['repeats']} repeated)")


if __name__ == "__main__":
    main()
