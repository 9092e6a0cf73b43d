"""The HTTP API (FastAPI): deal intake, the HubSpot webhook, deal status, case resolution.

Routes only translate: authenticate, parse, call intake or Temporal, map errors to codes.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from models.case import Resolution, ResolutionAction
from models.rules import RuleSet
from models.usage import parse_usage_records
from models.validation import describe_validation_error
from starter.api_keys import ApiPrincipal, authenticate
from starter.case_actions import CaseRefused
from starter.case_actions import resolve_case as resolve_case_update
from starter.contract_actions import tell_contracts_usage_arrived
from starter.hubspot_signature import (
    WebhookAuthError,
    hubspot_request_uri,
    parse_hubspot_events,
    verify_hubspot_v3,
)
from starter.intake import Intake, content_id, parse_json_text
from starter.settings import Settings
from starter.status_view import deal_status_view
from starter.usage_intake import store_usage
from workflows.deal import DealWorkflow

CLOSED_WON_STAGES = frozenset({"closedwon"})


@dataclass
class ApiContext:
    settings: Settings
    pool: asyncpg.Pool
    client: Client
    rules: RuleSet

    @property
    def intake(self) -> Intake:
        return Intake(self.pool, self.client, self.rules, self.settings.task_queue)


def _context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


Context = Annotated[ApiContext, Depends(_context)]


async def _principal(
    ctx: Context,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> ApiPrincipal:
    presented = x_api_key or (authorization or "").removeprefix("Bearer ").strip() or None
    try:
        principal = await authenticate(ctx.pool, presented)
    except (OSError, asyncpg.PostgresError) as exc:
        raise HTTPException(503, "database unavailable; retry later") from exc
    if principal is None:
        raise HTTPException(401, "a valid API key is required (Authorization: Bearer <key>)")
    return principal


Principal = Annotated[ApiPrincipal, Depends(_principal)]


class CaseResolutionBody(BaseModel):
    """A resolution as an API caller sends it; the actor is the person the API key belongs to
    (its name, `<person id>` or `<person id>:<label>`), whose roles the directory gives."""

    action: ResolutionAction
    reason_code: str
    note: str = ""
    amendments: dict[str, Any] = {}
    approver: str | None = None
    override_expires_on: date | None = None


def create_app(ctx: ApiContext | None = None, settings: Settings | None = None) -> FastAPI:
    """The app; pass `ctx` to reuse connections (tests, the embedded stack)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if ctx is not None:
            app.state.ctx = ctx
            yield
            return
        from activities.db import create_pool
        from starter.rules_loader import load_rules
        from worker import connect_client

        assert settings is not None
        pool = await create_pool(settings.effective_database_url)
        app.state.ctx = ApiContext(
            settings, pool, await connect_client(settings), load_rules(settings.rules_dir)
        )
        yield
        await pool.close()

    app = FastAPI(title="revops", version="0.1.0", lifespan=lifespan,
                  description="Revenue operations on Temporal: deal intake, status and cases.")  # fmt: skip
    _routes(app)
    # Imported here: these route modules import this one.
    from starter.contract_routes import contract_router
    from starter.export_routes import export_router

    app.include_router(export_router)
    app.include_router(contract_router)
    return app


