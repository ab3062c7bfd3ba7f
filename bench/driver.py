#!/usr/bin/env python3
"""The benchmark proper, started by bench/run.sh once PostgreSQL, the issuer,
Backplane and PostGraphile are up. Standard library only.

For each workload it first checks both servers' answers (no errors, the sizes
asked for, and the same rows from both), then loads each server in turn with
wrk at the same concurrency, counting SQL statements with pg_stat_statements
(per database role: each server connects as its own) and reading each server's
peak RSS (VmHWM, reset before each run through /proc/PID/clear_refs). Writes
the raw figures to $OUT/results.json and the report to bench/RESULTS.md.
"""

import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import workloads as W  # noqa: E402

ENV = os.environ
BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
OUT = ENV.get("BENCH_OUT", os.path.join(BENCH_DIR, "out"))
ADMIN_DB = ENV.get("BENCH_ADMIN_DB", "")  # superuser, on the benchmark database
TOKEN = open(ENV["BENCH_TOKEN_FILE"]).read().strip() if "BENCH_TOKEN_FILE" in ENV else ""
DURATION = int(ENV.get("BENCH_DURATION", "15"))
WARMUP = int(ENV.get("BENCH_WARMUP", "5"))
CONNECTIONS = int(ENV.get("BENCH_CONNECTIONS", "16"))
THREADS = int(ENV.get("BENCH_THREADS", "2"))
PAGE = int(ENV.get("BENCH_PAGE_SIZE", "1000"))
BULK_ITEMS = int(ENV.get("BENCH_BULK_ITEMS", "10000"))
BULK_ROUNDS = int(ENV.get("BENCH_BULK_ROUNDS", "5"))
ROUNDS = int(ENV.get("BENCH_ROUNDS", "1"))
SELECTED = {int(w) for w in ENV.get("BENCH_WORKLOADS", "1,2,3,4,5").split(",") if w}

SERVERS = {
    "backplane": {
        "label": "Backplane",
        "url": ENV.get("BENCH_BP_URL", ""),
        "pid": int(ENV.get("BENCH_BP_PID", "0")),
        "role": ENV.get("BENCH_BP_ROLE", "backplane"),
        "headers": {"Authorization": f"Bearer {TOKEN}"},
    },
    "postgraphile": {
        "label": "PostGraphile",
        "url": ENV.get("BENCH_PGL_URL", ""),
        "pid": int(ENV.get("BENCH_PGL_PID", "0")),
        "role": ENV.get("BENCH_PGL_ROLE", "postgraphile"),
        "headers": {},
    },
}


# Backplane on a SQLite file with the same seed: the executor (compiled reads
# off) and the compiled path, for workloads 2 and 3 on SQLite. Statements are
# counted from each server's /metrics (backplane_sql_statements_per_request:
# what a request's own task sent; the audit writer's run apart).
SQLITE = {
    "sqlite_executor": {
        "label": "Backplane on SQLite, executor",
        "url": ENV.get("BENCH_SQLITE_EXEC_URL", ""),
        "pid": int(ENV.get("BENCH_SQLITE_EXEC_PID", "0")),
        "headers": {"Authorization": f"Bearer {TOKEN}"},
    },
    "sqlite_compiled": {
        "label": "Backplane on SQLite, compiled",
        "url": ENV.get("BENCH_SQLITE_URL", ""),
        "pid": int(ENV.get("BENCH_SQLITE_PID", "0")),
        "headers": {"Authorization": f"Bearer {TOKEN}"},
    },
}
ALL_SERVERS = {**SERVERS, **SQLITE}
# The PostgreSQL server's log, where the floor finds Backplane's statements.
PG_LOG = ENV.get("BENCH_PG_LOG", "")
BP_DB = ENV.get("BENCH_BP_DB", "")
# The ratios to PostGraphile of the report before this one (bench/RESULTS.md of
# 4013608): each read workload must stay at least this far ahead.
PREVIOUS_RATIOS = {"1": 1.52, "2": 2.80, "3": 3.66, "4": 2.04}
# BENCH_PERF=1: after measuring, profile Backplane under each read workload with
# perf (a run of its own, not counted), into $OUT/perf-N.txt and the report.
PERF = ENV.get("BENCH_PERF", "") not in ("", "0")

# Where a sample's function belongs, first match wins (perf's symbol names,
# demangled): what the server spends a request on.
PROFILE_BUCKETS = [
    ("the kernel: sockets, scheduling, copies", ("[k]",)),
    ("token check (RS256 signature, JWT claims)", ("rsa::", "num_bigint", "crypto_bigint", "jsonwebtoken",
                                                   "identity::oidc", "identity::verifier")),
    ("GraphQL parse, validation, limits, visibility", ("async_graphql_parser", "pest", "graphql::limits",
                                                       "graphql::visibility", "role_schema",
                                                       "async_graphql::validation")),
    ("compiling or binding the statement", ("graphql::compiled::template", "graphql::compiled::Compiler",
                                            "graphql::compiled::compile", "store::sql", "graphql::filter")),
    ("writing the answer (positional JSON to the answer's)", ("compiled::answer", "serde_json::de")),
    ("cursors (AES-GCM-SIV, base64)", ("aes", "polyval", "base64", "pagination::Cursors")),
    ("the database driver (sqlx, sea-orm)", ("sqlx", "sea_orm", "sea_query")),
    ("the audit record and writer (SHA-256, JSON)", ("audit::", "sha2", "hmac")),
    ("HTTP (hyper, axum, tower)", ("hyper", "axum", "tower", "http::", "httparse", "h1")),
    ("JSON of requests and answers (serde_json)", ("serde_json", "serde::")),
    ("async runtime (tokio)", ("tokio", "futures", "parking_lot")),
    ("memory (malloc, memcpy, free)", ("malloc", "free", "memcpy", "memmove", "realloc", "cfree", "_int_",
                                       "alloc::", "memset")),
]


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


class CheckFailed(Exception):
    pass


# ---------------------------------------------------------------- plumbing


def psql(sql, db=ADMIN_DB):
    out = subprocess.run(
        ["psql", "-qAtX", "-F", "\t", "-v", "ON_ERROR_STOP=1", db, "-c", sql],
        check=True, capture_output=True, text=True,
    ).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def post(server, query, variables=None, timeout=60):
    return post_body(server, json.dumps({"query": query, "variables": variables or {}}), timeout)


