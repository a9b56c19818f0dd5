"""The database refuses tampering with billing, on SQLite and on PostgreSQL alike.

Each attempt goes around the services (raw SQL through `connection.cursor()`, or ORM
`.update()` / `.delete()` / `.create()`), must raise IntegrityError with the guard's own
message, and must leave every guarded row as it was. The moves the services make still work.
"""

import datetime as dt
import importlib
import threading
import time
from contextlib import nullcontext
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction
from django.db.models import F

from billing import services
from billing.choices import (
    CREDIT_NOTE_MOVES,
    INVOICE_MOVES,
    CreditNoteStatus,
    InvoiceStatus,
    VoidResolution,
)
from billing.models import (
    BillingRun,
    CreditNote,
    CreditNoteLine,
    Invoice,
    InvoiceLine,
    NumberSeries,
)
from common.tamper import maintenance
from leasing import services as leasing_services
from leasing.models import LeaseNumberSeries
from tests.factories.billing import lease_with_lines

pytestmark = pytest.mark.django_db
UTC = dt.UTC
MIGRATION = importlib.import_module("billing.migrations.0005_tamper_proof")
# The latest table of moves (0007 added the paid statuses).
LATEST = importlib.import_module("billing.migrations.0007_receivables_guards")
GUARDED = (Invoice, InvoiceLine, CreditNote, CreditNoteLine, NumberSeries, LeaseNumberSeries)


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def sql(statement: str, *params) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


class World:
    """One of each: an issued invoice with an issued credit note, a paid, a void and a plain
    issued invoice, a draft with its lines, both number series — all made by the services."""

    def __init__(self) -> None:
        leases = [lease_with_lines()[0] for _ in range(4)]
        services.billing_run(now=at(2026, 1, 1))
        credited_lease, paid_lease, void_lease, issued_lease = leases
        credited_lease.effective_end = at(2026, 1, 20)
        credited_lease.save(update_fields=["effective_end"])
        services.billing_run(now=at(2026, 1, 2))

        def invoice_of(lease) -> Invoice:
            return Invoice.objects.get(lease=lease)

        self.credited = invoice_of(credited_lease)
        self.note = CreditNote.objects.get(invoice=self.credited)
        self.paid = services.invoice_mark_paid(invoice=invoice_of(paid_lease), now=at(2026, 1, 5))
        self.void = services.invoice_void(
            invoice=invoice_of(void_lease),
            reason="billed twice",
            resolution=VoidResolution.WAIVE,
            now=at(2026, 1, 5),
        )
        self.issued = invoice_of(issued_lease)
        draft_lease, (draft_line,) = lease_with_lines()
        self.draft = services.invoice_draft_for_period(
            lease=draft_lease, period=dt.date(2026, 1, 1), now=at(2026, 1, 3)
        )
        self.draft_line = self.draft.lines.get()
        self.lease = leasing_services.lease_create(
            tenant=draft_lease.tenant,
            lines=[
                leasing_services.LineSpec(
                    cluster=draft_line.cluster, node_count=1, monthly_rate=Decimal("10.00")
                )
            ],
            commencement_date=dt.date(2026, 2, 1),
            now=at(2026, 1, 3),
        )
        self.runs = list(BillingRun.objects.order_by("pk"))
        assert [i.status for i in (self.credited, self.paid, self.void, self.issued)] == [
            "issued",
            "paid",
            "void",
            "issued",
        ]
        assert (self.draft.status, self.note.status) == ("draft", "issued")


@pytest.fixture
def world() -> World:
    return World()


def snapshot() -> dict:
    """Every row of every guarded table."""
    return {
        model.__name__: sorted(model.objects.values_list(), key=lambda row: row[0])
        for model in GUARDED
    }


def lines_of(invoice: Invoice):
    return InvoiceLine.objects.filter(invoice=invoice)


