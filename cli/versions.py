"""``durably publish-version``, ``update-alias`` and ``list-versions``: a function's published code."""

from __future__ import annotations

from typing import Any

import click
from durably.cli import render
from durably.cli.execute import cwd_on_path
from durably.cli.inputs import lambda_name
from durably.cli.settings import command_options, database_options, open_engine, open_reader, settings
from rich import box
from rich.table import Table
from rich.text import Text


@click.command("publish-version", short_help="Snapshot a handler's code as a function's next version.")
@click.argument("function_name", metavar="FUNCTION")
@click.argument("ref", metavar="MODULE:FUNCTION")
@click.option("--description", default="", help="Kept with the version (shown by list-versions).")
@command_options
def publish_version(function_name: str, ref: str, description: str) -> None:
    """Copy the code MODULE:FUNCTION (or path/file.py:FUNCTION) imports as FUNCTION's next version.

    A file's whole folder is copied (a module's top-level package), without __pycache__, hidden
    entries and the database's folder, to <database folder>/versions/FUNCTION/N/. Start it with
    `durably run FUNCTION:N`, or through an alias (`durably update-alias`).
    """
    lambda_name(function_name, "FUNCTION")
    cwd_on_path()
    with open_engine() as engine:
        published = engine.service.publish_version(function_name, ref, description)
    render.print_answer(published, f"published {function_name} version {published['Version']}: "
                                   f"{published['FunctionArn']}")


@click.command("update-alias", short_help="Point an alias of a function at one of its versions.")
@click.argument("function_name", metavar="FUNCTION")
@click.argument("alias")
@click.argument("version")
@command_options
def update_alias(function_name: str, alias: str, version: str) -> None:
    """Point ALIAS of FUNCTION at its published VERSION (creating the alias if new).

    Executions started on the alias keep the version they started with until they end.
    """
    lambda_name(function_name, "FUNCTION")
    with open_engine() as engine:
        updated = engine.service.update_alias(function_name, alias, version)
    render.print_answer(updated, f"{function_name}:{alias} is version {updated['FunctionVersion']}: "
                                 f"{updated['AliasArn']}")


@click.command("list-versions", short_help="List a function's published versions and aliases.")
@click.argument("function_name", metavar="FUNCTION")
@command_options
def list_versions(function_name: str) -> None:
    """List FUNCTION's published versions, oldest first, with the aliases pointing at each."""
    lambda_name(function_name, "FUNCTION")
    with open_reader() as service:
        listed = service.list_versions(function_name)
    if settings().json:
        render.print_json(listed)
    else:
        _print_versions(listed)


def _print_versions(listed: dict[str, Any]) -> None:
    if not listed["Versions"]:
        render.print_line(f"{listed['FunctionName']} has no published versions (it runs $LATEST).")
        return
    aliases: dict[str, list[str]] = {}
    for alias in listed["Aliases"]:
        aliases.setdefault(alias["FunctionVersion"], []).append(alias["Name"])
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in ("Version", "Aliases", "Published (UTC)", "Code SHA-256"):
        table.add_column(column, no_wrap=True)
    table.add_column("Description", overflow="fold")
    for version in listed["Versions"]:
        table.add_row(Text(version["Version"]), Text(", ".join(aliases.get(version["Version"], []))),
                      Text(render.clock(version["CreatedTimestamp"], date=True)), Text(version["CodeSha256"][:12]),
                      Text(version["Description"]))
    render.emit(table)


@click.command("delete-function", short_help="Delete a function, its versions and its closed executions.")
@click.argument("function_name", metavar="FUNCTION")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@database_options
def delete_function(function_name: str, yes: bool) -> None:
    """Delete FUNCTION: its registration, published versions (and their copied code), aliases, and
    its closed executions with their histories and logs. Refused while one is RUNNING (stop it first).

    Closed executions are otherwise purged on their own once their retention period is over.
    """
    lambda_name(function_name, "FUNCTION")
    if not yes and not click.confirm(f"Delete {function_name}, its versions and all its executions?", err=True):
        raise click.Abort
    with open_engine() as engine:
        deleted = engine.delete_function(function_name)
    render.print_answer(deleted, f"deleted {function_name}: {deleted['DeletedExecutions']} execution(s), "
                                 f"{deleted['DeletedVersions']} version(s)")
