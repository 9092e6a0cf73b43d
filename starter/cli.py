"""The `revops` command line."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from models.rules import Role
from models.validation import problem_lines
from starter import event_loop
from starter.settings import Settings, get_settings

app = typer.Typer(
    help="Revenue operations on Temporal.", no_args_is_help=True, add_completion=False
)
deal_app = typer.Typer(help="Submit deals and see where they stand.", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys for the HTTP API.", no_args_is_help=True)
app.add_typer(deal_app, name="deal")
app.add_typer(apikey_app, name="apikey")
console = Console(width=None if sys.stdout.isatty() else 200)


async def _until_interrupted() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def _print_urls(services: Any) -> None:
    console.print(f"Temporal Web UI  {services.ui_url}")
    console.print(f"Temporal gRPC    {services.settings.effective_temporal_address}")
    if services.api_url:
        console.print(
            f"HTTP API         {services.api_url}  (OpenAPI docs: {services.api_url}/docs)"
        )
    console.print(f"Database         {services.settings.effective_database_url}")
    if services.mailbox is not None:
        console.print(f"Mailbox          {services.mailbox.mail_dir}  "
                      f"(SMTP on 127.0.0.1:{services.mailbox.port}; notifications land here)")  # fmt: skip


@app.command()
def up() -> None:
    """Start the embedded stack, the worker and the HTTP API; Ctrl-C stops everything."""
    from starter.services import running_services
    from worker import configure_logging

    configure_logging(get_settings().log_level)

    async def run() -> None:
        async with running_services(get_settings()) as services:
            _print_urls(services)
            console.print("Running. Ctrl-C stops the worker, the API and the stack.")
            await _until_interrupted()
        console.print("Stopped.")

    event_loop.run(run())


@app.command()
def demo() -> None:
    """Run the sample book of deals through the product and print where each stands."""
    from starter.demo import outcome_table, run_book
    from starter.services import running_services
    from worker import configure_logging

    configure_logging("WARNING")  # the table is the output; `revops up` shows the INFO logs

    async def run() -> None:
        async with running_services(get_settings()) as services:
            _print_urls(services)
            states = await run_book(services, console)
            console.print(outcome_table(states))
            if services.mailbox is not None:
                mails = len(services.mailbox.paths())
                console.print(f"{mails} e-mails (invoices to billing contacts, cases to their "
                              f"owners) are in {services.mailbox.mail_dir}; `revops cases` lists "
                              "what waits on whom.")  # fmt: skip
            contracts = sum(1 for s in states if s.contract_workflow_id)
            console.print(f"{contracts} contracts now bill and earn on their own "
                          "(`revops contract show <deal id>`).")  # fmt: skip
            if sys.stdin.isatty() and sys.stdout.isatty():
                console.print(f"Look around: Web UI {services.ui_url}, API {services.api_url}/docs. "
                              "Ctrl-C stops the stack.")  # fmt: skip
                await _until_interrupted()

    event_loop.run(run())


@app.command()
def worker() -> None:
    """Run only the worker against the configured Temporal and PostgreSQL."""
    from worker import configure_logging, run_worker

    configure_logging(get_settings().log_level)
    event_loop.run(run_worker(get_settings()))


@asynccontextmanager
async def _connected(settings: Settings) -> AsyncIterator[Any]:
    """Pool, client and rules for one command against a running stack or production."""
    from activities.db import create_pool
    from starter.rules_loader import load_rule_book
    from starter.rules_store import store_rule_book
    from worker import connect_client

    pool = await create_pool(settings.effective_database_url, max_size=4)
    try:
        book = load_rule_book(settings.rules_dir)
        await store_rule_book(pool, book)  # cases opened under these rules can read them
        yield pool, await connect_client(settings), book.policy
    finally:
        await pool.close()


def _run(command: Callable[[], Coroutine[Any, Any, int]]) -> None:
    try:
        code = event_loop.run(command())
    except (OSError, RuntimeError) as exc:
        console.print(f"[red]cannot reach Temporal or PostgreSQL ({exc}); is `revops up` running?")
        code = 2
    raise typer.Exit(code)


@deal_app.command("submit")
def deal_submit(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="JSON or CSV")],
) -> None:
    """Submit the deals in FILE (a JSON deal, a JSON list of deals, or the CSV layout)."""
    from starter.file_intake import submit_file

    async def run() -> int:
        settings = get_settings()
        async with _connected(settings) as (pool, client, rules):
            results = await submit_file(file, pool, client, rules, settings.task_queue)
        for r in results:
            colour = "red" if r.problems else "green"
            console.print(
                f"[{colour}]{r.deal_id or '(no deal id)'}[/]: {r.message} (inbox #{r.inbox_id})"
            )
        return 1 if any(r.problems for r in results) else 0

    _run(run)


@deal_app.command("status")
def deal_status(deal_id: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Where a deal stands: stage, gates, open case, invoice, recognition, postings."""
    from starter.demo import query_state
    from starter.status_view import deal_status_view

    async def run() -> int:
        settings = get_settings()
        async with _connected(settings) as (_pool, client, _rules):
            state = await query_state(client, deal_id)
        if state is None:
            console.print(f"[red]no workflow deal-{deal_id}")
            return 1
        view = deal_status_view(state)
        console.print_json(json.dumps(view)) if as_json else _print_status(view)
        return 0

    _run(run)


