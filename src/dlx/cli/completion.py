"""Shell completion that inserts what a person would type, in bash, zsh and fish.

Typer's own scripts get two things wrong for overrides: bash splits `model=` at the `=`
(one of its word breaks) and replaces only the text after it, so an answer of `=cnn` gave
`model==cnn`; and every shell adds a space after `opt.lr=`, where the value is still to come.
dlx's scripts here hand the line up to the cursor to `dlx`, which completes the whole word
(`model=cnn`) and gives bash only the part after its last word break; a key or block that is
not finished (`opt.lr=`, `opt.`) gets no space after it.

`dlx --show-completion` / `--install-completion` write these scripts; the protocol
(`_DLX_COMPLETE=complete_SHELL`) is Typer's, so nothing here imports torch.
"""

from __future__ import annotations

import os

from typer._click.shell_completion import add_completion_class, split_arg_string
from typer._completion_classes import BashComplete, FishComplete, ZshComplete
from typer.core import TyperGroup

BASH = r"""
%(complete_func)s() {
    local IFS=$'\n' c
    COMPREPLY=( $( env COMP_WORDS="${COMP_WORDS[*]}" COMP_CWORD=$COMP_CWORD \
                   _DLX_LINE="${COMP_LINE:0:COMP_POINT}" _DLX_BREAKS="$COMP_WORDBREAKS" \
                   %(autocomplete_var)s=complete_bash $1 2>/dev/null ) )
    for c in "${COMPREPLY[@]}"; do  # `opt.lr=`, `opt.`: the word goes on, no space yet
        [[ $c == *[=.] ]] && compopt -o nospace
    done
    return 0
}

complete -o default -F %(complete_func)s %(prog_name)s
"""

ZSH = r"""
#compdef %(prog_name)s

%(complete_func)s() {
  local -a whole open
  local c
  for c in ${(f)"$(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" \
                   %(autocomplete_var)s=complete_zsh %(prog_name)s 2>/dev/null)"}; do
    if [[ $c == *[=.] ]]; then open+=("$c"); else whole+=("$c"); fi
  done
  (( ${#open} )) && compadd -S '' -- "${open[@]}"  # `opt.lr=`: no space, the value follows
  (( ${#whole} )) && compadd -- "${whole[@]}"
  (( ${#open} + ${#whole} )) || _files
}

if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
  %(complete_func)s "$@"
else
  compdef %(complete_func)s %(prog_name)s
fi
"""

FISH = r"""
function %(complete_func)s
    set -l found (env %(autocomplete_var)s=complete_fish _TYPER_COMPLETE_FISH_ACTION=get-args \
        _TYPER_COMPLETE_ARGS=(commandline -cp) %(prog_name)s 2>/dev/null)
    if test (count $found) -gt 0
        printf '%%s\n' $found
    else
        __fish_complete_path (commandline -ct)
    end
end
complete --command %(prog_name)s --no-files --arguments '(%(complete_func)s)'
"""

_SCRIPTS = {"bash": BASH, "zsh": ZSH, "fish": FISH}


def _line_args(line: str) -> tuple[list[str], str]:
    """The words before the cursor, and the one being typed ("" after a space)."""
    words = split_arg_string(line)[1:]
    if words and line and not line[-1].isspace():
        return words[:-1], words[-1]
    return words, ""


class Bash(BashComplete):
    """bash: reads the line up to the cursor (`_DLX_LINE`) rather than COMP_WORDS, which bash
    has split at `=` and `:`; answers only what follows the last word break."""

    source_template = BASH
    _cut = ""

    def get_completion_args(self) -> tuple[list[str], str]:
        line = os.environ.get("_DLX_LINE")
        if line is None:  # a script from before: Typer's protocol
            return super().get_completion_args()
        args, incomplete = _line_args(line)
        tail = line.rsplit(None, 1)[-1] if line.strip() and not line[-1].isspace() else ""
        if not tail.startswith(("'", '"')):  # inside quotes a word break is text
            breaks = os.environ.get("_DLX_BREAKS", "\"'><=;|&(:")
            at = max((incomplete.rfind(b) for b in breaks), default=-1)
            self._cut = incomplete[: at + 1]
        return args, incomplete

    def format_completion(self, item) -> str:
        value = str(item.value)
        return value[len(self._cut) :] if value.startswith(self._cut) else value


class Zsh(ZshComplete):
    """zsh: one completion a line; the script adds them (no space after `=` or `.`)."""

    source_template = ZSH

    def format_completion(self, item) -> str:
        return str(item.value)

    def complete(self) -> str:
        args, incomplete = self.get_completion_args()
        return "\n".join(self.format_completion(i) for i in self.get_completions(args, incomplete))


class Fish(FishComplete):
    """fish: whole words (fish replaces the whole token; no space after `=`)."""

    source_template = FISH

    def format_completion(self, item) -> str:
        return str(item.value)


def use_dlx_scripts() -> None:
    """Make completion, `--show-completion` and `--install-completion` use dlx's scripts.
    Called as the command starts: Typer registers its own classes while building it."""
    from typer import _completion_shared

    for name, cls in (("bash", Bash), ("zsh", Zsh), ("fish", Fish)):
        add_completion_class(cls, name)
        _completion_shared._completion_scripts[name] = _SCRIPTS[name]


class Group(TyperGroup):
    """The `dlx` group: dlx's completion scripts and classes, registered as it starts."""

    def main(self, *args, **kwargs):
        use_dlx_scripts()
        return super().main(*args, **kwargs)
