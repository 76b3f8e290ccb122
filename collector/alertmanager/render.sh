#!/bin/sh
# Render an Alertmanager config template: replace ${NAME} and ${NAME:-default} with
# environment values (Alertmanager itself does not expand environment variables).
# A placeholder without a default whose variable is unset stops with an error.
# Usage: render.sh TEMPLATE OUTPUT [command args...]   (runs the command after rendering)
set -eu
template=$1
output=$2
shift 2
awk '
{
  line = $0; out = ""
  while (match(line, /\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}/)) {
    token = substr(line, RSTART + 2, RLENGTH - 3)
    name = token; def = ""; has_def = 0
    i = index(token, ":-")
    if (i > 0) { name = substr(token, 1, i - 1); def = substr(token, i + 2); has_def = 1 }
    if (name in ENVIRON && ENVIRON[name] != "") value = ENVIRON[name]
    else if (has_def) value = def
    else { printf("render.sh: %s line %d: environment variable %s is not set\n", FILENAME, NR, name) > "/dev/stderr"; failed = 1; value = "" }
    out = out substr(line, 1, RSTART - 1) value
    line = substr(line, RSTART + RLENGTH)
  }
  print out line
}
END { exit failed }
' "$template" > "$output"
if [ "$#" -gt 0 ]; then
  exec "$@"
fi