def _print_status(view: dict[str, Any]) -> None:
    console.print(f"[bold]deal {view['deal_id']}[/] ({view['customer']}): {view['stage']}")
    console.print(f"  TCV {view['tcv']}, ARR {view['arr']}; rules {view['rules_version']}")
    for failed in view["gates"]["failed"]:
        console.print(
            f"  failed {failed['check_id']} → {failed['owner_role']}: {'; '.join(failed['messages'])}"
        )
    for case in view["open_cases"]:
        console.print(f"  open case {case['case_id']} owned by {case['owner_role']}")
    if view["invoice"]:
        inv = view["invoice"]
        console.print(
            f"  invoice {inv['number']} {inv['total']} due {inv['due_date']} (PO {inv['po_number'] or '-'})"
        )
    elif view["billing_note"]:
        console.print(f"  {view['billing_note']}")
    if view["recognition"]:
        rec = view["recognition"]
        console.print(
            f"  recognised {rec['recognised']}, deferred {rec['deferred_revenue']}, unbilled {rec['unbilled_receivable']}"
        )
    for posting in view["postings"]:
        console.print(f"  posted {posting['key']}: {posting['description']}")


@apikey_app.command("create")
def apikey_create(
    name: Annotated[str, typer.Option(help="Who the key acts as (becomes the actor)")],
    role: Annotated[Role, typer.Option(help="The role the key acts in")],
) -> None:
    """Create an API key; it is shown once and stored only as a hash."""
    from starter.api_keys import ApiKeyExists, create_api_key

    async def run() -> int:
        settings = get_settings()
        async with _connected(settings) as (pool, _client, _rules):
            try:
                key = await create_api_key(pool, name, role)
            except ApiKeyExists as exc:
                console.print(f"[red]{exc}")
                return 1
        console.print(f"API key for {name} ({role.value}); store it now, it is not shown again:")
        print(key)
        return 0

    _run(run)


def _register_subcommands() -> None:
    from starter.audit_commands import audit_app
    from starter.case_commands import case_app, cases_command
    from starter.close_commands import close_app
    from starter.contract_commands import contract_app
    from starter.export_commands import export_app
    from starter.rules_commands import rules_app
    from starter.usage_commands import usage_app

    app.add_typer(case_app, name="case")
    app.add_typer(audit_app, name="audit")
    app.add_typer(rules_app, name="rules")
    app.add_typer(usage_app, name="usage")
    app.add_typer(close_app, name="close")
    app.add_typer(export_app, name="export")
    app.add_typer(contract_app, name="contract")
    app.command("cases")(cases_command)


_register_subcommands()


def main() -> None:
    app()


__all__ = ["app", "main", "problem_lines"]


if __name__ == "__main__":
    main()
