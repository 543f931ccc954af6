#!/usr/bin/env bash
# gen-certs.sh makes the posguard broker PKI with openssl: a CA, the broker's
# server certificate, and client certificates whose CN is the MQTT username
# (Mosquitto use_identity_as_username):
#   hq.crt                  CN hq
#   hq-NAME.crt             CN hq-NAME (another HQ instance, policy push)
#   display.STORE.crt       CN display/STORE
#   bridge.STORE.crt        CN bridge/STORE (a store broker's bridge to HQ)
#   reg.STORE.REG.crt       CN STORE/REG
# the ACL file (scripts/mosquitto/acl plus one block per display, per
# register, per store bridge and per further HQ identity found in the output
# directory) and, per store bridge, store-bridge.STORE.conf
# (scripts/mosquitto/store-bridge.conf for that store). Keys are P-256, mode 0600. An existing CA in the
# output directory is reused, so the script can be run again to add
# registers; existing certificates are left alone.
set -euo pipefail

usage() {
	cat <<USAGE
Usage: gen-certs.sh -o DIR [-n NAME]... [-q NAME]... [-d STORE]... [-b STORE]... [-r STORE/REG]... [-R] [-D DAYS] [-a ACL]

  -o DIR        output directory (created; keys are written 0600)
  -n NAME       a DNS name or IP address of the broker for its server
                certificate (repeatable; default localhost and 127.0.0.1)
  -q NAME       make a certificate for the HQ identity hq-NAME: one per
                further HQ instance (--share) and one for policy push
                (-q push; posguard policy push connects as hq-push), so none
                takes over another's session (repeatable)
  -d STORE      make a display certificate for STORE (repeatable)
  -b STORE      make the certificate of STORE's bridge (its store broker's
                connection to HQ's broker) and store-bridge.STORE.conf
                (repeatable)
  -r STORE/REG  make a register certificate (repeatable)
  -R            also make route.crt, the certificate the nodes of a broker
                cluster present to one another (server and client use, the
                -n names), for scripts/nats/gen-cluster.sh
  -D DAYS       validity of new certificates (default 825)
  -a ACL        ACL template (default: mosquitto/acl next to this script)

Ids are 1 to 32 of A-Z a-z 0-9 _ -; "all", "display", "bridge" and "hq" are
not store ids.
USAGE
}

here=$(cd "$(dirname "$0")" && pwd)
out="" days=825 acl_template="$here/mosquitto/acl" bridge_template="$here/mosquitto/store-bridge.conf"
names=() hqs=() displays=() bridges=() registers=() route=""
while getopts ":o:n:q:d:b:r:RD:a:h" opt; do
	case $opt in
	o) out=$OPTARG ;;
	n) names+=("$OPTARG") ;;
	q) hqs+=("$OPTARG") ;;
	d) displays+=("$OPTARG") ;;
	b) bridges+=("$OPTARG") ;;
	r) registers+=("$OPTARG") ;;
	R) route=1 ;;
	D) days=$OPTARG ;;
	a) acl_template=$OPTARG ;;
	h) usage; exit 0 ;;
	:) echo "gen-certs.sh: -$OPTARG needs a value" >&2; usage >&2; exit 2 ;;
	*) echo "gen-certs.sh: unknown flag -$OPTARG" >&2; usage >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
