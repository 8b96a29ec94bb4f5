# bash completion for provision(1); make install puts it in
# $(PREFIX)/share/bash-completion/completions/provision.
#
# Completes the verbs, the options (read from `provision --help`, so they
# follow the binary), recipe files (*.lua), the help topics (from provision
# itself), step names for --only/--skip/--from and tags for --tags/--skip-tags
# (from `provision list --json`),
# variable names for -e/--var, and --host from the Host lines of
# ~/.ssh/config. Variable names: from `provision list --json RECIPE` when it
# prints variable events, else from the message provision gives for an
# unknown variable, which names them all.

# the options that take a value (the next word is that value, not a recipe)
_provision_takes_value() {
    case $1 in
        -e|--var|--only|--skip|--tags|--skip-tags|--from|--timeout|--state-dir|--host|--chdir|--forks|-i|--inventory|\
        --limit|--serial|--max-fail-percent|--script) return 0 ;;
    esac
    return 1
}

# the options `provision --help` (on stdin) lists: the words starting with -
# at the start of an option's line, and the options of the usage lines
_provision_options() {
    awk '/^ +-/ { for (i = 1; i <= NF; i++) { w = $i; sub(/,$/, "", w); if (w !~ /^-/) break; print w } }
         /^(usage:)? *provision / { for (i = 1; i <= NF; i++) if ($i ~ /^--[a-z]/) print $i }' | sort -u
}

