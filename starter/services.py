"""Everything the product runs, in one process: the embedded stack (or production
endpoints), migrations, the worker and the HTTP API. `revops up` and `revops demo` use it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass

import asyncpg
import uvicorn
from temporalio.client import Client

from activities.db import create_pool
from activities.notifications import SmtpSettings
from activities.smtp_send import close_smtp_sessions
from models.rules import RuleSet
from starter.api import ApiContext, create_app
from starter.close_commands import ensure_close_schedule
from starter.database import migrate_async
from starter.embedded_mail import EmbeddedMailbox, smtp_settings
from starter.gc_tuning import worker_gc
from starter.ports import port_free
from starter.rules_loader import load_rule_book
from starter.rules_store import store_rule_book
from starter.settings import Settings
from starter.stack import EmbeddedStack, StackInfo
from worker import build_worker, connect_client, hubspot_client, register_search_attributes


@dataclass
class Services:
    settings: Settings
    stack: StackInfo
    pool: asyncpg.Pool
    client: Client
    rules: RuleSet
    api_url: str | None
    smtp: SmtpSettings | None = None  # where notifications go (the mailbox's port if embedded)
    mailbox: EmbeddedMailbox | None = None  # running when SMTP_HOST is unset

    @property
    def ui_url(self) -> str:
        return self.stack.temporal_ui_url or "(your Temporal cluster's UI)"


@asynccontextmanager
async def running_services(settings: Settings, *, with_api: bool = True) -> AsyncIterator[Services]:
    """Start what is not running yet and stop, on exit, exactly what was started here."""
    stack = EmbeddedStack(settings)
    info = await asyncio.to_thread(stack.start)
    async with AsyncExitStack() as exits:
        exits.callback(stack.stop)
        live = settings.model_copy(
            update={"temporal_address": info.temporal_address, "database_url": info.database_url}
        )
        await migrate_async(live.database_url or "")
        pool = await create_pool(live.effective_database_url, max_size=20)
        exits.push_async_callback(pool.close)
        client = await connect_client(live)
        await register_search_attributes(client, live.temporal_namespace)
        book = load_rule_book(live.rules_dir)
        await store_rule_book(pool, book)
        await ensure_close_schedule(client, live.task_queue, book.version)
        rules = book.policy
        http = await exits.enter_async_context(hubspot_client(live))
        mailbox = None
        if live.smtp_host is None:
            mailbox = await exits.enter_async_context(EmbeddedMailbox.for_settings(live))
        smtp = smtp_settings(live, mailbox.port if mailbox else None)
        exits.push_async_callback(close_smtp_sessions)  # once the worker has stopped
        await exits.enter_async_context(
            build_worker(client, pool, http, live.task_queue, smtp=smtp,
                         chat_webhook_url=live.chat_webhook_url.get_secret_value()
                         if live.chat_webhook_url else None,
                         max_concurrent_activities=live.worker_max_concurrent_activities)
        )  # fmt: skip
        api_url = None
        if with_api and port_free(live.api_host, live.api_port):
            await _serve_api(exits, ApiContext(live, pool, client, rules), live)
            api_url = f"http://{live.api_host}:{live.api_port}"
        exits.enter_context(worker_gc(live.gc_young_threshold))  # everything has started
        yield Services(live, info, pool, client, rules, api_url, smtp, mailbox)


class _ApiServer(uvicorn.Server):
    """uvicorn inside our process: the CLI owns Ctrl-C, so the server must not take it."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _serve_api(exits: AsyncExitStack, ctx: ApiContext, settings: Settings) -> None:
    config = uvicorn.Config(create_app(ctx), host=settings.api_host, port=settings.api_port,
                            log_level="warning", lifespan="on")  # fmt: skip
    server = _ApiServer(config)
    task = asyncio.create_task(server.serve())

    async def stop() -> None:
        server.should_exit = True
        with suppress(asyncio.CancelledError):
            await task

    exits.push_async_callback(stop)
    while not server.started and not task.done():
        await asyncio.sleep(0.05)
    if task.done():
        task.result()
