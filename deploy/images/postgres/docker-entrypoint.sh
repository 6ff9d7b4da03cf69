#!/bin/bash
# What the official postgres image's entrypoint does with the settings the dev overlay gives it: POSTGRES_USER,
# POSTGRES_PASSWORD and POSTGRES_DB (or their _FILE forms), PGDATA; on an empty PGDATA, initdb with password
# authentication over the network, then /docker-entrypoint-initdb.d's *.sql and *.sh; then the server.
set -Eeuo pipefail

from_file() {
	local var="$1" file="${1}_FILE"
	if [ -n "${!file:-}" ]; then
		export "$var"="$(<"${!file}")"
	fi
}

if [ "${1:-}" = postgres ]; then
	from_file POSTGRES_USER
	from_file POSTGRES_PASSWORD
	: "${POSTGRES_USER:=postgres}" "${POSTGRES_DB:=$POSTGRES_USER}"
	: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE is required}"
	mkdir -p "$PGDATA"
	chmod 700 "$PGDATA"
	if [ ! -s "$PGDATA/PG_VERSION" ]; then
		initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
			--encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 -D "$PGDATA" >/dev/null
		echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
		pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
		psql=(psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER")
		if [ "$POSTGRES_DB" != postgres ]; then
			"${psql[@]}" --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";' >/dev/null
		fi
		for f in /docker-entrypoint-initdb.d/*; do
			case "$f" in
			*.sql) echo "running $f" && "${psql[@]}" --dbname "$POSTGRES_DB" -f "$f" >/dev/null ;;
			*.sh) echo "running $f" && . "$f" ;;
			esac
		done
		pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
		echo "PostgreSQL init process complete; ready for start up."
	fi
	exec postgres -c listen_addresses='*' "${@:2}"
fi
exec "$@"