# the provision being completed: the word typed, when it runs, else the one on PATH
_provision_prog() {
    local p=${COMP_WORDS[0]}
    p=${p/#\~/$HOME}
    if [[ $p == */* && -x $p ]] || command -v "$p" >/dev/null 2>&1; then
        printf '%s\n' "$p"
    else
        printf 'provision\n'
    fi
}

# _provision_vars PROG RECIPE: the recipe's variable names, one a line
_provision_vars() {
    local names
    names=$("$1" list --json -- "$2" 2>/dev/null |
        sed -n 's/.*"event":"variable".*"name":"\([^"]*\)".*/\1/p')
    if [[ -z $names ]]; then
        # `provision list --json` prints no variables: an unknown one is
        # refused with "unknown variable '...' (variables: a, b, c)"
        names=$(NO_COLOR=1 "$1" list -e __provision_complete__=1 -- "$2" 2>&1 >/dev/null |
            sed -n 's/.*unknown variable .*(variables: \(.*\))$/\1/p' | tr -d ',' | tr ' ' '\n')
    fi
    printf '%s\n' "$names"
}

# _provision_steps PROG RECIPE: the recipe's step names, one a line
_provision_steps() {
    "$1" list --json -- "$2" 2>/dev/null |
        sed -n 's/^{"event":"step",.*"name":"\(\([^"\\]\|\\.\)*\)".*/\1/p'
}

# _provision_tags PROG RECIPE: the tags its steps carry, one a line
_provision_tags() {
    "$1" list --json -- "$2" 2>/dev/null |
        sed -n 's/^{"event":"step",.*"tags":\[\([^]]*\)\].*/\1/p' | tr ',' '\n' | tr -d '"' | sort -u
}

# the Host entries of ~/.ssh/config (no patterns)
_provision_ssh_hosts() {
    [[ -r ~/.ssh/config ]] || return 0
    awk 'tolower($1) == "host" { for (i = 2; i <= NF; i++) if ($i !~ /[*?!]/) print $i }' ~/.ssh/config
}

_provision() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    local prog verb="" recipe="" ended="" i w
    prog=$(_provision_prog)
    COMPREPLY=()
    # bash splits words at "=" (COMP_WORDBREAKS): --host=w is --host, =, w
    # and -e k=v is -e, k, =, v
    [[ $cur == = ]] && return 0
    if [[ $prev == = ]]; then
        prev=${COMP_WORDS[COMP_CWORD-2]}
        _provision_takes_value "$prev" || return 0   # the value of -e KEY=
    fi
    # what is on the line already: the verb, the recipe, a "--"
    for (( i = 1; i < COMP_CWORD; i++ )); do
        w=${COMP_WORDS[i]}
        if [[ -z $ended && $w == = ]]; then (( i++ )); continue; fi
        if [[ -z $ended && $w == -- ]]; then ended=1; continue; fi
        if [[ -z $ended && $w == --script ]]; then return 0; fi   # a Lua file's own arguments
        if [[ -z $ended ]] && _provision_takes_value "$w"; then
            (( i++ ))
            [[ ${COMP_WORDS[i]} == = ]] && (( i++ ))
            continue
        fi
        if [[ -z $ended && $w == -* ]]; then continue; fi
        case $w in
            apply|plan|teardown|list|help) if [[ -z $verb && -z $recipe ]]; then verb=$w; continue; fi ;;
        esac
        [[ -z $recipe ]] && recipe=$w
    done
    if [[ -z $ended ]]; then
        case $prev in
            -e|--var)
                if [[ -n $recipe && $cur != *=* ]]; then
                    local v
                    while IFS= read -r v; do
                        [[ -n $v && $v == "$cur"* ]] && COMPREPLY+=("$v=")
                    done < <(_provision_vars "$prog" "$recipe")
                    compopt -o nospace 2>/dev/null
                elif [[ $cur == *=@* ]]; then   # KEY=@FILE
                    local key=${cur%%=@*}
                    while IFS= read -r v; do COMPREPLY+=("$key=@$v"); done < <(compgen -f -- "${cur#*=@}")
                fi
                return 0 ;;
            --only|--skip|--from)
                [[ -n $recipe ]] || return 0
                local s
                while IFS= read -r s; do
                    [[ -n $s && $s == "$cur"* ]] && COMPREPLY+=("$(printf '%q' "$s")")
                done < <(_provision_steps "$prog" "$recipe")
                return 0 ;;
            --tags|--skip-tags)
                [[ -n $recipe ]] || return 0
                local pre="" part=$cur t
                if [[ $cur == *,* ]]; then pre=${cur%,*},; part=${cur##*,}; fi
                while IFS= read -r t; do
                    [[ -n $t && $t == "$part"* ]] && COMPREPLY+=("$pre$t")
                done < <(_provision_tags "$prog" "$recipe")
                return 0 ;;
            --host)
                local pre="" part=$cur
                if [[ $cur == *,* ]]; then pre=${cur%,*},; part=${cur##*,}; fi
                local h
                while IFS= read -r h; do COMPREPLY+=("$pre$h"); done < <(compgen -W "local $(_provision_ssh_hosts)" -- "$part")
                return 0 ;;
            -i|--inventory|--script)
                while IFS= read -r w; do COMPREPLY+=("$w"); done < <(compgen -f -- "$cur")
                return 0 ;;
            --state-dir)
                while IFS= read -r w; do COMPREPLY+=("$w"); done < <(compgen -d -- "$cur")
                return 0 ;;
            --timeout|--chdir|--forks|--limit|--serial|--max-fail-percent)
                return 0 ;;
        esac
        if [[ $cur == -* ]]; then
            local opts
            opts=$("$prog" --help 2>/dev/null | _provision_options)
            while IFS= read -r w; do COMPREPLY+=("$w"); done < <(compgen -W "$opts" -- "$cur")
            return 0
        fi
    fi
    if [[ $verb == help ]]; then
        [[ -n $recipe ]] && return 0
        local topics
        topics=$("$prog" help __provision_complete__ 2>&1 | sed -n 's/.*topics: //p' | tr -d ',')
        while IFS= read -r w; do COMPREPLY+=("$w"); done < <(compgen -W "$topics" -- "$cur")
        return 0
    fi
    [[ -n $recipe || $verb == facts ]] && return 0
    if [[ -z $verb ]]; then
        while IFS= read -r w; do COMPREPLY+=("$w"); done < <(compgen -W "apply plan teardown list facts help" -- "$cur")
    fi
    # recipe files, and folders to find them in (hidden ones once "." is typed)
    local hide='*/.*'
    [[ ${cur##*/} == .* ]] && hide=''
    while IFS= read -r w; do [[ /$w == $hide ]] || COMPREPLY+=("$w"); done < <(compgen -f -X '!*.lua' -- "$cur")
    while IFS= read -r w; do [[ /$w == $hide ]] || COMPREPLY+=("$w/"); done < <(compgen -d -- "$cur")
    compopt -o filenames 2>/dev/null
    return 0
}
complete -F _provision provision