# (what is attempted, how, the guard's message). `w` is the World.
ATTEMPTS = [
    # --- issued invoices: immutable columns ---
    (
        "total of an issued invoice (ORM)",
        lambda w: Invoice.objects.filter(pk=w.issued.pk).update(total=Decimal("1.00")),
        "total is immutable",
    ),
    (
        "number of an issued invoice (SQL)",
        lambda w: sql(
            "UPDATE billing_invoice SET number = 'INV-2026-999999' WHERE id = %s", w.issued.pk
        ),
        "number is immutable",
    ),
    (
        "period of a paid invoice (ORM)",
        lambda w: Invoice.objects.filter(pk=w.paid.pk).update(period_end=at(2026, 3, 1)),
        "period_end is immutable",
    ),
    (
        "tenant of a void invoice (SQL)",
        lambda w: sql(
            "UPDATE billing_invoice SET tenant_id = %s WHERE id = %s",
            w.issued.tenant_id,
            w.void.pk,
        ),
        "tenant_id is immutable",
    ),
    (
        "due date of an issued invoice (model save)",
        lambda w: _save(w.issued, due_at=at(2027, 1, 1)),
        "due_at is immutable",
    ),
    (
        "every invoice's total at once, drafts included (ORM)",
        lambda w: Invoice.objects.update(total=F("total") + 1),
        "total is immutable",
    ),
    # --- status moves ---
    (
        "paid invoice back to draft (ORM)",
        lambda w: Invoice.objects.filter(pk=w.paid.pk).update(
            status=InvoiceStatus.DRAFT, paid_at=None, number=None, issued_at=None, due_at=None
        ),
        "status move is not allowed",
    ),
    (
        # A reversed payment may move a paid invoice back, but only clearing when it was paid.
        "paid invoice back to issued keeping its paid_at (ORM)",
        lambda w: Invoice.objects.filter(pk=w.paid.pk).update(status=InvoiceStatus.ISSUED),
        "invoice_paid_has_paid_at|paid_at and paid_by are set only",
    ),
    (
        "void invoice back to issued (SQL)",
        lambda w: sql("UPDATE billing_invoice SET status = 'issued' WHERE id = %s", w.void.pk),
        "status move is not allowed",
    ),
    (
        "paid invoice voided (ORM)",
        lambda w: Invoice.objects.filter(pk=w.paid.pk).update(status=InvoiceStatus.VOID),
        "status move is not allowed",
    ),
    (
        "draft straight to paid (ORM)",
        lambda w: Invoice.objects.filter(pk=w.draft.pk).update(
            status=InvoiceStatus.PAID,
            number="INV-2026-999998",
            issued_at=at(2026, 1, 3),
            due_at=at(2026, 2, 2),
            paid_at=at(2026, 1, 3),
        ),
        "status move is not allowed",
    ),
    (
        "raw void of an invoice with credit notes (SQL)",
        lambda w: sql(
            "UPDATE billing_invoice SET status = 'void', voided_at = %s, void_reason = 'x' "
            "WHERE id = %s",
            at(2026, 1, 6),
            w.credited.pk,
        ),
        "issued credit notes cannot be voided",
    ),
    # --- columns that move only with their status ---
    (
        "paid_at of a paid invoice rewritten (ORM)",
        lambda w: Invoice.objects.filter(pk=w.paid.pk).update(paid_at=at(2026, 3, 1)),
        "paid_at and paid_by are set only by the move into paid",
    ),
    (
        "void reason of a void invoice rewritten (SQL)",
        lambda w: sql("UPDATE billing_invoice SET void_reason = 'x' WHERE id = %s", w.void.pk),
        "set only by the move into void",
    ),
    (
        "voided_at on an issued invoice (ORM)",
        lambda w: Invoice.objects.filter(pk=w.issued.pk).update(voided_at=at(2026, 1, 6)),
        "set only by the move into void",
    ),
    (
        "overdue flag of a paid invoice (ORM)",
        lambda w: Invoice.objects.filter(pk=w.paid.pk).update(is_overdue=True),
        "overdue flag of a paid or void invoice",
    ),
    (
        "billing run of an issued invoice replaced (ORM)",
        lambda w: Invoice.objects.filter(pk=w.issued.pk).update(billing_run=w.runs[1]),
        "billing run of an issued invoice",
    ),
    # --- deletes of invoices ---
    (
        "issued invoice deleted (SQL)",
        lambda w: sql("DELETE FROM billing_invoice WHERE id = %s", w.issued.pk),
        "issued invoice cannot be deleted",
    ),
    (
        "void invoice deleted (SQL)",
        lambda w: sql("DELETE FROM billing_invoice WHERE id = %s", w.void.pk),
        "issued invoice cannot be deleted",
    ),
    (
        "paid invoice deleted with its lines (ORM)",
        lambda w: Invoice.objects.filter(pk=w.paid.pk).delete(),
        # Its payment's application and ledger postings protect it first (PROTECT keys).
        "lines of an issued invoice are immutable|protected foreign keys",
    ),
    # --- invoice lines ---
    (
        "line amount of an issued invoice (ORM)",
        lambda w: lines_of(w.issued).update(amount=Decimal("1.00")),
        "lines of an issued invoice are immutable",
    ),
    (
        "line of a paid invoice deleted (SQL)",
        lambda w: sql("DELETE FROM billing_invoiceline WHERE invoice_id = %s", w.paid.pk),
        "lines of an issued invoice are immutable",
    ),
    (
        "line added to an issued invoice (ORM)",
        lambda w: InvoiceLine.objects.create(
            invoice=w.issued,
            lease_line=w.draft_line.lease_line,
            description="extra",
            service_start=at(2026, 1, 1),
            service_end=at(2026, 1, 2),
            days=1,
            days_in_month=31,
            monthly_rate=Decimal("31.00"),
            amount=Decimal("1.00"),
        ),
        "lines of an issued invoice are immutable",
    ),
    (
        "line of a draft moved into an issued invoice (SQL)",
        lambda w: sql(
            "UPDATE billing_invoiceline SET invoice_id = %s WHERE id = %s",
            w.issued.pk,
            w.draft_line.pk,
        ),
        "lines of an issued invoice are immutable",
    ),
    # --- credit notes and their lines ---
    (
        "total of an issued credit note (ORM)",
        lambda w: CreditNote.objects.filter(pk=w.note.pk).update(total=Decimal("1.00")),
        "total is immutable",
    ),
    (
        "reason of an issued credit note (SQL)",
        lambda w: sql("UPDATE billing_creditnote SET reason = 'x' WHERE id = %s", w.note.pk),
        "reason is immutable",
    ),
    (
        "credit note back to draft (ORM)",
        lambda w: CreditNote.objects.filter(pk=w.note.pk).update(
            status=CreditNoteStatus.DRAFT, number=None, issued_at=None
        ),
        "status move is not allowed",
    ),
    (
        "issued credit note deleted (SQL)",
        lambda w: sql("DELETE FROM billing_creditnote WHERE id = %s", w.note.pk),
        "issued credit note cannot be deleted",
    ),
    (
        "credit note line amount (ORM)",
        lambda w: CreditNoteLine.objects.filter(credit_note=w.note).update(amount=Decimal("1")),
        "lines of an issued credit note are immutable",
    ),
    (
        "credit note line deleted (SQL)",
        lambda w: sql("DELETE FROM billing_creditnoteline WHERE credit_note_id = %s", w.note.pk),
        "lines of an issued credit note are immutable",
    ),
    (
        "credit note issued against a void invoice (ORM)",
        lambda w: CreditNote.objects.create(
            tenant_id=w.void.tenant_id,
            lease_id=w.void.lease_id,
            invoice=w.void,
            status=CreditNoteStatus.ISSUED,
            number="CN-2026-999999",
            issued_at=at(2026, 1, 6),
            total=Decimal("1.00"),
        ),
        "credit note for a draft or void invoice",
    ),
    # --- number series ---
    (
        "invoice counter moved back (ORM)",
        lambda w: NumberSeries.objects.filter(kind="invoice").update(
            last_value=F("last_value") - 1
        ),
        "last_value never goes down",
    ),
    (
        "credit note counter reset (SQL)",
        lambda w: sql("UPDATE billing_numberseries SET last_value = 0 WHERE kind = 'credit_note'"),
        "last_value never goes down",
    ),
    (
        "counter moved to another year (ORM)",
        lambda w: NumberSeries.objects.filter(kind="invoice").update(year=2027),
        "year is immutable",
    ),
    (
        "counter deleted (ORM)",
        lambda w: NumberSeries.objects.filter(kind="invoice").delete(),
        "number series cannot be deleted",
    ),
    (
        "counter started ahead (ORM)",
        lambda w: NumberSeries.objects.create(kind="invoice", year=2030, last_value=41),
        "new series starts at 0",
    ),
    (
        "lease counter moved back (SQL)",
        lambda w: sql("UPDATE leasing_leasenumberseries SET last_value = 0"),
        "last_value never goes down",
    ),
    (
        "lease counter deleted (SQL)",
        lambda w: sql("DELETE FROM leasing_leasenumberseries"),
        "number series cannot be deleted",
    ),
    (
        "lease counter started ahead (ORM)",
        lambda w: LeaseNumberSeries.objects.create(year=2030, last_value=7),
        "new series starts at 0",
    ),
]
TRUNCATES = [
    pytest.param(table, marks=pytest.mark.postgres, id=f"TRUNCATE {table}")
    for table in MIGRATION.TRUNCATE_GUARDED
]


