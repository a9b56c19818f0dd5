"""Rendering an operator page inside the operator layout (header, logout, theme toggle).

Every operator page extends `templates/operator/base.html`, which extends the admin's base
and needs the admin site's context: without it the page shows the stock header and no logout.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def render_operator(request: HttpRequest, template: str, context: dict[str, Any]) -> HttpResponse:
    """`render` with the admin site's context under the page's own."""
    return render(request, template, {**admin.site.each_context(request), **context})