def post_body(server, body, timeout=60):
    s = ALL_SERVERS[server]
    req = urllib.request.Request(s["url"], data=body.encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    for k, v in s["headers"].items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            payload = json.loads(resp.read())
    except urllib.error.HTTPError as err:
        raise CheckFailed(f"{server}: HTTP {err.code}: {err.read()[:300]!r}") from None
    if payload.get("errors"):
        raise CheckFailed(f"{server}: errors: {json.dumps(payload['errors'])[:500]}")
    return payload["data"]


def rss_reset(pid):
    # Writing 5 resets the peak resident set size (VmHWM) to the current RSS.
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def rss_kib(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                fields[key] = int(value.split()[0])
    return fields


TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")


def cpu_ms(pid):
    """CPU time (user + system) a process has used, in ms."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * TICK_MS


def postgres_cpu_ms():
    """CPU time of every PostgreSQL process (the server being loaded is the only
    busy client while a run lasts)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        if "(postgres)" in stat or "(postmaster)" in stat:
            fields = stat.rsplit(")", 1)[1].split()
            # Own time, plus that of exited children (backends whose connection
            # closed are added to the postmaster's).
            total += sum(int(x) for x in fields[11:15]) * TICK_MS
    return total


def children_cpu_ms():
    """CPU time of this process's finished children (wrk, pgbench), in ms."""
    t = os.times()
    return (t.children_user + t.children_system) * 1000


def machine_ticks():
    """The machine's CPU time so far: (all, idle), in ticks."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v), v[3] + v[4]


def idle_share(before, after):
    total = after[0] - before[0]
    return (after[1] - before[1]) / total if total else 0.0


def busy_ms(before, after):
    """The machine's busy CPU time between two `machine_ticks`, in ms."""
    return ((after[0] - before[0]) - (after[1] - before[1])) * TICK_MS


def stmts_reset():
    psql("SELECT pg_stat_statements_reset()")


AUDIT = re.compile(r"audit_events|pg_advisory_xact_lock|^\s*(BEGIN|COMMIT|ROLLBACK)\b", re.I)


def stmts_read():
    """Statements executed since the reset, per server: (data, audit)."""
    rows = psql(
        "SELECT r.rolname, s.calls, regexp_replace(s.query, '\\s+', ' ', 'g') FROM pg_stat_statements s "
        "JOIN pg_roles r ON r.oid = s.userid"
    )
    out = {name: {"data": 0, "audit": 0, "texts": {}} for name in SERVERS}
    for role, calls, query in rows:
        for name, s in SERVERS.items():
            if role != s["role"]:
                continue
            # Backplane's reads write one audit event each (through the group-
            # committing writer): counted apart. PostGraphile has no audit log.
            kind = "audit" if name == "backplane" and AUDIT.search(query) else "data"
            out[name][kind] += int(calls)
            key = query[:160]
            out[name]["texts"][key] = out[name]["texts"].get(key, 0) + int(calls)
    return out


def statements_during(server, fn):
    stmts_reset()
    result = fn()
    counts = stmts_read()[server]
    return counts, result


# ---------------------------------------------------------------- wrk


LUA = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
%(auth)s
local bodies = %(bodies)s
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  errors = 0
  checked = 0
  i = 0
  math.randomseed(os.time() + #threads * 7919)
end
function request()
  if %(random)s then
    i = math.random(#bodies)
  else
    i = i %% #bodies + 1
  end
  return wrk.format(nil, nil, nil, bodies[i])
end
function response(status, headers, body)
  checked = checked + 1
  if status ~= 200 or string.find(body, '"errors"', 1, true) then
    errors = errors + 1
  end
end
function done(summary, latency, requests)
  local e, c = 0, 0
  for _, t in ipairs(threads) do
    e = e + t:get("errors")
    c = c + t:get("checked")
  end
  io.write(string.format(
    'WRKJSON {"requests": %%d, "duration_us": %%d, "bytes": %%d, "graphql_errors": %%d, "checked": %%d, ' ..
    '"connect": %%d, "read": %%d, "write": %%d, "status": %%d, "timeout": %%d, ' ..
    '"p50_us": %%d, "p90_us": %%d, "p99_us": %%d, "max_us": %%d, "mean_us": %%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e, c,
    summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
"""


def lua_string(s):
    return "[==[" + s + "]==]"


def wrk_script(server, bodies, randomise):
    s = ALL_SERVERS[server]
    auth = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in s["headers"].items())
    table = "{\n" + ",\n".join(lua_string(b) for b in bodies) + "\n}"
    path = os.path.join(OUT, f"wrk-{server}-{abs(hash(tuple(bodies))) % 10**8}.lua")
    with open(path, "w") as f:
        f.write(LUA % {"auth": auth, "bodies": table, "random": "true" if randomise else "false"})
    return path


def wrk(server, script, seconds):
    cmd = ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "30s",
           "-s", script, ALL_SERVERS[server]["url"]]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith("WRKJSON "):
            return json.loads(line[len("WRKJSON "):])
    raise CheckFailed(f"wrk printed no summary:\n{out}")


def load(server, bodies, randomise=False):
    """Warm up, then measure: throughput, latency, statements, peak RSS."""
    script = wrk_script(server, bodies, randomise)
    wrk(server, script, WARMUP)
    pids = {name: s["pid"] for name, s in SERVERS.items()}
    for pid in pids.values():
        if pid:
            rss_reset(pid)
    stmts_reset()
    cpu0, pg0, cl0, m0 = cpu_ms(pids[server]), postgres_cpu_ms(), children_cpu_ms(), machine_ticks()
    r = wrk(server, script, DURATION)
    cpu1, pg1, cl1, m1 = cpu_ms(pids[server]), postgres_cpu_ms(), children_cpu_ms(), machine_ticks()
    counts = stmts_read()[server]
    peak = rss_kib(pids[server])["VmHWM"]
    n, figures = measured(server, r)
    return {
        **figures,
        "p90_ms": r["p90_us"] / 1000,
        "max_ms": r["max_us"] / 1000,
        "stmts_data": counts["data"] / n,
        "stmts_audit": counts["audit"] / n,
        "peak_rss_mib": peak / 1024,
        "cpu_ms": (cpu1 - cpu0) / n,
        "pg_cpu_ms": (pg1 - pg0) / n,
        "client_cpu_ms": (cl1 - cl0) / n,
        "idle": idle_share(m0, m1),
        "busy_ms": busy_ms(m0, m1) / n,
        "top_statements": sorted(counts["texts"].items(), key=lambda kv: -kv[1])[:8],
    }


def metric_sums(server):
    """backplane_sql_statements_per_request's sum and count, from /metrics."""
    url = ALL_SERVERS[server]["url"].rsplit("/", 1)[0] + "/metrics"
    with urllib.request.urlopen(url, timeout=30) as resp:
        text = resp.read().decode()
    found = {}
    for line in text.splitlines():
        for part in ("sum", "count"):
            if line.startswith(f"backplane_sql_statements_per_request_{part} "):
                found[part] = float(line.split()[1])
    return found.get("sum", 0.0), found.get("count", 0.0)


def measured(server, r):
    """A wrk run's requests and rates; a failed request under load fails the run."""
    failures = r["graphql_errors"] + r["status"] + r["connect"] + r["read"] + r["write"] + r["timeout"]
    if failures:
        raise CheckFailed(f"{server}: {failures} failed requests under load: {r}")
    return max(r["requests"], 1), {
        "rps": r["requests"] / (r["duration_us"] / 1e6),
        "p50_ms": r["p50_us"] / 1000,
        "p99_ms": r["p99_us"] / 1000,
        "requests": r["requests"],
    }


def load_sqlite(server, bodies):
    """As `load`, for a Backplane on SQLite: statements from its /metrics."""
    pid = ALL_SERVERS[server]["pid"]
    script = wrk_script(server, bodies, False)
    wrk(server, script, WARMUP)
    rss_reset(pid)
    (sum0, count0), cpu0 = metric_sums(server), cpu_ms(pid)
    r = wrk(server, script, DURATION)
    (sum1, count1), cpu1 = metric_sums(server), cpu_ms(pid)
    n, figures = measured(server, r)
    return {
        **figures,
        # The histogram counts every request /metrics saw, the warm-up's
        # excluded: the measured run's statements over its requests.
        "stmts_data": (sum1 - sum0) / max(count1 - count0, 1),
        "peak_rss_mib": rss_kib(pid)["VmHWM"] / 1024,
        "cpu_ms": (cpu1 - cpu0) / n,
    }


def body(query, variables):
    return json.dumps({"query": query, "variables": variables}, separators=(",", ":"))


# ---------------------------------------------------------------- checks


def same(what, a, b):
    na, nb = W.normalise(a), W.normalise(b)
    if na != nb:
        with open(os.path.join(OUT, f"mismatch-{what}.json"), "w") as f:
            json.dump({"backplane": na, "postgraphile": nb}, f, indent=1, sort_keys=True)
        raise CheckFailed(f"{what}: Backplane and PostGraphile answer different rows "
                          f"(both written to {OUT}/mismatch-{what}.json)")


def check_support(slugs):
    for slug in slugs:
        bp = post("backplane", W.SUPPORT_BP, {"slug": slug})
        pg = post("postgraphile", W.SUPPORT_PGL, {"slug": slug})
        org = bp["organizationBySlug"]
        if not org or org["slug"] != slug:
            raise CheckFailed(f"support lookup: no organization {slug}")
        users = org["users"]
        if len(users["nodes"]) != users["totalCount"] or not users["nodes"]:
            raise CheckFailed(f"support lookup {slug}: {len(users['nodes'])} users of {users['totalCount']}")
        same("support", bp, pg)


def check_admin():
    bp = post("backplane", W.ADMIN_BP)
    pg = post("postgraphile", W.ADMIN_PGL)
    nodes = bp["organizations"]["nodes"]
    if len(nodes) != 50 or any(len(o["users"]["nodes"]) > 10 for o in nodes):
        raise CheckFailed("admin list: not 50 organizations of at most 10 users")
    if not any(o["invoices"]["nodes"] for o in nodes):
        raise CheckFailed("admin list: no invoices at all")
    same("admin", bp, pg)


def deepest(org):
    try:
        return isinstance(
            org["users"]["nodes"][0]["organization"]["invoices"]["nodes"][0]["lines"]["nodes"][0]
            ["invoice"]["organization"]["tickets"]["nodes"][0]["requester"]["tickets"]["nodes"][0]
            ["messages"]["nodes"][0]["body"], str)
    except (IndexError, KeyError, TypeError):
        return False


def check_deep(n):
    bp = post("backplane", W.DEEP_BP, {"n": n})
    pg = post("postgraphile", W.DEEP_PGL, {"n": n})
    orgs = bp["organizations"]["nodes"]
    if len(orgs) != n:
        raise CheckFailed(f"deep: {len(orgs)} organizations, not {n}")
    if not any(deepest(o) for o in orgs):
        raise CheckFailed("deep: no organization reached the last level")
    same(f"deep{n}", bp, pg)


def walk(server, query, first):
    """Pages through every organization; returns (ids, cursors used, seconds)."""
    ids, cursors, after = [], [None], None
    root = "organizations" if server == "backplane" else "allOrganizations"
    started = time.monotonic()
    while True:
        data = post(server, query, {"first": first, "after": after})[root]
        ids += [n["id" if server == "backplane" else "rowId"] for n in data["nodes"]]
        if not data["pageInfo"]["hasNextPage"]:
            break
        after = data["pageInfo"]["endCursor"]
        cursors.append(after)
    return ids, cursors, time.monotonic() - started


# ---------------------------------------------------------------- workloads


def run_read_workloads(results, total_orgs):
    slugs = [row[0] for row in psql("SELECT slug FROM organizations ORDER BY id")]
    sample = slugs[:: max(1, len(slugs) // 25)][:25]
    plan = []
    if 1 in SELECTED:
        log("checking workload 1 (support lookup) on 25 organizations")
        check_support(sample)
        plan.append(("1", "support lookup (one organization by slug: users, subscription, last 5 invoices)",
                     {s: [body(q, {"slug": slug}) for slug in slugs] for s, q in
                      (("backplane", W.SUPPORT_BP), ("postgraphile", W.SUPPORT_PGL))}, True))
    if 2 in SELECTED:
        log("checking workload 2 (admin list page)")
        check_admin()
        plan.append(("2", "admin list page (50 organizations: plan, subscription, 10 users, 10 invoices)",
                     {"backplane": [body(W.ADMIN_BP, {})], "postgraphile": [body(W.ADMIN_PGL, {})]}, False))
    if 3 in SELECTED:
        log("checking workload 3 (deep page) at 10 and 100 parents")
        check_deep(10)
        check_deep(100)
        per_size = {}
        for server, q in (("backplane", W.DEEP_BP), ("postgraphile", W.DEEP_PGL)):
            post(server, q, {"n": 1})  # warm the plan caches
            per_size[server] = {}
            for n in (10, 100):
                runs = [statements_during(server, lambda: post(server, q, {"n": n}))[0] for _ in range(3)]
                per_size[server][n] = {"data": min(r["data"] for r in runs),
                                       "audit": min(r["audit"] for r in runs)}
        results["deep_statements_by_page_size"] = per_size
        plan.append(("3", "deep page (ten-level query of the DataLoader test, 100 parents)",
                     {"backplane": [body(W.DEEP_BP, {"n": 100})],
                      "postgraphile": [body(W.DEEP_PGL, {"n": 100})]}, False))
    if 4 in SELECTED:
        log(f"checking workload 4 (paging {PAGE} at a time) and timing one full walk per server")
        walks = {}
        for server, q in (("backplane", W.PAGING_BP), ("postgraphile", W.PAGING_PGL)):
            walk(server, q, PAGE)  # warm-up
            counts, (ids, cursors, secs) = statements_during(server, lambda: walk(server, q, PAGE))
            ids = [W.normalise(i) for i in ids]
            if len(ids) != total_orgs or len(set(ids)) != total_orgs:
                raise CheckFailed(f"paging on {server}: {len(ids)} rows ({len(set(ids))} distinct), "
                                  f"not {total_orgs}")
            walks[server] = {"ids": ids, "cursors": cursors, "seconds": secs,
                             "pages": len(cursors), "data": counts["data"], "audit": counts["audit"]}
        if walks["backplane"]["ids"] != walks["postgraphile"]["ids"]:
            raise CheckFailed("paging: the two servers list the organizations in different orders")
        results["walk"] = {s: {k: v for k, v in w.items() if k not in ("ids", "cursors")}
                           for s, w in walks.items()}
        plan.append(("4", f"paging script ({PAGE} organizations a page; wrk requests every page in turn)",
                     {s: [body(q, {"first": PAGE, "after": c}) for c in walks[s]["cursors"]]
                      for s, q in (("backplane", W.PAGING_BP), ("postgraphile", W.PAGING_PGL))},
                     False))

    # Rounds alternate the servers (Backplane, PostGraphile, Backplane, …) so that
    # a noisy minute of the shared machine does not land on one server only; the
    # report keeps each server's best round (by requests per second).
    # The floor's statements, taken from PostgreSQL's log before anything is
    # measured; each round runs them right after Backplane's run, so that the
    # two figures of a ratio come from the same minute of a shared machine.
    floor_scripts = floor_statements(plan)
    for wid, title, bodies, randomise in plan:
        results["workloads"][wid] = {"title": title, "rounds": {s: [] for s in SERVERS}}
        floor_rounds = []
        for round_no in range(1, ROUNDS + 1):
            for server in ("backplane", "postgraphile"):
                log(f"workload {wid}, round {round_no}/{ROUNDS}, {SERVERS[server]['label']}: {WARMUP}s "
                    f"warm-up, {DURATION}s at {CONNECTIONS} connections")
                r = load(server, bodies[server], randomise)
                results["workloads"][wid]["rounds"][server].append(r)
                log(f"  {r['rps']:.0f} req/s, p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, "
                    f"{r['stmts_data']:.2f}+{r['stmts_audit']:.2f} statements, {r['peak_rss_mib']:.0f} MiB, "
                    f"CPU {r['cpu_ms']:.2f} ms server + {r['pg_cpu_ms']:.2f} ms PostgreSQL per request")
                if server == "backplane" and wid in floor_scripts:
                    log(f"  the floor: {len(floor_scripts[wid])} statement(s) of Backplane under pgbench")
                    f = pgbench(floor_scripts[wid])
                    f["backplane_rps"] = r["rps"]
                    f["ratio"] = r["rps"] / f["tps"]
                    floor_rounds.append(f)
                    log(f"  {f['tps']:.0f} statements/s: Backplane at {f['ratio']:.2f} of it")
        for server in SERVERS:
            rounds = results["workloads"][wid]["rounds"][server]
            best = dict(max(rounds, key=lambda r: r["rps"]))
            best["peak_rss_mib"] = max(r["peak_rss_mib"] for r in rounds)
            results["workloads"][wid][server] = best
        if floor_rounds:
            results["workloads"][wid]["floor"] = {
                "statements": len(floor_scripts[wid]), "example": floor_scripts[wid][0][:400],
                "rounds": floor_rounds, "tps": statistics.mean(f["tps"] for f in floor_rounds),
                "ratio": statistics.mean(f["ratio"] for f in floor_rounds)}
    profile(results, plan)


def run_sqlite(results):
    """Workloads 2 and 3 on SQLite: the executor against the compiled path, on
    the same file, after checking that both give the same answer (and noting
    whether it is Backplane's on PostgreSQL, whose seed and cursor key are the
    same)."""
    if not all(s["url"] and s["pid"] for s in SQLITE.values()):
        return
    plan = []
    if 2 in SELECTED:
        plan.append(("2", "admin list page (50 organizations)", body(W.ADMIN_BP, {})))
    if 3 in SELECTED:
        plan.append(("3", "deep page (100 parents)", body(W.DEEP_BP, {"n": 100})))
    out = results.setdefault("sqlite", {})
    for wid, title, b in plan:
        log(f"checking workload {wid} on SQLite (executor and compiled, against PostgreSQL's answer)")
        answers = {}
        for server in ("backplane", *SQLITE):
            post_body(server, b)  # the first sight of a document is the executor's
            answers[server] = post_body(server, b)
        if answers["sqlite_executor"] != answers["sqlite_compiled"]:
            with open(os.path.join(OUT, f"mismatch-sqlite-{wid}.json"), "w") as f:
                json.dump(answers, f, indent=1, sort_keys=True)
            raise CheckFailed(f"workload {wid} on SQLite: the compiled path answers otherwise than the "
                              f"executor (both written to {OUT}/mismatch-sqlite-{wid}.json)")
        # The same seed: the same answer as on PostgreSQL, unless the two
        # databases order text differently (PostgreSQL's collation).
        same_as_postgres = answers["sqlite_compiled"] == answers["backplane"]
        rounds = {s: [] for s in SQLITE}
        for round_no in range(1, ROUNDS + 1):
            for server in SQLITE:
                log(f"workload {wid} on SQLite, round {round_no}/{ROUNDS}, {SQLITE[server]['label']}")
                r = load_sqlite(server, [b])
                rounds[server].append(r)
                log(f"  {r['rps']:.0f} req/s, p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, "
                    f"{r['stmts_data']:.2f} statements, {r['peak_rss_mib']:.0f} MiB, CPU {r['cpu_ms']:.2f} ms")
        out[wid] = {"title": title, "rounds": rounds, "same_as_postgres": same_as_postgres}
        for server in SQLITE:
            best = dict(max(rounds[server], key=lambda r: r["rps"]))
            best["peak_rss_mib"] = max(r["peak_rss_mib"] for r in rounds[server])
            out[wid][server] = best


# ---------------------------------------------------------------- the floor

PARAM = re.compile(r"\$(\d+) = (NULL|'(?:[^']|'')*')")
EXECUTE = re.compile(r"^\S+ \S+ \S+ \[(\d+)\] LOG:  duration: [\d.]+ ms  execute [^:]*: (.*)$")


def backplane_statement(b):
    """The read statement Backplane sends PostgreSQL for the request body `b`,
    its parameters written in as literals, from PostgreSQL's own log (every
    statement logged for the moment of one request)."""
    psql("ALTER SYSTEM SET log_min_duration_statement = 0")
    psql("SELECT pg_reload_conf()")
    time.sleep(0.5)
    start = os.path.getsize(PG_LOG)
    try:
        post_body("backplane", b)
        time.sleep(0.5)
    finally:
        psql("ALTER SYSTEM RESET log_min_duration_statement")
        psql("SELECT pg_reload_conf()")
    with open(PG_LOG, encoding="utf-8", errors="replace") as f:
        f.seek(start)
        lines = f.read().splitlines()
    for i, line in enumerate(lines):
        m = EXECUTE.match(line)
        if not m or "audit_events" in m.group(2) or 'AS "data"' not in m.group(2):
            continue
        pid, sql = m.group(1), m.group(2)
        params = {}
        # The next line of the same backend (others' lines may come between).
        for later in lines[i + 1:i + 50]:
            if f"[{pid}] " in later:
                if re.search(rf"\[{pid}\] DETAIL:  parameters: ", later, re.I):
                    params = {int(n): v for n, v in PARAM.findall(later)}
                break
        return re.sub(r"\$(\d+)\b", lambda x: params[int(x.group(1))], sql)
    raise CheckFailed(f"no read statement of Backplane in PostgreSQL's log for {b[:120]}")


def pgbench(scripts):
    """PostgreSQL's own rate for these statements (each a script of its own,
    chosen at random), at wrk's concurrency, prepared as Backplane's are."""
    paths = []
    for n, sql in enumerate(scripts):
        path = os.path.join(OUT, f"floor-{n}.sql")
        with open(path, "w") as f:
            f.write(sql + ";\n")
        paths.append(path)
    cmd = ["pgbench", "-n", "-M", "prepared", f"-c{CONNECTIONS}", f"-j{THREADS}"]
    for path in paths:
        cmd += ["-f", path]
    warm = subprocess.run(cmd + [f"-T{WARMUP}", BP_DB], capture_output=True, text=True)
    if warm.returncode != 0:
        raise CheckFailed(f"pgbench failed: {warm.stderr[-500:]}")
    cl0, m0 = children_cpu_ms(), machine_ticks()
    run = subprocess.run(cmd + [f"-T{DURATION}", BP_DB], check=True, capture_output=True, text=True).stdout
    cl1, m1 = children_cpu_ms(), machine_ticks()
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", run)
    done = re.search(r"number of transactions actually processed: (\d+)", run)
    if not tps or not done:
        raise CheckFailed(f"pgbench printed no rate:\n{run}")
    n = max(int(done.group(1)), 1)
    # pgbench's backends end with it, some of them after it returned: what
    # the machine was busy with, less pgbench's own, is PostgreSQL's (nothing
    # else runs meanwhile).
    busy, client = busy_ms(m0, m1) / n, (cl1 - cl0) / n
    return {"tps": float(tps.group(1)), "pg_cpu_ms": busy - client, "client_cpu_ms": client,
            "busy_ms": busy, "idle": idle_share(m0, m1)}


def profile(results, plan):
    """Backplane's functions under each read workload, sampled by perf."""
    if not PERF:
        return
    pid = SERVERS["backplane"]["pid"]
    for wid, _, bodies, randomise in plan:
        script = wrk_script("backplane", bodies["backplane"], randomise)
        data = os.path.join(OUT, f"perf-{wid}.data")
        log(f"workload {wid}: profiling Backplane with perf for {DURATION}s (not counted)")
        wrk("backplane", script, WARMUP)
        rec = subprocess.Popen(["perf", "record", "-F", "999", "-p", str(pid), "-o", data, "--",
                                "sleep", str(DURATION)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wrk("backplane", script, DURATION)
        rec.wait()
        report = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "--sort", "symbol",
                                 "--percent-limit", "0.01"], capture_output=True, text=True).stdout
        with open(os.path.join(OUT, f"perf-{wid}.txt"), "w") as f:
            f.write(report)
        buckets = {name: 0.0 for name, _ in PROFILE_BUCKETS}
        buckets["other"] = 0.0
        top = []
        for line in report.splitlines():
            m = re.match(r"\s*([\d.]+)%\s+(\[[.k]\])\s+(.*)$", line)
            if not m:
                continue
            pct, kind, symbol = float(m.group(1)), m.group(2), m.group(3).strip()
            if len(top) < 15:
                top.append((pct, symbol[:110]))
            name = next((n for n, keys in PROFILE_BUCKETS
                         if any(k in (kind if k == "[k]" else symbol) for k in keys)), "other")
            buckets[name] += pct
        results["workloads"][wid]["profile"] = {"buckets": buckets, "top": top}


def floor_statements(plan):
    """For each read workload, Backplane's own statements, for pgbench."""
    if not PG_LOG:
        return {}
    out = {}
    for wid, _, bodies, _ in plan:
        # The support lookup: 25 organizations of the thousands wrk picks from.
        sample = bodies["backplane"]
        if len(sample) > 25:
            sample = sample[:: max(1, len(sample) // 25)][:25]
        out[wid] = [backplane_statement(b) for b in sample]
    return out


def run_bulk(results):
    log(f"workload 5: {BULK_ITEMS} status changes, Backplane against one raw UPDATE, {BULK_ROUNDS} rounds")
    ids = [f"org_{i}" for i in range(1, BULK_ITEMS + 1)]
    variables = {"input": {"ids": ids, "status": "SUSPENDED", "reason": "benchmark",
                           "mode": "BEST_EFFORT"}}
    db = ENV["BENCH_BP_DB"]  # the benchmark database, as the owner
    raw, api, stmts, peak = [], [], [], 0
    pid = SERVERS["backplane"]["pid"]
    for _ in range(BULK_ROUNDS):
        psql("UPDATE organizations SET status = 'ACTIVE'", db)
        out = subprocess.run(
            ["psql", "-qAtX", db],
            input=("\\timing on\nUPDATE organizations SET status = 'SUSPENDED', updated_at = now() "
                   f"WHERE id BETWEEN 1 AND {BULK_ITEMS};\n"),
            check=True, capture_output=True, text=True).stdout
        raw.append(float(re.search(r"Time: ([0-9.]+) ms", out).group(1)))
        psql("UPDATE organizations SET status = 'ACTIVE'", db)
        rss_reset(pid)
        stmts_reset()
        started = time.monotonic()
        data = post("backplane", W.BULK_BP, variables, timeout=120)["bulkUpdateOrganizationStatus"]
        api.append((time.monotonic() - started) * 1000)
        counts = stmts_read()["backplane"]
        stmts.append(counts)
        peak = max(peak, rss_kib(pid)["VmHWM"])
        if data["changed"] != BULK_ITEMS or data["failed"]:
            raise CheckFailed(f"bulk: {data['changed']} changed, failures {data['failed'][:3]}")
    mr, ma = statistics.median(raw), statistics.median(api)
    results["bulk"] = {
        "raw_ms": raw, "api_ms": api, "raw_median_ms": mr, "api_median_ms": ma, "ratio": ma / mr,
        "stmts_data": stmts[-1]["data"], "stmts_audit": stmts[-1]["audit"],
        "top_statements": sorted(stmts[-1]["texts"].items(), key=lambda kv: -kv[1])[:10],
        "peak_rss_mib": peak / 1024,
    }
    psql("UPDATE organizations SET status = 'ACTIVE'", db)
    log(f"  raw {mr:.1f} ms, Backplane {ma:.1f} ms: {ma / mr:.2f}x")


EXPORT_QUERY = ("{ users { nodes { email name status organization { slug plan { code } } } } }")
EXPORT_SELECT = ("SELECT u.email, u.name, u.status, o.slug, p.code FROM users u "
                 "JOIN organizations o ON o.id = u.organization_id "
                 "LEFT JOIN subscriptions s ON s.organization_id = o.id "
                 "LEFT JOIN plans p ON p.id = s.plan_id "
                 "ORDER BY u.created_at, u.id")
EXPORT_FLOOR = f"\\copy ({EXPORT_SELECT}) TO STDOUT WITH CSV"
EXPORT_ROUNDS = int(ENV.get("BENCH_EXPORT_ROUNDS", "3"))


def export_rounds(floor_cmd, url, pid):
    """Times the floor and Backplane's export, round after round; checks
    that both give one row per user."""
    raw, api, peak, rows_seen, size, floor_rows = [], [], 0, 0, 0, 0
    for _ in range(EXPORT_ROUNDS):
        started = time.monotonic()
        out = subprocess.run(floor_cmd, check=True, capture_output=True)
        raw.append((time.monotonic() - started) * 1000)
        floor_rows = out.stdout.count(b"\n")
        rss_reset(pid)
        req = urllib.request.Request(
            url, data=json.dumps({"query": EXPORT_QUERY}).encode(),
            headers={"Content-Type": "application/json", "Accept": "text/csv",
                     **SERVERS["backplane"]["headers"]})
        started = time.monotonic()
        rows_seen, size = 0, 0
        with urllib.request.urlopen(req, timeout=600) as resp:
            while True:
                chunk = resp.read(1 << 20)
                if not chunk:
                    break
                size += len(chunk)
                rows_seen += chunk.count(b"\n")
        api.append((time.monotonic() - started) * 1000)
        peak = max(peak, rss_kib(pid)["VmHWM"])
        if rows_seen - 1 != floor_rows:
            raise CheckFailed(f"export: {rows_seen - 1} rows from Backplane, {floor_rows} from the floor")
    mr, ma = statistics.median(raw), statistics.median(api)
    return {"rows": floor_rows, "bytes": size, "raw_ms": raw, "api_ms": api,
            "raw_median_ms": mr, "api_median_ms": ma, "ratio": ma / mr,
            "peak_rss_mib": peak / 1024}


def run_export(results):
    users = int(psql("SELECT count(*) FROM users")[0][0])
    log(f"workload 6: {users:,} users exported as CSV, Backplane against psql's \\copy, {EXPORT_ROUNDS} rounds")
    url = SERVERS["backplane"]["url"].rsplit("/graphql", 1)[0] + "/export"
    r = export_rounds(["psql", "-qAtX", ENV["BENCH_BP_DB"], "-c", EXPORT_FLOOR], url,
                      SERVERS["backplane"]["pid"])
    if r["rows"] != users:
        raise CheckFailed(f"export: {r['rows']} rows from psql, {users} users")
    results["export"] = r
    log(f"  psql {r['raw_median_ms']:.0f} ms, Backplane {r['api_median_ms']:.0f} ms: {r['ratio']:.2f}x; "
        f"peak RSS {r['peak_rss_mib']:.0f} MiB")
    sqlite_pid = int(ENV.get("BENCH_SQLITE_PID", "0"))
    if sqlite_pid:
        log("workload 6 on SQLite: the same export against the sqlite3 shell's CSV of the same SELECT")
        url = ENV["BENCH_SQLITE_URL"].rsplit("/graphql", 1)[0] + "/export"
        r = export_rounds(["sqlite3", "-csv", ENV["BENCH_SQLITE_FILE"], EXPORT_SELECT], url, sqlite_pid)
        results["export_sqlite"] = r
        log(f"  sqlite3 {r['raw_median_ms']:.0f} ms, Backplane {r['api_median_ms']:.0f} ms: "
            f"{r['ratio']:.2f}x; peak RSS {r['peak_rss_mib']:.0f} MiB")


# ---------------------------------------------------------------- report


def machine():
    def first(path, key):
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith(key):
                        return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return "?"
    mem_kib = int(first("/proc/meminfo", "MemTotal").split()[0])
    return {
        "cpu": first("/proc/cpuinfo", "model name"),
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "os": os_name(),
        "load_before": open("/proc/loadavg").read().split()[:3],
    }


def os_name():
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.system()


def fmt(x, digits=0):
    return f"{x:,.{digits}f}"


def write_report(results):
    # The settings of the run the figures come from (not of this process, when
    # only the report is rewritten).
    global PAGE, CONNECTIONS, THREADS, WARMUP, DURATION, ROUNDS, BULK_ITEMS, BULK_ROUNDS
    st = results.get("settings") or {"page": results["versions"].get("page", PAGE)}
    PAGE = st.get("page", PAGE)
    CONNECTIONS, THREADS = st.get("connections", CONNECTIONS), st.get("threads", THREADS)
    WARMUP, DURATION, ROUNDS = st.get("warmup", WARMUP), st.get("duration", DURATION), st.get("rounds", ROUNDS)
    BULK_ITEMS, BULK_ROUNDS = st.get("bulk_items", BULK_ITEMS), st.get("bulk_rounds", BULK_ROUNDS)
    m = results["machine"]
    v = results["versions"]
    lines = []
    add = lines.append
    add("# Benchmark: Backplane against PostGraphile and the raw SQL floor")
    add("")
    add(f"Generated by `bench/run.sh` on {results['finished_at']} in {results['total_seconds']:.0f} s "
        f"(the release build {v['build']}). Raw figures: `bench/out/results.json` (not committed).")
    add("")
    add("## Machine")
    add("")
    add(f"- CPU: {m['cpu']}, {m['cores']} cores; memory {m['memory_gib']} GiB; "
        f"{m['os']}, Linux {m['kernel']}")
    add(f"- load average when the run started: {' '.join(m['load_before'])} "
        "(the machine is shared: other work compiles and tests while this runs, so "
        "absolute figures are noisy; both servers ran back to back under the same conditions)")
    add(f"- PostgreSQL {v['postgres']} (throwaway: fsync off, shared_buffers 256MB, pg_stat_statements)")
    add(f"- Backplane {v['backplane']}, `backplane serve`: bearer-token "
        "authentication (RS256 JWT verified against a loopback OIDC issuer's JWKS) and the "
        "audit log on, as in production; the caller is a service identity")
    if v.get("postgraphile"):
        add(f"- PostGraphile {v['postgraphile']} on Node {v['node']}, amber preset, no plugins "
            "beyond its defaults, production mode (`bench/postgraphile/graphile.config.mjs`); "
            "no authentication and no audit log; it reads the same tables after two unique "
            "indexes were declared as constraints and `subscriptions` got a `@name` smart "
            "comment (see `bench/README.md`)")
    add(f"- both servers on the same database, {v['orgs']:,} organizations seeded by "
        f"`backplane seed` ({v['seed_rows']}); database pool of {v['pool']} connections each")
    add(f"- load: wrk {v['wrk']}, {CONNECTIONS} connections, {THREADS} threads, "
        f"{WARMUP} s warm-up then {DURATION} s per server and workload, on the same machine")
    add("")
    add("## Results")
    add("")
    add("SQL statements are counted by pg_stat_statements per database role during the measured "
        "run, divided by the requests wrk completed. For Backplane, *data* are the statements that "
        "read the answer; *audit* are those of the audit log, which PostGraphile does not have: one "
        "statement per group-committed batch of read events (it takes the chain lock and inserts "
        "the batch after the head the writer remembers), and for a mutation's event, in the "
        "mutation's transaction, BEGIN, the chain lock, the chain head, its INSERT and COMMIT. CPU per request is the server process's user + system "
        "time, and that of every PostgreSQL process, during the measured run, divided by the "
        "requests: steadier than requests per second when other work shares the machine, "
        "though it rises too when that work is heavy. Peak RSS is VmHWM of the server process during the measured runs (reset "
        "before each); memory a server keeps after a workload counts again in the next "
        "(workloads run in the order shown). Each server's best of "
        f"{ROUNDS} alternating rounds (by req/s) is shown; every round is in results.json.")
    add("")
    add("| workload | server | req/s | p50 ms | p99 ms | statements / request (data + audit) | CPU ms / request: server + PostgreSQL | peak RSS MiB | ratio Backplane / PostGraphile (req/s; p99) |")
    add("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for wid in sorted(results["workloads"]):
        w = results["workloads"][wid]
        b, p = w["backplane"], w["postgraphile"]
        ratio = f"**{b['rps'] / p['rps']:.2f}×**; {b['p99_ms'] / p['p99_ms']:.2f}×"
        add(f"| {wid}. {w['title']} | Backplane | {fmt(b['rps'])} | {fmt(b['p50_ms'], 1)} | "
            f"{fmt(b['p99_ms'], 1)} | {b['stmts_data']:.2f} + {b['stmts_audit']:.2f} | "
            f"{b['cpu_ms']:.2f} + {b['pg_cpu_ms']:.2f} | {fmt(b['peak_rss_mib'])} | {ratio} |")
        add(f"| | PostGraphile | {fmt(p['rps'])} | {fmt(p['p50_ms'], 1)} | {fmt(p['p99_ms'], 1)} | "
            f"{p['stmts_data']:.2f} | {p['cpu_ms']:.2f} + {p['pg_cpu_ms']:.2f} | {fmt(p['peak_rss_mib'])} | |")
    if "bulk" in results:
        bk = results["bulk"]
        add(f"| 5. bulk status change, {BULK_ITEMS:,} organizations (median of {BULK_ROUNDS}, one request each) "
            f"| Backplane | – | {fmt(bk['api_median_ms'], 1)} (one request) | – | "
            f"{bk['stmts_data']} + {bk['stmts_audit']} | – | {fmt(bk['peak_rss_mib'])} | "
            f"**{bk['ratio']:.2f}× the raw UPDATE** |")
        add(f"| | raw SQL `UPDATE` (psql `\\timing`) | – | {fmt(bk['raw_median_ms'], 1)} | – | 1 | – | – | |")
    if "export" in results:
        ex = results["export"]
        add(f"| 6. CSV export of {ex['rows']:,} users: email, name, status, organization's slug and plan code "
            f"(median of {len(ex['api_ms'])}, one request each) | Backplane `POST /export` | – | "
            f"{fmt(ex['api_median_ms'])} (whole export) | – | – | – | {fmt(ex['peak_rss_mib'])} | "
            f"**{ex['ratio']:.2f}× psql's `\\copy`** |")
        add(f"| | psql `\\copy (SELECT …) TO STDOUT WITH CSV` | – | {fmt(ex['raw_median_ms'])} | – | 1 | – | – | |")
    if "export_sqlite" in results:
        ex = results["export_sqlite"]
        add(f"| 6 on SQLite: the same export of {ex['rows']:,} users from a SQLite file "
            f"(median of {len(ex['api_ms'])}) | Backplane `POST /export` | – | "
            f"{fmt(ex['api_median_ms'])} (whole export) | – | – | – | {fmt(ex['peak_rss_mib'])} | "
            f"{ex['ratio']:.2f}× the sqlite3 shell |")
        add(f"| | `sqlite3 -csv` of the same `SELECT` | – | {fmt(ex['raw_median_ms'])} | – | 1 | – | – | |")
    add("")
    floors = {wid: w for wid, w in results["workloads"].items() if "floor" in w}
    if floors:
        add("### The floor: PostgreSQL running Backplane's own statement")
        add("")
        add("For each read workload, the statement Backplane sent PostgreSQL for it (taken from "
            "PostgreSQL's log with `log_min_duration_statement = 0` for the moment of one request, "
            "its parameters written in), run by `pgbench -M prepared` at wrk's concurrency "
            f"({CONNECTIONS} clients, {THREADS} threads, {WARMUP} s warm-up, {DURATION} s measured) "
            "against the same database: what PostgreSQL alone manages for that work on this machine, "
            "with no HTTP, token, GraphQL, audit log or JSON writing. The support lookup runs 25 of "
            "its organizations' statements, the paging script every page's, each a pgbench script "
            "picked at random. Each round runs pgbench right after Backplane's run, so that both "
            "figures of a ratio come from the same minute of the shared machine; the ratio is the "
            "mean of the rounds'.")
        add("")
        add("| workload | pgbench statements/s, each round | Backplane req/s, each round | "
            "Backplane / floor, each round | **mean** |")
        add("|---|---:|---:|---:|---:|")
        for wid in sorted(floors):
            f = floors[wid]["floor"]
            rounds = f.get("rounds", [{"tps": f["tps"], "backplane_rps": floors[wid]["backplane"]["rps"],
                                       "ratio": floors[wid]["backplane"]["rps"] / f["tps"]}])
            ratio = f.get("ratio", rounds[0]["ratio"])
            add(f"| {wid}. {floors[wid]['title']} | " + ", ".join(fmt(r["tps"]) for r in rounds) + " | "
                + ", ".join(fmt(r["backplane_rps"]) for r in rounds) + " | "
                + ", ".join(f"{r['ratio']:.2f}" for r in rounds) + f" | **{ratio:.2f}** |")
        add("")
        accounted = {wid: w for wid, w in floors.items() if "rounds" in w["floor"]}
        if accounted:
            add("Where a request's time goes against the floor's statement, on the same two cores "
                "(CPU ms per Backplane request or per pgbench statement, in the round with the best "
                "ratio: Backplane's run and the pgbench run after it). *PostgreSQL* is its processes' "
                "CPU time during Backplane's run; during pgbench's, whose backends end with it, the "
                "machine's busy time less pgbench's own. *Load generator* is wrk's or pgbench's own "
                "CPU; *all busy* the machine's busy time; *idle* its idle share.")
            add("")
            add("| workload | | PostgreSQL | Backplane | load generator | all busy CPU | idle |")
            add("|---|---|---:|---:|---:|---:|---:|")
            for wid in sorted(accounted):
                w = accounted[wid]
                rounds = w["floor"]["rounds"]
                at = max(range(len(rounds)), key=lambda i: rounds[i]["ratio"])
                b, f = w["rounds"]["backplane"][at], rounds[at]
                if "client_cpu_ms" not in b:
                    continue
                cores = results["machine"].get("cores") or os.cpu_count()
                # From the idle share where a run did not keep its busy time.
                b_busy = b.get("busy_ms", (1 - b["idle"]) * cores * 1000 / b["rps"])
                f_busy = f.get("busy_ms", (1 - f["idle"]) * cores * 1000 / f["tps"])
                f_pg = f_busy - f["client_cpu_ms"] if "busy_ms" not in f else f["pg_cpu_ms"]
                add(f"| {wid} | Backplane | {b['pg_cpu_ms']:.3f} | {b['cpu_ms']:.3f} | "
                    f"{b['client_cpu_ms']:.3f} | {b_busy:.3f} | {b['idle'] * 100:.0f} % |")
                add(f"| | floor | {f_pg:.3f} | – | {f['client_cpu_ms']:.3f} | "
                    f"{f_busy:.3f} | {f['idle'] * 100:.0f} % |")
            add("")
    profiled = {wid: w for wid, w in results["workloads"].items() if "profile" in w}
    if profiled:
        add("### Where Backplane's CPU goes (perf)")
        add("")
        add("`perf record -F 999` on the Backplane process during a run of its own of each read workload "
            "(after the measured ones), its samples grouped by function into what a request does "
            "(`bench/driver.py`'s `PROFILE_BUCKETS`; the whole reports are in `bench/out/perf-N.txt`). "
            "Shares of the server's own CPU time; PostgreSQL's is apart.")
        add("")
        ids = sorted(profiled)
        add("| part of a request | " + " | ".join(f"workload {w}" for w in ids) + " |")
        add("|---|" + "---:|" * len(ids))
        names = [n for n, _ in PROFILE_BUCKETS] + ["other"]
        for name in names:
            add(f"| {name} | " + " | ".join(f"{profiled[w]['profile']['buckets'].get(name, 0):.1f} %"
                                             for w in ids) + " |")
        add("")
    if results.get("sqlite"):
        sq = results["sqlite"]
        add("### SQLite: the executor against the compiled path")
        add("")
        add("The same seed in a SQLite file, served by two Backplanes with the same settings, one with "
            "`BACKPLANE_COMPILE_READS=false` (async-graphql's executor and the DataLoaders answer "
            "everything) and one compiled (one statement of `json_array` and `json_group_array` per "
            "read); both answered the same (checked before measuring). Statements per request "
            "are the request's own (`backplane_sql_statements_per_request` in `/metrics`: the audit "
            "writer's run apart). Best of "
            f"{ROUNDS} rounds.")
        add("")
        add("| workload | read path | req/s | p50 ms | p99 ms | statements / request | CPU ms / request | "
            "peak RSS MiB | compiled / executor (req/s) |")
        add("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for wid in sorted(sq):
            e, c = sq[wid]["sqlite_executor"], sq[wid]["sqlite_compiled"]
            add(f"| {wid}. {sq[wid]['title']} | executor | {fmt(e['rps'])} | {fmt(e['p50_ms'], 1)} | "
                f"{fmt(e['p99_ms'], 1)} | {e['stmts_data']:.2f} | {e['cpu_ms']:.2f} | "
                f"{fmt(e['peak_rss_mib'])} | |")
            add(f"| | compiled | {fmt(c['rps'])} | {fmt(c['p50_ms'], 1)} | {fmt(c['p99_ms'], 1)} | "
                f"{c['stmts_data']:.2f} | {c['cpu_ms']:.2f} | {fmt(c['peak_rss_mib'])} | "
                f"**{c['rps'] / e['rps']:.2f}×** |")
        add("")
        add("The same answer as Backplane on PostgreSQL (the same seed and cursor key): "
            + "; ".join(f"workload {wid} {'yes' if sq[wid].get('same_as_postgres') else 'no'}"
                        for wid in sorted(sq)) + ".")
        add("")
    if "walk" in results:
        wk = results["walk"]
        add(f"Workload 4 as one script would run it (one client, every page in turn, {PAGE} a page): "
            + "; ".join(f"{SERVERS[s]['label']} {wk[s]['seconds'] * 1000:.0f} ms for {wk[s]['pages']} pages, "
                        f"{wk[s]['data']} statements" + (f" + {wk[s]['audit']} audit" if s == 'backplane' else "")
                        for s in ("backplane", "postgraphile")) + ".")
        add("")
    if "deep_statements_by_page_size" in results:
        d = results["deep_statements_by_page_size"]
        add("Workload 3, statements of one request at 10 and at 100 parents: "
            f"Backplane {d['backplane'][10]['data']} and {d['backplane'][100]['data']} "
            f"(plus {d['backplane'][10]['audit']} and {d['backplane'][100]['audit']} of the audit writer); "
            f"PostGraphile {d['postgraphile'][10]['data']} and {d['postgraphile'][100]['data']}.")
        add("")
    if "bulk" in results:
        bk = results["bulk"]
        add("Workload 5, every round (ms): raw " + ", ".join(fmt(x, 1) for x in bk["raw_ms"])
            + "; Backplane " + ", ".join(fmt(x, 1) for x in bk["api_ms"]) + ".")
        add("")
    add("## Goals")
    add("")
    for goal, met, detail in results["goals"]:
        add(f"- {'met' if met else '**missed**'}: {goal} — {detail}")
    add("")
    notes = os.path.join(BENCH_DIR, "analysis.md")
    if os.path.exists(notes):
        add(open(notes).read().rstrip())
        add("")
    add("## Reproduce")
    add("")
    add("```sh")
    add("./bench/run.sh")
    add("```")
    add("")
    add("See `bench/README.md` for what it installs, its settings and how long it takes.")
    report = ENV.get("BENCH_REPORT") or os.path.join(BENCH_DIR, "RESULTS.md")
    with open(report, "w") as f:
        f.write("\n".join(lines) + "\n")
    log(f"report written to {os.path.relpath(report)}")


def goals(results):
    out = []
    wl = results["workloads"]
    for wid in ("1", "2", "3"):
        if wid not in wl:
            continue
        b, p = wl[wid]["backplane"], wl[wid]["postgraphile"]
        r = b["rps"] / p["rps"]
        out.append((f"workload {wid}: at least 1.5× PostGraphile's requests per second with a lower p99",
                    r >= 1.5 and b["p99_ms"] < p["p99_ms"],
                    f"{r:.2f}× the requests per second; p99 {b['p99_ms']:.1f} ms against {p['p99_ms']:.1f} ms"))
    for wid in ("1", "2", "3", "4"):
        if wid not in wl:
            continue
        b, p = wl[wid]["backplane"], wl[wid]["postgraphile"]
        r = b["rps"] / p["rps"]
        if wid in PREVIOUS_RATIOS:
            out.append((f"workload {wid}: still at least the last report's {PREVIOUS_RATIOS[wid]:.2f}× "
                        "PostGraphile's requests per second", r >= PREVIOUS_RATIOS[wid], f"{r:.2f}×"))
        if "floor" in wl[wid]:
            fl = wl[wid]["floor"]
            f = fl.get("ratio", b["rps"] / fl["tps"])
            out.append((f"workload {wid}: at least 0.85 of the floor (PostgreSQL running Backplane's "
                        "statement under pgbench)", f >= 0.85,
                        f"{f:.2f} (the mean of the rounds; Backplane's best {b['rps']:.0f} req/s, the "
                        f"floor's mean {fl['tps']:.0f} statements/s)"))
    for wid, w in sorted(results.get("sqlite", {}).items()):
        e, c = w["sqlite_executor"], w["sqlite_compiled"]
        r = c["rps"] / e["rps"]
        out.append((f"workload {wid} on SQLite: the compiled path at least 3× the executor's requests per second",
                    r >= 3, f"{r:.2f}× ({c['rps']:.0f} against {e['rps']:.0f} req/s)"))
        pg = wl.get(wid, {}).get("backplane", {}).get("stmts_data")
        out.append((f"workload {wid} on SQLite: statements per read equal PostgreSQL's",
                    round(c["stmts_data"], 2) == 1.0 and (pg is None or round(pg, 2) == 1.0),
                    f"{c['stmts_data']:.2f} on SQLite" + (f", {pg:.2f} on PostgreSQL" if pg is not None else "")))
    if "deep_statements_by_page_size" in results:
        d = results["deep_statements_by_page_size"]["backplane"]
        a, b = d[10]["data"], d[100]["data"]
        out.append(("workload 3: statements per request independent of page size", a == b,
                    f"{a} statements at 10 parents, {b} at 100 (plus {d[100]['audit']} of the audit writer)"))
    if "bulk" in results:
        r = results["bulk"]["ratio"]
        out.append(("workload 5: at most 3× the raw SQL floor", r <= 3,
                    f"{r:.2f}× ({results['bulk']['api_median_ms']:.0f} ms against "
                    f"{results['bulk']['raw_median_ms']:.0f} ms)"))
    if "export" in results:
        r = results["export"]["ratio"]
        out.append(("workload 6: a CSV export at most 1.5× psql's \\copy of the same columns", r <= 1.5,
                    f"{r:.2f}× ({results['export']['api_median_ms']:.0f} ms against "
                    f"{results['export']['raw_median_ms']:.0f} ms)"))
        out.append(("workload 6: Backplane's peak RSS during the export under 100 MiB",
                    results["export"]["peak_rss_mib"] < 100,
                    f"{results['export']['peak_rss_mib']:.0f} MiB"))
    peaks = [w["backplane"]["peak_rss_mib"] for w in wl.values()]
    # As deployed (compiled reads on, the default): the executor-only server on
    # SQLite is the reference the compiled path is measured against.
    peaks += [w["sqlite_compiled"]["peak_rss_mib"] for w in results.get("sqlite", {}).values()]
    if "bulk" in results:
        peaks.append(results["bulk"]["peak_rss_mib"])
    if peaks:
        out.append(("Backplane's peak RSS under load under 100 MiB (as deployed: compiled reads on, "
                    "PostgreSQL and SQLite)", max(peaks) < 100,
                    f"highest peak {max(peaks):.0f} MiB"))
    return out


def report_only():
    """Rewrites the report from the last run's results.json (after editing
    bench/analysis.md, say)."""
    with open(os.path.join(OUT, "results.json")) as f:
        results = json.load(f)
    deep = results.get("deep_statements_by_page_size")
    if deep:
        results["deep_statements_by_page_size"] = {
            s: {int(n): v for n, v in by.items()} for s, by in deep.items()}
    write_report(results)


def main():
    if sys.argv[1:] == ["--report"]:
        report_only()
        return
    started = time.monotonic()
    os.makedirs(OUT, exist_ok=True)
    total_orgs = int(psql("SELECT count(*) FROM organizations")[0][0])
    results = {"machine": machine(), "workloads": {}}
    try:
        run_read_workloads(results, total_orgs)
        run_sqlite(results)
        if 5 in SELECTED:
            run_bulk(results)
        if 6 in SELECTED:
            run_export(results)
    except CheckFailed as err:
        log(f"FAILED: {err}")
        sys.exit(1)
    results["settings"] = {"page": PAGE, "connections": CONNECTIONS, "threads": THREADS,
                           "warmup": WARMUP, "duration": DURATION, "rounds": ROUNDS,
                           "bulk_items": BULK_ITEMS, "bulk_rounds": BULK_ROUNDS}
    results["goals"] = goals(results)
    results["versions"] = json.loads(ENV["BENCH_VERSIONS"])
    results["finished_at"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results["total_seconds"] = time.monotonic() - started + float(ENV.get("BENCH_SETUP_SECONDS", "0"))
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump(results, f, indent=1, default=str)
    write_report(results)
    for goal, met, detail in results["goals"]:
        log(f"{'met' if met else 'MISSED'}: {goal}: {detail}")


if __name__ == "__main__":
    main()