def _save(obj, **changes) -> None:
    for name, value in changes.items():
        setattr(obj, name, value)
    obj.save(update_fields=list(changes))


@pytest.mark.parametrize(
    ("attempt", "message"), [pytest.param(a, m, id=name) for name, a, m in ATTEMPTS]
)
def test_tampering_is_refused_and_changes_nothing(world, attempt, message):
    before = snapshot()
    with pytest.raises(IntegrityError, match=message), transaction.atomic():
        attempt(world)
    assert snapshot() == before


@pytest.mark.parametrize("table", TRUNCATES)
def test_truncate_is_refused(world, table):
    before = snapshot()
    connection.check_constraints()  # TRUNCATE waits for no deferred foreign-key check
    with pytest.raises(IntegrityError, match="TRUNCATE is refused"), transaction.atomic():
        sql(f"TRUNCATE {table} CASCADE")
    assert snapshot() == before


# --- what the services do still works -----------------------------------------------------


def test_issue_pay_void_and_the_runs_numbers_still_go_through(world):
    issued = services.invoice_issue(invoice=world.draft, now=at(2026, 1, 4))
    assert (issued.status, issued.number) == ("issued", "INV-2026-000005")
    services.mark_overdue(now=at(2026, 3, 1))  # the overdue flag moves on issued invoices
    assert Invoice.objects.get(pk=issued.pk).is_overdue
    paid = services.invoice_mark_paid(invoice=issued, now=at(2026, 3, 2))
    assert (paid.status, paid.is_overdue) == ("paid", False)
    void = services.invoice_void(
        invoice=world.issued,
        reason="duplicate",
        resolution=VoidResolution.WAIVE,
        now=at(2026, 1, 6),
    )
    assert void.status == "void"
    # The next run takes the next numbers of each series, under its lock: February for the
    # three leases still running then, and a credit on the paid invoice of one ending sooner.
    ending = world.paid.lease
    ending.effective_end = at(2026, 1, 25)
    ending.save(update_fields=["effective_end"])
    services.billing_run(now=at(2026, 1, 25))
    feb = Invoice.objects.filter(period=dt.date(2026, 2, 1)).order_by("number")
    assert [i.number for i in feb] == ["INV-2026-000006", "INV-2026-000007", "INV-2026-000008"]
    credit = CreditNote.objects.get(invoice=world.paid)
    assert (credit.number, credit.status) == ("CN-2026-000002", "issued")
    assert dict(NumberSeries.objects.values_list("kind", "last_value")) == {
        "invoice": 8,
        "credit_note": 2,
    }
    second = leasing_services.lease_create(
        tenant=world.lease.tenant,
        lines=[
            leasing_services.LineSpec(
                cluster=world.lease.lines.get().cluster, node_count=1, monthly_rate=Decimal("1")
            )
        ],
        commencement_date=dt.date(2026, 2, 1),
        now=at(2026, 1, 4),
    )
    assert (world.lease.number, second.number) == ("L-2026-0001", "L-2026-0002")


