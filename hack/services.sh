#!/usr/bin/env bash
# Start (installing first where missing) the local services the tests use:
# PostgreSQL on 127.0.0.1:5432 (trust auth, database "test") and MariaDB on
# 127.0.0.1:3306 (root, empty password, database "test"). Safe to re-run.
set -euo pipefail

need_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "services.sh: $1 needs root; start it yourself or re-run as root" >&2
    return 1
  fi
}

apt_updated=""
apt_install() {
  need_root "installing $*"
  if [ -z "$apt_updated" ]; then
    apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  for _ in $(seq 1 60); do
    port_open "$1" && return 0
    sleep 0.5
  done
  echo "services.sh: nothing listens on 127.0.0.1:$1 after 30s" >&2
  return 1
}

start_postgres() {
  if ! port_open 5432; then
    command -v pg_ctlcluster >/dev/null || apt_install postgresql
    ver="$(ls /etc/postgresql | sort -V | tail -1)"
    conf="/etc/postgresql/$ver/main"
    # trust auth on loopback, as on the developers' machines
    if ! grep -q '^host all all 127.0.0.1/32 trust' "$conf/pg_hba.conf"; then
      sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\nlocal all all trust' "$conf/pg_hba.conf"
    fi
    pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
    wait_port 5432
  fi
  if ! psql -h 127.0.0.1 -U postgres -tAc "select 1 from pg_database where datname='test'" postgres 2>/dev/null | grep -q 1; then
    psql -h 127.0.0.1 -U postgres -c 'create database test' postgres >/dev/null 2>&1 ||
      su postgres -c "psql -c 'create database test'" >/dev/null
  fi
}

start_mariadb() {
  if ! port_open 3306; then
    command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || apt_install mariadb-server
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
    wait_port 3306
  fi
  # root with an empty password over TCP, and the test database
  mariadb_cli=$(command -v mariadb || command -v mysql || echo /usr/bin/mysql)
  "$mariadb_cli" -uroot -e "create database if not exists test" 2>/dev/null ||
    "$mariadb_cli" -h 127.0.0.1 -uroot -e "create database if not exists test"
  "$mariadb_cli" -h 127.0.0.1 -uroot -e "select 1" >/dev/null 2>&1 ||
    "$mariadb_cli" -uroot -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD(''); FLUSH PRIVILEGES;"
}

start_postgres
start_mariadb
echo "services.sh: PostgreSQL 127.0.0.1:5432 and MariaDB 127.0.0.1:3306 are up"
