#!/usr/bin/env bash
# How a script talks to Backplane: get an access token with the OAuth
# client-credentials grant, then send GraphQL with it as a bearer token.
#
#   TOKEN_URL=https://sso.example.com/realms/company/protocol/openid-connect/token \
#   CLIENT_ID=ops-scripts CLIENT_SECRET=… BACKPLANE_URL=https://backplane.internal \
#   ./examples/script_token.sh [ORGANIZATION_ID …]
#
# Backplane counts the token's scopes only when CLIENT_ID is in its
# BACKPLANE_SERVICE_CLIENTS (see README.md, Production).
#
# The client secret is read from the environment, never from the command line
# (where `ps` would show it), and is never printed.
set -euo pipefail
: "${TOKEN_URL:?the token endpoint of the identity provider}"
: "${CLIENT_ID:?the OAuth client id of the script}"
: "${CLIENT_SECRET:?the OAuth client secret of the script}"
: "${BACKPLANE_URL:=http://127.0.0.1:8080}"
SCOPE=${SCOPE:-"backplane:read:customers"}

token=$(curl -fsS "$TOKEN_URL" \
  --data-urlencode grant_type=client_credentials \
  --data-urlencode "client_id=$CLIENT_ID" \
  --data-urlencode "client_secret@-" \
  --data-urlencode "scope=$SCOPE" <<<"$CLIENT_SECRET" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

graphql() {
  local variables='{}'
  [ $# -ge 2 ] && variables=$2
  python3 -c 'import json,sys; print(json.dumps({"query": sys.argv[1], "variables": json.loads(sys.argv[2])}))' "$1" "$variables" |
    curl -fsS "$BACKPLANE_URL/graphql" \
      -H "Authorization: Bearer $token" \
      -H 'Content-Type: application/json' \
      --data-binary @-
  echo
}

# Who am I, and what may I do?
graphql '{ viewer { subject kind roles permissions } }'

# A bulk change (needs the backplane:bulk:organizations scope or the ops role):
# suspend organizations given as arguments. A dry run unless APPLY=1; the
# idempotency key makes a retry of the same run safe.
if [ $# -gt 0 ]; then
  ids=$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1:]))' "$@")
  dry=true; [ "${APPLY:-0}" = 1 ] && dry=false
  graphql 'mutation($input: BulkOrganizationStatusInput!) { bulkUpdateOrganizationStatus(input: $input) { requested changed unchanged dryRun replayed failed { id reason } } }' \
    "{\"input\": {\"ids\": $ids, \"status\": \"SUSPENDED\", \"reason\": \"${REASON:-suspended by script}\", \"dryRun\": $dry, \"idempotencyKey\": \"${IDEMPOTENCY_KEY:-script-$(date +%Y%m%d)}\", \"mode\": \"BEST_EFFORT\"}}"
fi

# Page through every suspended organization, 100 at a time.
after=null
while :; do
  page=$(graphql 'query($after: String) { organizations(first: 100, after: $after, filter: {status: SUSPENDED}) { pageInfo { hasNextPage endCursor } nodes { id slug } } }' "{\"after\": $after}")
  echo "$page" | python3 -c 'import json,sys; [print(n["id"], n["slug"]) for n in json.load(sys.stdin)["data"]["organizations"]["nodes"]]'
  next=$(echo "$page" | python3 -c 'import json,sys; p=json.load(sys.stdin)["data"]["organizations"]["pageInfo"]; print(json.dumps(p["endCursor"]) if p["hasNextPage"] else "")')
  [ -n "$next" ] || break
  after=$next
done