def test_a_deleted_billing_run_unlinks_its_issued_documents(world):
    first = world.runs[0]
    assert Invoice.objects.filter(billing_run=first, status=InvoiceStatus.PAID).exists()
    BillingRun.objects.filter(pk__in=[r.pk for r in world.runs]).delete()
    assert not Invoice.objects.filter(billing_run__isnull=False).exists()
    assert CreditNote.objects.get(pk=world.note.pk).billing_run_id is None


def test_drafts_stay_free_and_a_no_op_write_is_not_a_change(world):
    lines_of(world.draft).update(description="edited while a draft")
    Invoice.objects.filter(pk=world.draft.pk).update(total=F("total"))
    # SQLite's row lock (common/db.py) writes the key onto itself: that must pass.
    Invoice.objects.filter(pk=world.paid.pk).update(id=F("id"))
    NumberSeries.objects.filter(kind="invoice").update(last_value=F("last_value"))
    world.draft.delete()
    assert not Invoice.objects.filter(pk=world.draft.pk).exists()


def test_the_database_allows_exactly_the_moves_of_the_tables(world):
    """Every status pair: allowed in the database if and only if billing/choices.py lists it."""
    invoices = {
        "draft": world.draft,
        "issued": world.issued,
        "paid": world.paid,
        "void": world.void,
    }
    # What each target status needs beside the status (check constraints).
    needs = {
        "draft": {"number": None, "issued_at": None, "due_at": None, "paid_at": None},
        "issued": {"paid_at": None},
        "partially_paid": {"paid_at": None},
        "paid": {"paid_at": at(2026, 1, 6)},
        "void": {"paid_at": None, "voided_at": at(2026, 1, 6), "void_resolution": "waive"},
    }
    numbering = {"number": "INV-2026-000005", "issued_at": at(2026, 1, 6), "due_at": at(2026, 2, 5)}
    for source, invoice in invoices.items():
        for target in needs:
            if target == source:
                continue
            changes = {"status": target, **needs[target]}
            if source == "draft" and target != "draft":
                changes.update(numbering)
            allowed = (source, target) in INVOICE_MOVES
            with transaction.atomic():
                if allowed:
                    Invoice.objects.filter(pk=invoice.pk).update(**changes)
                    transaction.set_rollback(True)
                else:
                    with (
                        pytest.raises(IntegrityError, match="status move is not allowed"),
                        transaction.atomic(),
                    ):
                        Invoice.objects.filter(pk=invoice.pk).update(**changes)
    assert ("issued", "draft") not in CREDIT_NOTE_MOVES
    with pytest.raises(IntegrityError, match="status move"), transaction.atomic():
        CreditNote.objects.filter(pk=world.note.pk).update(status="draft")
    assert {tuple(m) for m in INVOICE_MOVES} == set(LATEST.INVOICE_MOVES)
    assert {tuple(m) for m in CREDIT_NOTE_MOVES} == set(MIGRATION.CREDIT_NOTE_MOVES)


