"""`status --html FILE`: the status page, rendered with Jinja2 from the package's template.

A template engine rather than string building: the page's layout stays readable in one file
(controller/templates/status.html.j2, shipped as package data), and autoescaping makes every
value from the shares (an error message, a box name) inert text. StrictUndefined turns a typo
in the template into an error in the tests instead of an empty cell in production.
"""

from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from controller.core.status_view import PageView
from controller.errors import ControllerError
from onbox.atomic import atomic_write_text

_ENV = Environment(
    loader=PackageLoader("controller", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)


def render_status_page(page: PageView) -> str:
    return _ENV.get_template("status.html.j2").render(page=page)


def write_status_page(page: PageView, out: Path) -> None:
    """Write the page atomically (a web server or CI artifact never sees half a file)."""
    try:
        atomic_write_text(out, render_status_page(page), 0o644)
    except OSError as exc:
        raise ControllerError(
            f"{out}: cannot write the status page: {exc.strerror or exc}"
        ) from None