if [ -z "$out" ] || [ $# -ne 0 ]; then
	usage >&2
	exit 2
fi
[[ $days =~ ^[0-9]+$ ]] || { echo "gen-certs.sh: -D $days: not a number of days" >&2; exit 2; }
[ ${#names[@]} -gt 0 ] || names=(localhost 127.0.0.1)

# Same rule as wire.ValidateStore / ValidateRegister.
check_id() { # kind id
	if ! [[ $2 =~ ^[A-Za-z0-9_-]{1,32}$ ]]; then
		echo "gen-certs.sh: $1 id \"$2\": want 1 to 32 of A-Z a-z 0-9 _ -" >&2
		exit 2
	fi
	if [ "$1" = store ] && { [ "$2" = all ] || [ "$2" = display ] || [ "$2" = bridge ] || [ "$2" = hq ]; }; then
		echo "gen-certs.sh: store id \"$2\" is reserved" >&2
		exit 2
	fi
}
for s in "${displays[@]+"${displays[@]}"}"; do check_id store "$s"; done
for s in "${bridges[@]+"${bridges[@]}"}"; do check_id store "$s"; done
for q in "${hqs[@]+"${hqs[@]}"}"; do check_id hq-NAME "$q"; done
for sr in "${registers[@]+"${registers[@]}"}"; do
	[[ $sr == */* ]] || { echo "gen-certs.sh: -r $sr: want STORE/REG" >&2; exit 2; }
	check_id store "${sr%%/*}"
	check_id register "${sr#*/}"
done
[ -r "$acl_template" ] || { echo "gen-certs.sh: ACL template $acl_template not readable" >&2; exit 1; }
if [ ${#bridges[@]} -gt 0 ] && [ ! -r "$bridge_template" ]; then
	echo "gen-certs.sh: bridge template $bridge_template not readable" >&2
	exit 1
fi

umask 077
mkdir -p "$out"
cd "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ ! -e ca.key ]; then
	openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout ca.key -out ca.crt -days "$days" -subj "/CN=posguard CA" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>"$tmp/log" || { cat "$tmp/log" >&2; exit 1; }
	chmod 0644 ca.crt
	echo "made CA ca.crt"
fi

# leaf FILE CN EXT: a key and a certificate signed by the CA.
leaf() {
	local file=$1 cn=$2 ext=$3
	if [ -e "$file.crt" ]; then
		echo "kept $file.crt"
		return
	fi
	# A / in the CN must be escaped for -subj, where / separates fields.
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$file.key" -out "$tmp/$file.csr" -subj "/CN=${cn//\//\\/}" 2>"$tmp/log" || { cat "$tmp/log" >&2; exit 1; }
	printf '%s\n' "$ext" >"$tmp/$file.ext"
	openssl x509 -req -in "$tmp/$file.csr" -CA ca.crt -CAkey ca.key \
		-set_serial "0x$(openssl rand -hex 16)" -days "$days" -sha256 \
		-extfile "$tmp/$file.ext" -out "$file.crt" 2>"$tmp/log" || { cat "$tmp/log" >&2; exit 1; }
	chmod 0600 "$file.key"
	chmod 0644 "$file.crt"
	echo "made $file.crt (CN $cn)"
}

client_ext="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"

san=""
for n in "${names[@]}"; do
	if [[ $n =~ ^[0-9.]+$ || $n == *:* ]]; then san+="IP:$n,"; else san+="DNS:$n,"; fi
done
leaf server "${names[0]}" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=${san%,}"
if [ -n "$route" ]; then
	leaf route "${names[0]}" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=${san%,}"
fi
leaf hq hq "$client_ext"
for q in "${hqs[@]+"${hqs[@]}"}"; do leaf "hq-$q" "hq-$q" "$client_ext"; done
for s in "${displays[@]+"${displays[@]}"}"; do leaf "display.$s" "display/$s" "$client_ext"; done
for s in "${bridges[@]+"${bridges[@]}"}"; do
	leaf "bridge.$s" "bridge/$s" "$client_ext"
	if [ ! -e "store-bridge.$s.conf" ]; then
		conf=$(<"$bridge_template")
		printf '%s\n' "${conf//\{STORE\}/$s}" >"store-bridge.$s.conf"
		chmod 0644 "store-bridge.$s.conf"
		echo "wrote store-bridge.$s.conf"
	fi
done
for sr in "${registers[@]+"${registers[@]}"}"; do leaf "reg.${sr%%/*}.${sr#*/}" "$sr" "$client_ext"; done

# The ACL: the template plus a block for every further HQ, display, store
# bridge and register certificate here (including ones made by earlier
# runs). Ids hold no dot, so a file name splits on its dots. Mosquitto
# checks a user's own lines before the patterns, so the denies keep the
# %u patterns (posguard/v1/reg/%u/#, written for registers) from giving a
# display or bridge the subtree of a store named like its username.
# stores_of KIND: the STORE of every KIND.STORE.crt here (ids hold no
# space, so the list splits safely).
stores_of() {
	local crt s
	for crt in "$1".*.crt; do
		[ -e "$crt" ] || continue
		s=${crt#"$1".}
		echo "${s%.crt}"
	done
}
{
	cat "$acl_template"
	for crt in hq-*.crt; do
		[ -e "$crt" ] || continue
		printf '\nuser %s\ntopic readwrite posguard/#\n' "${crt%.crt}"
	done
	for s in $(stores_of display); do
		printf '\nuser display/%s\ntopic deny posguard/v1/reg/display/#\ntopic read posguard/v1/reg/%s/+/alerts\ntopic read posguard/v1/reg/%s/+/status\ntopic read posguard/v1/store/%s/alerts\ntopic write posguard/v1/reg/%s/+/cmd\n' "$s" "$s" "$s" "$s" "$s"
	done
	for s in $(stores_of bridge); do
		printf '\nuser bridge/%s\ntopic deny posguard/v1/reg/bridge/#\ntopic write posguard/v1/reg/%s/#\ntopic write posguard/v1/store/%s/facts/+\ntopic read posguard/v1/ack/%s/+\ntopic read posguard/v1/store/%s/alerts\n' "$s" "$s" "$s" "$s" "$s"
	done
	for crt in reg.*.*.crt; do
		[ -e "$crt" ] || continue
		sr=${crt#reg.}
		sr=${sr%.crt}
		s=${sr%%.*} r=${sr#*.}
		printf '\nuser %s/%s\ntopic write posguard/v1/store/%s/facts/%s\ntopic read posguard/v1/store/%s/facts/+\n' "$s" "$r" "$s" "$r" "$s"
	done
} >acl.new
chmod 0644 acl.new
mv acl.new acl
echo "wrote acl"
