"""Click group `terraform` (thin: parse options, call commands.terraform, print the result)."""

from __future__ import annotations

import click

from federation_deploy.cli.context import Context, confirm_or_abort
from federation_deploy.cli.output import emit
from federation_deploy.cli.params import SuggestingGroup, member_argument
from federation_deploy.commands import terraform as commands


@click.group(cls=SuggestingGroup)
def terraform() -> None:
    """Pinned terraform for a member's stack (terraform/<cloud>/<member>).

    Every command refuses a terraform other than the version federation.yaml pins
    (terraform.version; exit 2). init runs with -lockfile=readonly: the committed
    .terraform.lock.hcl is never rewritten, except by `lock`. Variables such as the region,
    cluster name and Kubernetes version come from the member's entry in federation.yaml.

    \b
    Environment:
      TF_PLUGIN_MIRROR=DIR  install providers from this filesystem mirror only
                            (where the registry cannot be reached)
      AWS_ENDPOINT_URL=URL  point AWS stacks at an emulator, e.g. moto_server at
                            http://127.0.0.1:5000 (with test credentials)
    """


@terraform.command()
@member_argument
@click.pass_obj
def bootstrap(obj: Context, member: str) -> None:
    """Create the S3 state bucket and DynamoDB lock table MEMBER's backend names.

    Reads bucket, table and region from the `backend "s3"` block of MEMBER's stack and applies
    terraform/aws/bootstrap with them (versioned bucket, public access blocked). Idempotent:
    a second run changes nothing; a bucket or table that already exists is adopted.
    """
    emit(obj, commands.bootstrap(obj.federation(), member, obj.runner()))


@terraform.command()
@member_argument
@click.pass_obj
def init(obj: Context, member: str) -> None:
    """terraform init MEMBER's stack with the lock file read-only.

    A missing lock file, or one whose versions or checksums do not match, fails with
    terraform's reason and a hint; the file is left as it was. plan, check and output run init
    themselves when the stack or lock file changed since the last one.
    """
    emit(obj, commands.init(obj.federation(), member, obj.runner()))


@terraform.command()
@member_argument
@click.pass_obj
def plan(obj: Context, member: str) -> None:
    """Plan MEMBER's stack and save the plan for `apply`.

    Stdout: terraform's plan. The plan is saved in the stack's working area (.fd-work/,
    git-ignored); `terraform apply MEMBER` applies exactly that plan.
    """
    emit(obj, commands.plan(obj.federation(), member, obj.runner()))


@terraform.command()
@member_argument
@click.option("--yes", "-y", is_flag=True,
              help="Do not ask for confirmation (also skipped when CI is set).")
@click.pass_obj
def apply(obj: Context, member: str, yes: bool) -> None:
    """Apply the plan `plan MEMBER` saved, and save the outputs.

    Refuses when there is no saved plan, or when it is stale (the stack, lock file or the state
    changed since). Asks for confirmation unless --yes or CI. After applying, the outputs are
    written to CONFIG_DIR/generated/MEMBER.terraform.json, which `render` layers into the
    member's values (commit it). A state locked by another run fails with who holds it.
    """
    result = commands.apply(obj.federation(), member, obj.runner(),
                            confirm=lambda question: confirm_or_abort(question, yes))
    emit(obj, result)


@terraform.command()
@member_argument
@click.pass_obj
def check(obj: Context, member: str) -> None:
    """Drift detection: plan MEMBER's stack without saving it.

    Exit 0: no drift; 3: the infrastructure differs from the stack (the plan is printed);
    1: terraform failed.
    """
    emit(obj, commands.check(obj.federation(), member, obj.runner()))


@terraform.command()
@member_argument
@click.option("--output", "-o", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True,
              help="text: `name = value` lines; json: terraform's `output -json` object.")
@click.pass_obj
def output(obj: Context, member: str, fmt: str) -> None:
    """Print the outputs of MEMBER's stack, read from its state.

    Sensitive values are redacted. The same outputs are saved after every apply to
    CONFIG_DIR/generated/MEMBER.terraform.json for `render`.
    """
    emit(obj, commands.output(obj.federation(), member, obj.runner(), fmt))


@terraform.command()
@member_argument
@click.pass_obj
def lock(obj: Context, member: str) -> None:
    """Write MEMBER's .terraform.lock.hcl: the one command that does.

    Runs `terraform providers lock` for linux_amd64 and darwin_arm64. With TF_PLUGIN_MIRROR
    set, checksums come from that mirror, and only for the platforms it holds (the others are
    named in a warning). Review and commit the result.
    """
    emit(obj, commands.lock(obj.federation(), member, obj.runner()))


COMMANDS: list[click.Command] = [terraform]
