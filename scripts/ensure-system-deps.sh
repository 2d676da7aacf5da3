#!/usr/bin/env bash
# Make sure the system packages the test suite needs are present (Debian 12 "bookworm").
#
#   * PostgreSQL server binaries (initdb, pg_ctl, postgres) + psql  -> postgresql
#   * /usr/bin/chromium and /usr/bin/chromedriver                   -> chromium, chromium-driver
#   * pdftoppm                                                      -> poppler-utils
#   * a Japanese font (Noto CJK or IPAex) + fc-list                 -> fonts-noto-cjk, fontconfig
#
# Idempotent: when everything is there it only prints what it found.  Missing pieces are
# installed with apt-get (as root, or through passwordless sudo); nothing is ever downloaded
# any other way (in particular no browser builds).  Exits non-zero with a clear message when
# something needed is missing and cannot be installed.
#
# Environment:
#   SHOKAI_PG_BIN        directory holding initdb/pg_ctl/postgres (overrides discovery)
#   SHOKAI_SKIP_BROWSER  set to 1 to neither check nor install chromium/chromedriver
set -euo pipefail

log() { printf 'ensure-system-deps: %s\n' "$*"; }
die() { printf 'ensure-system-deps: ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- checks -------------

# Prints the PostgreSQL bin dir (with initdb, pg_ctl and postgres) or returns 1.
find_pg_bindir() {
    local d candidates=()
    if [[ -n "${SHOKAI_PG_BIN:-}" ]]; then
        if [[ -x "$SHOKAI_PG_BIN/initdb" && -x "$SHOKAI_PG_BIN/pg_ctl" && -x "$SHOKAI_PG_BIN/postgres" ]]; then
            candidates+=("$SHOKAI_PG_BIN")
        else
            log "warning   SHOKAI_PG_BIN=$SHOKAI_PG_BIN has no initdb/pg_ctl/postgres; ignoring it" >&2
        fi
    fi
    if command -v pg_config >/dev/null 2>&1; then
        d="$(pg_config --bindir 2>/dev/null || true)"
        [[ -n "$d" ]] && candidates+=("$d")
    fi
    # newest version first
    local versioned=(/usr/lib/postgresql/*/bin)
    if [[ -e "${versioned[0]}" ]]; then
        while IFS= read -r d; do
            [[ -n "$d" ]] && candidates+=("$d")
        done < <(printf '%s\n' "${versioned[@]}" | sort -t/ -k4,4 -V -r)
    fi
    for d in "${candidates[@]}"; do
        if [[ -x "$d/initdb" && -x "$d/pg_ctl" && -x "$d/postgres" ]]; then
            printf '%s\n' "$d"
            return 0
        fi
    done
    return 1
}

have_psql() {
    local bindir="$1"
    [[ -x /usr/bin/psql || -x "$bindir/psql" ]]
}

have_ja_font() {
    if command -v fc-list >/dev/null 2>&1 && [[ -n "$(fc-list :lang=ja 2>/dev/null | head -n 1)" ]]; then
        return 0
    fi
    local f
    for f in /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc \
        /usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc \
        /usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf \
        /usr/share/fonts/opentype/ipaexfont-mincho/ipaexm.ttf \
        /usr/share/fonts/truetype/fonts-japanese-gothic.ttf; do
        [[ -e "$f" ]] && return 0
    done
    return 1
}

# Fills the global MISSING (apt package names) and prints one line per item.
MISSING=()
check_all() {
    local quiet="${1:-}" bindir
    MISSING=()
    if bindir="$(find_pg_bindir)" && have_psql "$bindir"; then
        [[ -n "$quiet" ]] || log "found     postgresql server binaries in $bindir"
    else
        [[ -n "$quiet" ]] || log "missing   postgresql server binaries (initdb, pg_ctl, postgres, psql)"
        MISSING+=(postgresql)
    fi
    if [[ "${SHOKAI_SKIP_BROWSER:-0}" != 1 ]]; then
        if [[ -x /usr/bin/chromium ]]; then
            [[ -n "$quiet" ]] || log "found     /usr/bin/chromium"
        else
            [[ -n "$quiet" ]] || log "missing   /usr/bin/chromium"
            MISSING+=(chromium)
        fi
        if [[ -x /usr/bin/chromedriver ]]; then
            [[ -n "$quiet" ]] || log "found     /usr/bin/chromedriver"
        else
            [[ -n "$quiet" ]] || log "missing   /usr/bin/chromedriver"
            MISSING+=(chromium-driver)
        fi
    fi
    if command -v pdftoppm >/dev/null 2>&1; then
        [[ -n "$quiet" ]] || log "found     pdftoppm ($(command -v pdftoppm))"
    else
        [[ -n "$quiet" ]] || log "missing   pdftoppm"
        MISSING+=(poppler-utils)
    fi
    if ! command -v fc-list >/dev/null 2>&1; then
        [[ -n "$quiet" ]] || log "missing   fc-list"
        MISSING+=(fontconfig)
    fi
    if have_ja_font; then
        [[ -n "$quiet" ]] || log "found     Japanese font"
    else
        [[ -n "$quiet" ]] || log "missing   Japanese font"
        MISSING+=(fonts-noto-cjk)
    fi
}

# ---------------------------------------------------------------- install ------------

check_all
if [[ ${#MISSING[@]} -eq 0 ]]; then
    log "all system dependencies present"
    exit 0
fi

SUDO=()
if [[ "$(id -u)" -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
        SUDO=(sudo -n)
    else
        die "missing packages: ${MISSING[*]}; not root and passwordless sudo is unavailable." \
            "Install them with: apt-get install --no-install-recommends ${MISSING[*]}"
    fi
fi
command -v apt-get >/dev/null 2>&1 || die "missing packages: ${MISSING[*]}; apt-get not found (Debian 12 expected)"

export DEBIAN_FRONTEND=noninteractive
log "installing ${MISSING[*]} (apt-get)"
# Bounded: a hung mirror must not stall CI forever.
if ! timeout 900 "${SUDO[@]}" apt-get update -q >/tmp/ensure-system-deps.apt-update.log 2>&1; then
    tail -n 20 /tmp/ensure-system-deps.apt-update.log >&2 || true
    die "apt-get update failed (log: /tmp/ensure-system-deps.apt-update.log)"
fi
if ! timeout 1800 "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends "${MISSING[@]}" >/tmp/ensure-system-deps.apt-install.log 2>&1; then
    tail -n 30 /tmp/ensure-system-deps.apt-install.log >&2 || true
    die "apt-get install ${MISSING[*]} failed (log: /tmp/ensure-system-deps.apt-install.log)"
fi

# Fresh fonts must be visible to fontconfig right away.
if command -v fc-cache >/dev/null 2>&1; then
    "${SUDO[@]}" fc-cache -f >/dev/null 2>&1 || true
fi

WANTED=("${MISSING[@]}")
check_all quiet
if [[ ${#MISSING[@]} -ne 0 ]]; then
    die "still missing after apt-get install: ${MISSING[*]}"
fi
for pkg in "${WANTED[@]}"; do
    log "installed $pkg"
done
check_all
log "all system dependencies present"
