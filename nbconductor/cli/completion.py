"""Shell completion for the ``nbconductor`` command: ``nbconductor completion bash|zsh``.

The script is generated from :func:`~nbconductor.cli.parser.build_parser`, so it always
offers the commands and options the installed version accepts; it needs nothing at
completion time (no Python start per key press, unlike argcomplete, which would also be
one more dependency). zsh runs the bash script through ``bashcompinit``.
"""

from __future__ import annotations

import argparse

__all__ = ("SHELLS", "completion_script")

SHELLS = ("bash", "zsh")

# Options whose value is a file (completed as paths); NOTEBOOK.ipynb is the worker's.
_FILE_OPTIONS = ("--db", "--parquet")


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return sorted(o for a in parser._actions for o in a.option_strings if o.startswith("--"))


def completion_script(parser: argparse.ArgumentParser, shell: str) -> str:
    """The completion script for ``shell`` (one of :data:`SHELLS`).

    Install with ``eval "$(nbconductor completion bash)"`` in ``~/.bashrc`` (``zsh`` in
    ``~/.zshrc``).

    Raises:
        ValueError: ``shell`` is not one of :data:`SHELLS`.
    """
    if shell not in SHELLS:
        raise ValueError(f"no completion for shell {shell!r}; choose one of {', '.join(SHELLS)}")
    commands = _commands(parser)
    cases = []
    for name, sub in commands.items():
        actions = _commands(sub)
        if actions:  # schedules ACTION: the action, then its options
            inner = "\n".join(
                f"            {a}) words='{' '.join(_options(p))}' ;;" for a, p in actions.items()
            )
            cases.append(
                f"        {name})\n"
                f'            case "$action" in\n{inner}\n'
                f"            *) words='{' '.join(actions)} {' '.join(_options(sub))}' ;;\n"
                "            esac ;;"
            )
        else:
            cases.append(f"        {name}) words='{' '.join(_options(sub))}' ;;")
    top = " ".join([*commands, *_options(parser)])
    files = "|".join(_FILE_OPTIONS)
    script = f"""\
# nbconductor {shell} completion: eval "$(nbconductor completion {shell})"
_nbconductor() {{
    local cur prev command="" action="" word words i
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    case "$prev" in
        {files}) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    esac
    for ((i = 1; i < COMP_CWORD; i++)); do
        word="${{COMP_WORDS[i]}}"
        case "$word" in
            --db|--timeout) ((i++)) ;;
            -*) ;;
            *) if [ -z "$command" ]; then command="$word"
               elif [ -z "$action" ]; then action="$word"; fi ;;
        esac
    done
    words='{top}'
    case "$command" in
{chr(10).join(cases)}
    esac
    if [ "$command" = worker ] && [[ "$cur" != -* ]]; then
        COMPREPLY=($(compgen -f -X '!*.ipynb' -- "$cur") $(compgen -d -- "$cur"))
        return
    fi
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}}
complete -o default -F _nbconductor nbconductor
"""
    if shell == "zsh":
        script = "autoload -U +X bashcompinit && bashcompinit\n" + script
    return script
