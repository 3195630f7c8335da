"""``plait retain`` (a name's retention policy) and ``plait ttl`` (a version's expiry); ``plait gc``
applies both (see :mod:`plait.ops.retention`)."""

from __future__ import annotations

import click

from plait.cli.app import Context, main, pass_ctx, table


@main.command("retain")
@click.argument("name", required=False)
@click.option("--keep-last", type=int, default=None, metavar="N", help="Keep the N versions logged most recently.")
@click.option("--keep-aliased/--no-keep-aliased", default=True, show_default=True,
              help="Keep every version an alias points at (else such a version expires and loses its aliases).")
@click.option("--keep-tagged", "keep_tagged", multiple=True, metavar="TAG", help="Keep versions carrying TAG (repeatable).")
@click.option("--older-than", default=None, metavar="DURATION", help="Expire only versions last logged longer ago (30d).")
@click.option("--clear", is_flag=True, help="Remove NAME's policy.")
@pass_ctx
def retain(ctx: Context, name: str | None, keep_last: int | None, keep_aliased: bool, keep_tagged: tuple[str, ...],
           older_than: str | None, clear: bool) -> None:
    """Set which versions of NAME `plait gc --delete` expires (or list every policy, without NAME).

    The policy is a store setting everyone shares; it says what it would expire now, and one that
    would expire every version of NAME is refused.
    """
    from plait.errors import InvalidInputError

    store = ctx.store
    if name is None:
        if clear or keep_last is not None or keep_tagged or older_than is not None:
            raise InvalidInputError("give the artifact NAME the policy is for: plait retain NAME --keep-last 5")
        found = store.retention()
        ctx.emit({n: p.to_json() for n, p in found.items()},
                 table([[n, str(p)] for n, p in found.items()], ["NAME", "POLICY"]) if found else "no retention policies")
        return
    if clear:
        store.forget_retention(name)
        ctx.emit({"name": name, "policy": None}, f"{name}: no retention policy")
        return
    report = store.retain(name, keep_last=keep_last, keep_aliased=keep_aliased, keep_tagged=keep_tagged,
                          older_than=older_than)
    policy = store.retention()[name]
    lines = [f"{name}: {policy}"]
    lines += [f"  gc --delete would expire {d.spec}: {d.reason}" for d in report.expired]
    lines += [f"  keeps {d.spec}: {d.reason}" for d in report.kept]
    ctx.emit({"name": name, "policy": policy.to_json(), **report.to_dict()}, "\n".join(lines))


@main.command("ttl")
@click.argument("spec")
@click.argument("duration", required=False)
@click.option("--clear", is_flag=True, help="Remove the version's TTL.")
@pass_ctx
def ttl(ctx: Context, spec: str, duration: str | None, clear: bool) -> None:
    """Let `plait gc --delete` delete version SPEC DURATION from now (30d, 12h, 1w2d); --clear removes it."""
    from plait.errors import InvalidInputError

    if clear == (duration is not None):
        raise InvalidInputError("give a DURATION (plait ttl SPEC 30d) or --clear, not both")
    v = ctx.store.get(spec).set_ttl(None if clear else duration)
    ctx.emit({"spec": v.spec, "expires_at": v.expires_at},
             f"{v.spec} expires {v.expires_at}" if v.expires_at else f"{v.spec} never expires")