# --- the guards are in place, and the one bypass -------------------------------------------


def installed_triggers() -> set[str]:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        else:
            cursor.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
        return {name for (name,) in cursor.fetchall()}


def test_every_guard_is_installed():
    """A migration that rebuilds a guarded table on SQLite drops its triggers with it."""
    if connection.vendor == "sqlite":
        expected = {name for name, _ in MIGRATION.SQLITE_TRIGGERS}
    else:
        expected = {f"{t}_guard" for t in MIGRATION.GUARDS} | {
            f"{t}_no_truncate" for t in MIGRATION.TRUNCATE_GUARDED
        }
    assert len(expected) >= 6
    assert expected <= installed_triggers()


def test_flush_goes_through_the_guards_only_where_the_settings_say_so(world, settings):
    assert settings.FLUSH_BYPASSES_TAMPER_GUARDS  # the test settings; off in base settings
    settings.FLUSH_BYPASSES_TAMPER_GUARDS = False
    connection.check_constraints()  # TRUNCATE waits for no deferred foreign-key check
    with pytest.raises(CommandError):
        call_command("flush", interactive=False, verbosity=0)
    assert Invoice.objects.filter(pk=world.paid.pk).exists()

    settings.FLUSH_BYPASSES_TAMPER_GUARDS = True
    call_command("flush", interactive=False, verbosity=0)
    assert not any(model.objects.exists() for model in GUARDED)
    # The bypass ended with the flush.
    NumberSeries.objects.create(kind="invoice", year=2030)
    with pytest.raises(IntegrityError, match="cannot be deleted"), transaction.atomic():
        NumberSeries.objects.all().delete()


