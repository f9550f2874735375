"""``durably redrive``: recover an ended execution in a new one, once the cause of its failure is fixed."""

from __future__ import annotations

import click
from durably.cli import render
from durably.cli.errors import BadInput
from durably.cli.execute import drive, print_outcome, running_here
from durably.cli.inputs import lambda_name
from durably.cli.logs import CLI_LOGGER, log_options
from durably.cli.resolve import execution_arn, quoted
from durably.cli.settings import command_options, open_engine


@click.command("redrive", short_help="Recover a failed execution in a new one, after the fix.")
@click.argument("execution", metavar="ARN_OR_NAME")
@click.option("--from", "from_operation", metavar="OPERATION_NAME",
              help="Redrive from the first operation of this name: keep only what ended before it started.")
@click.option("--name", metavar="NAME", help="The new execution's name [default: <original name>-redrive-<n>].")
@click.option("--wait", is_flag=True, help="Drive the new execution in this process until it ends, as `run` does.")
@log_options
@command_options
def redrive(execution: str, from_operation: str | None, name: str | None, wait: bool, log_level: str,
            log_format: str, quiet: bool) -> None:
    """Recover the FAILED, TIMED_OUT or STOPPED execution ARN_OR_NAME (its ARN, name or the start of
    its id) once the cause is fixed.

    A new execution of the same function and input starts with the original's operations that
    completed before the failure: they replay from their results, their code does not run again;
    the rest runs on the current code. Steps a saga compensated are run again, as are steps still
    running at the failure. The original is left as it is; the new one names it (RedriveOf).

    Without --wait it prints the new ARN (quoted for the shell) for `durably worker` to run; with
    --wait it runs it here and exits as `durably run` does (1 unless it SUCCEEDED).
    """
    lambda_name(name, "--name")
    if from_operation is not None and not from_operation.strip():
        raise BadInput("--from needs the name of an operation")
    if not wait:
        with open_engine(create=False) as engine:
            original = engine.get_execution(execution_arn(engine.service, execution))
            new_arn = engine.redrive(original["DurableExecutionArn"], from_operation=from_operation, name=name)
            started = engine.get_execution(new_arn)
            kept = len(engine.service.all_operations(new_arn)) - 1
        render.print_answer(started, f"Redrive of {original['DurableExecutionName']}, keeping {kept} operation(s); "
                                     f"`durably worker` runs it:\n{quoted(new_arn)}")
        return
    with running_here(log_level, log_format, quiet, create=False) as engine:
        original_arn = execution_arn(engine.service, execution)
        new_arn = engine.redrive(original_arn, from_operation=from_operation, name=name)
        CLI_LOGGER.info("redriving %s as %s", quoted(original_arn), quoted(new_arn))
        spec = engine.resolve(engine.get_execution(new_arn)["FunctionArn"].split(":function:")[-1])
        outcome = drive(engine, new_arn, spec.ref if spec else None, False, quiet)
    print_outcome(*outcome)