def _routes(app: FastAPI) -> None:
    @app.get("/health")
    async def health(ctx: Context) -> dict[str, str]:
        await ctx.pool.fetchval("SELECT 1")
        return {"status": "ok"}

    @app.post("/deals", status_code=202)
    async def submit_deal(request: Request, ctx: Context, who: Principal) -> JSONResponse:
        raw = (await request.body()).decode("utf-8", errors="replace")
        payload, problems = parse_json_text(raw)
        try:
            if problems:
                result = await ctx.intake.submit_invalid("api", raw, "application/json", problems)
            else:
                result = await ctx.intake.submit_deal("api", payload, raw, submitted_by=who.name)
        except (OSError, asyncpg.PostgresError) as exc:
            raise HTTPException(503, "database unavailable: nothing was stored; retry") from exc
        except RPCError as exc:
            # Stored in the inbox but not started: the same body again starts it.
            raise HTTPException(503, f"Temporal unavailable ({exc.message}); retry") from exc
        code = 422 if result.problems else (202 if result.started else 200)
        return JSONResponse(result.as_json(), status_code=code)

    @app.post("/webhooks/hubspot")
    async def hubspot_webhook(request: Request, ctx: Context) -> dict[str, Any]:
        body = await request.body()
        _verify_hubspot(request, ctx.settings, body)
        raw = body.decode("utf-8", errors="replace")
        try:  # the authenticated request as received, before anything is parsed
            batch_id, _ = await ctx.intake.store_raw(
                "hubspot-webhook", content_id(raw), "application/json", raw
            )
        except (OSError, asyncpg.PostgresError) as exc:
            raise HTTPException(503, "database unavailable: nothing was stored; retry") from exc
        try:
            events = parse_hubspot_events(body)
        except ValueError as exc:
            await ctx.intake.mark(
                batch_id, "invalid", errors=[{"field": "body", "rule": str(exc), "input": ""}]
            )
            raise HTTPException(422, str(exc)) from exc
        await ctx.intake.mark(batch_id, "parsed")
        started = []
        for event in events:
            if event.property_name == "dealstage" and event.property_value in CLOSED_WON_STAGES:
                raw = json.dumps(event.model_dump(by_alias=True))
                try:
                    result = await ctx.intake.submit_crm_event(
                        "hubspot", str(event.event_id), str(event.object_id), raw, "hubspot"
                    )
                except (OSError, asyncpg.PostgresError, RPCError) as exc:
                    # HubSpot redelivers on 5xx; events stored before the outage stay stored.
                    raise HTTPException(503, "database or Temporal unavailable; retry") from exc
                started.append(result.as_json())
        return {"received": len(events), "deals": started}

    @app.get("/deals/{deal_id}")
    async def deal_status(deal_id: str, ctx: Context, who: Principal) -> dict[str, Any]:
        del who
        handle = ctx.client.get_workflow_handle_for(DealWorkflow.run, f"deal-{deal_id}")
        try:
            state = await handle.query(DealWorkflow.state)
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:
                raise HTTPException(404, f"no workflow deal-{deal_id}") from exc
            raise HTTPException(503, f"Temporal unavailable ({exc.message}); retry") from exc
        return deal_status_view(state)

    @app.post("/usage", status_code=202)
    async def submit_usage(request: Request, ctx: Context, who: Principal) -> JSONResponse:
        """A batch `{"records": [...]}`; stored raw first, then all records or none."""
        raw = (await request.body()).decode("utf-8", errors="replace")
        payload, problems = parse_json_text(raw)
        try:
            inbox_id, _ = await ctx.intake.store_raw(
                "usage-api", content_id(raw), "application/json", raw
            )
            items = payload.get("records") if isinstance(payload, dict) else None
            if problems or not isinstance(items, list):
                await ctx.intake.mark(
                    inbox_id,
                    "invalid",
                    errors=problems
                    or [
                        {"field": "records", "rule": "must be a list of usage records", "input": ""}
                    ],
                )
                return JSONResponse({"problems": problems or [{"field": "records",
                                     "rule": "must be a list of usage records"}]}, status_code=422)  # fmt: skip
            records, bad = parse_usage_records(items)
            if bad:
                await ctx.intake.mark(inbox_id, "invalid", errors=[
                    {"field": f"records[{b.index}].{p['field']}", "rule": p["rule"], "input": p["input"]}
                    for b in bad for p in b.problems])  # fmt: skip
                return JSONResponse({"stored": 0, "problems": [b.model_dump() for b in bad]},
                                    status_code=422)  # fmt: skip
            result = await store_usage(ctx.pool, records, source=f"api:{who.name}")
            await ctx.intake.mark(inbox_id, "stored")
            await tell_contracts_usage_arrived(ctx.client, (r.contract_id for r in records))
        except (OSError, asyncpg.PostgresError) as exc:
            raise HTTPException(503, "database unavailable: nothing was stored; retry") from exc
        return JSONResponse(result.as_json(), status_code=202)

    @app.post("/cases/{case_id}/resolve")
    async def resolve_case(
        case_id: str, body: CaseResolutionBody, ctx: Context, who: Principal
    ) -> dict[str, Any]:
        try:
            resolution = Resolution(actor=who.person, **body.model_dump())
        except ValidationError as exc:
            raise HTTPException(422, describe_validation_error(exc)) from exc
        try:
            state = await resolve_case_update(ctx.client, ctx.pool, case_id, resolution)
        except CaseRefused as exc:
            raise HTTPException(409, f"refused: {exc.why}") from exc
        except RPCError as exc:
            raise HTTPException(404, f"no open case {case_id}: {exc.message}") from exc
        return state.model_dump(mode="json")


def _verify_hubspot(request: Request, settings: Settings, body: bytes) -> None:
    secrets = [
        s.get_secret_value()
        for s in (settings.hubspot_client_secret, settings.hubspot_client_secret_previous)
        if s
    ]
    base = settings.public_base_url or f"{request.url.scheme}://{request.url.netloc}"
    uri = hubspot_request_uri(base, request.url.path, request.url.query)
    try:
        verify_hubspot_v3(
            secrets=secrets, method=request.method, uri=uri, body=body,
            timestamp_header=request.headers.get("x-hubspot-request-timestamp"),
            signature_header=request.headers.get("x-hubspot-signature-v3"),
            now_ms=int(time.time() * 1000),
        )  # fmt: skip
    except WebhookAuthError as exc:
        raise HTTPException(401, f"webhook refused: {exc.reason}") from exc
    except ValueError as exc:  # no secret configured: our fault, HubSpot should retry
        raise HTTPException(503, f"webhook not configured: {exc}") from exc
