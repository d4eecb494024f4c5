"""`learnerfit prompts [list | show NAME...]`: the Oracle's prompt templates, exactly as the Oracle gets them."""

from __future__ import annotations

import argparse

from learnerfit.domain.oracle.prompts import all_templates, template
from learnerfit.errors import NotFound


def cmd_list(args: argparse.Namespace) -> int:
    for template_id, prompt in all_templates().items():
        print(f"{template_id:<20} {prompt.path}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    chosen = []
    for name in args.names or [t.name for t in all_templates().values()]:
        base, _, version = name.partition(".v")
        try:
            chosen.append(template(base, int(version) if version else None))
        except (KeyError, ValueError) as exc:
            raise NotFound(f"prompt {name!r}: {exc.args[0]}") from None
    for prompt in dict.fromkeys(chosen):
        fields = ", ".join(sorted(prompt.fields))
        print(f"=== {prompt.id} ({prompt.path.name}; fields: {fields})\n[system]\n{prompt.system}\n[user]\n"
              f"{prompt.user}\n")
    return 0


def register(commands, common: argparse.ArgumentParser) -> None:
    prompts = commands.add_parser("prompts", parents=[common], help="the Oracle's prompt templates (versioned files)")
    prompts.set_defaults(func=cmd_list)
    sub = prompts.add_subparsers(dest="prompts_command", metavar="{list,show}")
    sub.add_parser("list", parents=[common], help="every template id and its file").set_defaults(func=cmd_list)
    show = sub.add_parser("show", parents=[common], help="print templates exactly as the Oracle gets them")
    show.add_argument("names", nargs="*", help="template names or ids, e.g. rewrite or rewrite.v1 (default: all)")
    show.set_defaults(func=cmd_show)