def test_maintenance_lifts_the_guards_for_its_block_only(world):
    with maintenance():
        Invoice.objects.filter(pk=world.issued.pk).update(total=Decimal("1.00"))
    with pytest.raises(IntegrityError, match="total is immutable"), transaction.atomic():
        Invoice.objects.filter(pk=world.issued.pk).update(total=Decimal("2.00"))
    with pytest.raises(ZeroDivisionError), maintenance():
        _ = 1 / 0
    with pytest.raises(IntegrityError, match="total is immutable"), transaction.atomic():
        Invoice.objects.filter(pk=world.issued.pk).update(total=Decimal("3.00"))


def test_only_the_known_places_name_the_bypass(settings):
    root = Path(settings.BASE_DIR)
    allowed = {
        "common/tamper.py",
        "common/management/commands/flush.py",
        "billing/migrations/0005_tamper_proof.py",
        "bench/bench_seed.py",
        "tests/billing/test_tamper.py",
    }
    names = ("common.tamper import maintenance", "landlord.maintenance", "landlord_maintenance")
    found = {
        str(path.relative_to(root))
        for top in ("common", "config", "clusters", "leasing", "billing", "bench", "tests")
        for path in (root / top).rglob("*.py")
        if any(name in path.read_text() for name in names)
    }
    assert "common/tamper.py" in found
    assert found <= allowed


@pytest.mark.django_db(transaction=True)
def test_guards_hold_on_committed_rows_and_the_test_flush_still_empties_them():
    """Outside a test transaction: every statement commits, and the guards refuse all the
    same. This test's own teardown is the test runner's flush, which must go through."""
    world = World()
    with pytest.raises(IntegrityError, match="total is immutable"):
        Invoice.objects.filter(pk=world.paid.pk).update(total=Decimal("1.00"))
    with pytest.raises(IntegrityError, match="cannot be deleted"):
        sql("DELETE FROM billing_numberseries")
    assert Invoice.objects.get(pk=world.paid.pk).total == world.paid.total
    assert NumberSeries.objects.count() == 2


# --- a void and a credit racing for one invoice (PostgreSQL: true concurrent writers) -------


def _lock_waiters() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("guarded", [True, False], ids=["guarded", "control-guards-lifted"])
def test_a_void_and_a_credit_racing_for_one_invoice_cannot_both_commit(guarded):
    """The void holds its transaction open after its checks passed (no credit note yet); the
    credit run, which locks the lease but not the invoice, plans a credit against the invoice
    as it last committed and issues it. The void service takes the lease lock first, so the
    credit run waits and then finds the invoice void; the credit note's guard is the second
    line (the control lifts it on the crediting connection: the services alone hold)."""
    lease, _ = lease_with_lines()
    services.billing_run(now=at(2026, 1, 1))
    invoice = Invoice.objects.get(lease=lease)
    lease.effective_end = at(2026, 1, 20)
    lease.save(update_fields=["effective_end"])
    voided, release = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def void() -> None:
        try:
            with transaction.atomic():
                services.invoice_void(
                    invoice=invoice,
                    reason="race",
                    resolution=VoidResolution.WAIVE,
                    now=at(2026, 1, 3),
                )
                voided.set()
                release.wait(timeout=30)
            outcome["void"] = "committed"
        except Exception as exc:  # reported below
            outcome["void"] = exc
        finally:
            voided.set()
            connection.close()

    def credit() -> None:
        voided.wait(timeout=30)
        try:
            with maintenance() if not guarded else nullcontext():
                services.credit_notes_for_changes(lease=lease, now=at(2026, 1, 3))
            outcome["credit"] = "committed"
        except Exception as exc:  # reported below
            outcome["credit"] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=void), threading.Thread(target=credit)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    # Let the void commit once the credit waits on a lock (or, unguarded, gets that far).
    while _lock_waiters() == 0 and threads[1].is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    release.set()
    for thread in threads:
        thread.join(timeout=30)

    invoice.refresh_from_db()
    credits = CreditNote.objects.filter(invoice=invoice, status=CreditNoteStatus.ISSUED)
    assert outcome["void"] == "committed"
    assert invoice.status == InvoiceStatus.VOID
    # The void locks the lease before the invoice, as the credit run does, so the run plans
    # after the void committed and credits nothing; where it would not, the guard refuses the
    # credit note. Guarded or not, an invoice is never both void and credited.
    if isinstance(outcome["credit"], Exception):
        assert guarded, outcome
        assert "credit note for a draft or void invoice" in str(outcome["credit"])
    assert not credits.exists()
