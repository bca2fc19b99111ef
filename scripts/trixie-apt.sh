# Sourced: apt for Debian 13 (trixie) packages on this Debian 12 host, with its own state under
# $QGA_CACHE/trixie-apt (sources, lists, archives), so the host's apt state and sources stay bookworm.
# Defines the array TRIXIE_APT (apt-get with those options; add a command) and trixie_lists, which
# fetches the package lists once (the Debian mirror is the only network it needs) and prints nothing.
trixie_state=${QGA_CACHE:-/var/cache/qga-gateway}/trixie-apt
TRIXIE_APT=(apt-get -q -o Dir::Etc::sourcelist="$trixie_state/sources.list" -o Dir::Etc::sourceparts=-
            -o Dir::State::Lists="$trixie_state/lists" -o Dir::Cache="$trixie_state/cache"
            -o Dir::State::status=/dev/null)
TRIXIE_APT_CACHE=(apt-cache -o Dir::Etc::sourcelist="$trixie_state/sources.list" -o Dir::Etc::sourceparts=-
            -o Dir::State::Lists="$trixie_state/lists" -o Dir::Cache="$trixie_state/cache"
            -o Dir::State::status=/dev/null)
trixie_lists() {
    mkdir -p "$trixie_state/lists/partial" "$trixie_state/cache/archives/partial"
    echo "deb ${QGA_DEBIAN_MIRROR:-http://deb.debian.org/debian} trixie main" > "$trixie_state/sources.list.new"
    if ! cmp -s "$trixie_state/sources.list.new" "$trixie_state/sources.list"; then
        mv "$trixie_state/sources.list.new" "$trixie_state/sources.list"
        rm -f "$trixie_state"/lists/*Packages*
    else
        rm -f "$trixie_state/sources.list.new"
    fi
    compgen -G "$trixie_state/lists/*Packages*" >/dev/null || "${TRIXIE_APT[@]}" update >&2
}
