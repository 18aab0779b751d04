# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The control API (plain HTTP on 127.0.0.1): faults, counters, writes, device-code approval, tokens.

Routes are listed in README.md.  Service-specific routes under /exchange/, /graph/ and /workstations/ go
to the ``control(req)`` method of the service that owns them.
"""

from __future__ import annotations

import os
import time

from .core import BadRequest, Response, Service


class ControlService(Service):
    name = "control"

    def __init__(self, sim, entra, endpoints=None, exchange=(), graph=None, workstations=None):
        self.sim = sim
        self.entra = entra
        self.endpoints = endpoints if endpoints is not None else {}
        self.exchange = [s for s in exchange if s is not None]
        self.graph = graph
        self.workstations = workstations
        self.started = time.time()

    def error_response(self, status, code, message, headers=None):
        return Response.json(status, {"error": {"code": code, "message": message}}, headers)

    def handle(self, req):
        route = (req.method, req.path.rstrip("/") or "/")
        method, path = route
        sim = self.sim
        if route == ("GET", "/health"):
            return Response.json(200, {"status": "ok", "pid": os.getpid(), "uptime": round(time.time() - self.started, 3)})
        if route == ("GET", "/endpoints"):
            return Response.json(200, self.endpoints)
        if route == ("GET", "/counters"):
            return Response.json(200, sim.counters.snapshot())
        if route == ("POST", "/counters/reset"):
            sim.counters.reset()
            return Response.json(200, {"reset": True})
        if path == "/faults":
            return self.faults(req)
        if route == ("GET", "/writes"):
            return Response.json(200, {"writes": sim.writes()})
        if route in (("DELETE", "/writes"), ("POST", "/writes/reset")):
            sim.clear_writes()
            return Response.json(200, {"reset": True})
        if route == ("POST", "/tokens/expire"):
            sim.tokens.expire_all()
            return Response.json(200, {"expired": True})
        if route == ("POST", "/tokens/issue"):
            spec = req.json() if req.body else {}
            try:
                return Response.json(200, self.entra.issue_for_control(spec if isinstance(spec, dict) else {}))
            except (ValueError, TypeError) as exc:
                raise BadRequest(str(exc)) from None
        if path.startswith("/device-codes"):
            return self.device_codes(req, method, path)
        if route == ("GET", "/msi/token"):
            return self.entra.managed_identity_token(req)
        for prefix, owners in (("/exchange/", self.exchange), ("/graph/", [self.graph]),
                               ("/workstations", [self.workstations])):
            if path.startswith(prefix) or path == prefix.rstrip("/"):
                for owner in owners:
                    control = getattr(owner, "control", None)
                    resp = control(req) if control is not None else None
                    if resp is not None:
                        return resp
        return None

    def faults(self, req):
        sim = self.sim
        if req.method == "GET":
            return Response.json(200, {"faults": sim.faults.list()})
        if req.method == "DELETE":
            sim.faults.clear()
            return Response.json(200, {"cleared": True})
        if req.method == "POST":
            spec = req.json()
            specs = spec if isinstance(spec, list) else [spec]
            added = [sim.faults.add(s).as_dict() for s in specs]
            return Response.json(201, {"fault": added[0]} if len(added) == 1 else {"faults": added})
        return Response.json(405, {"error": {"code": "MethodNotAllowed", "message": "Use GET, POST or DELETE."}})

    def device_codes(self, req, method, path):
        if (method, path) == ("GET", "/device-codes"):
            return Response.json(200, {"device_codes": self.entra.pending_device_codes()})
        if (method, path) == ("POST", "/device-codes/approve"):
            spec = req.json() if req.body else {}
            user = (spec or {}).get("user", "admin")
            result = self.entra.approve_device_codes(user, (spec or {}).get("user_code"))
            if result is None:
                raise BadRequest("Unknown user %r; known users: %s." % (user, ", ".join(sorted(self.sim.directory.users))))
            return Response.json(200, result)
        if (method, path) == ("POST", "/device-codes/expire"):
            return Response.json(200, {"expired": self.entra.expire_device_codes()})
        return None
