#!/usr/bin/env python3
"""The fairness benchmark proper, started by bench/fairness.sh once
PostgreSQL, the issuer and Backplane are up. Standard library (and wrk).

A person (support) runs the support lookup from PERSON_CONNECTIONS
connections, alone first and then while one service identity floods deep
pages from FLOOD_CONNECTIONS connections (wrk, without backing off on 429);
it reports the person's p50/p99 both ways, the flood's answers by status and
the refusals Backplane counted, and writes the report to BENCH_REPORT.
"""

import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import workloads as W  # noqa: E402

ENV = os.environ
URL = urllib.parse.urlparse(ENV["BENCH_BP_URL"])
SERVICE = open(ENV["BENCH_TOKEN_FILE"]).read().strip()
PERSON = open(ENV["BENCH_PERSON_TOKEN_FILE"]).read().strip()
OUT = ENV["BENCH_OUT"]
REPORT = ENV["BENCH_REPORT"]
DURATION = int(ENV.get("BENCH_DURATION", "20"))
WARMUP = int(ENV.get("BENCH_WARMUP", "5"))
FLOOD = int(ENV.get("BENCH_FLOOD_CONNECTIONS", "32"))
PEOPLE = int(ENV.get("BENCH_PERSON_CONNECTIONS", "2"))
DEEP_N = int(ENV.get("BENCH_DEEP_N", "100"))
GOAL = 3.0


def log(msg):
    print(f"fairness: {msg}", file=sys.stderr, flush=True)


def post(conn, token, query, variables):
    body = json.dumps({"query": query, "variables": variables})
    conn.request("POST", "/graphql", body=body, headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    resp = conn.getresponse()
    data = resp.read()
    return resp.status, data


def connection():
    return http.client.HTTPConnection(URL.hostname, URL.port, timeout=60)


def slugs():
    conn = connection()
    status, data = post(conn, PERSON, "{ organizations(first: 100) { nodes { slug } } }", {})
    if status != 200:
        raise SystemExit(f"the person cannot list organizations: {status} {data[:300]!r}")
    answer = json.loads(data)
    if not answer.get("data"):
        raise SystemExit(f"the person cannot list organizations: {answer}")
    found = [n["slug"] for n in answer["data"]["organizations"]["nodes"]]
    if not found:
        raise SystemExit("no organizations: is the database seeded?")
    return found


def person_run(seconds, names):
    """The person's lookups for `seconds` from PEOPLE connections: latencies
    (ms) of the answers, and the statuses of the others."""
    latencies, others = [], {}
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker(k):
        conn = connection()
        i = k
        while time.monotonic() < stop:
            slug = names[i % len(names)]
            i += PEOPLE
            started = time.perf_counter()
            status, data = post(conn, PERSON, W.SUPPORT_BP, {"slug": slug})
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                if status == 200 and b'"errors"' not in data:
                    latencies.append(elapsed)
                else:
                    others[status] = others.get(status, 0) + 1

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(PEOPLE)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, others


def pct(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(token)s"
wrk.body = %(body)s
"""


def lua_string(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def flood_start(seconds):
    script = os.path.join(OUT, "fairness-flood.lua")
    body = json.dumps({"query": W.DEEP_BP, "variables": {"n": DEEP_N}})
    with open(script, "w") as f:
        f.write(WRK_SCRIPT % {"token": SERVICE, "body": lua_string(body)})
    cmd = ["wrk", "-t2", f"-c{FLOOD}", f"-d{seconds}s", "--timeout", "30s", "-s", script,
           f"http://{URL.hostname}:{URL.port}/graphql"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def metric(name, labels):
    conn = connection()
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and all(lbl in line for lbl in labels):
            total += float(line.rsplit(" ", 1)[1])
    return total


def main():
    names = slugs()
    log(f"{len(names)} organizations to look up; warming up {WARMUP} s")
    person_run(WARMUP, names)

    log(f"the person alone, {DURATION} s at {PEOPLE} connections")
    alone, alone_other = person_run(DURATION, names)

    refused_before = metric("backplane_fair_use_refused_total", ['kind="service"'])
    log(f"the flood ({FLOOD} connections of Deep({DEEP_N})) and the person, {DURATION} s")
    flood = flood_start(DURATION + 2 * WARMUP)
    time.sleep(WARMUP)
    under, under_other = person_run(DURATION, names)
    out, _ = flood.communicate(timeout=DURATION + 10 * WARMUP + 60)
    refused = metric("backplane_fair_use_refused_total", ['kind="service"']) - refused_before
    # wrk counts what it sent and what was not 2xx; Backplane counts its
    # refusals over budget (a response hook in wrk would cost the cores the
    # server and the person share).
    total = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    flood_total = int(total.group(1)) if total else 0
    not_ok = int(non2xx.group(1)) if non2xx else 0
    codes = {200: flood_total - not_ok, 429: int(refused), "other": max(0, not_ok - int(refused))}
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not alone or not under:
        raise SystemExit(f"the person got no answers (alone {alone_other}, under the flood {under_other})")

    a50, a99 = pct(alone, 50), pct(alone, 99)
    u50, u99 = pct(under, 50), pct(under, 99)
    ratio = u99 / a99
    met = ratio <= GOAL
    budget = ENV.get("BENCH_SERVICE_COST_PER_MINUTE", "") or "unset"
    header = [
        "# Fairness: a person's lookups under a flood of deep pages",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `bench/fairness.sh` "
        f"on Backplane {ENV.get('BENCH_SOURCE', 'unknown')}: {ENV.get('BENCH_ORGS', '?')} organizations on "
        f"PostgreSQL, `backplane serve` with authentication and audit on, "
        f"{os.cpu_count()} cores shared by everything (PostgreSQL, Backplane, wrk and the person's client).",
        "",
        f"- **The person** (support, a strong sign-in): the support lookup "
        f"(`SupportLookup`, bench workload 1) from {PEOPLE} connections, one request after another, "
        f"{DURATION} s alone and then {DURATION} s under the flood.",
        f"- **The flood**: one service identity, `Deep(n: {DEEP_N})` (workload 3) from {FLOOD} "
        f"connections (wrk, which does not back off on 429), against the in-flight cost share "
        f"(`BACKPLANE_MAX_COST_SHARE_PERCENT`, default 50 %) and, where set, the service's budget "
        f"per minute.",
        f"- **Goal**: the person's p99 under the flood at most {GOAL:.0f}× its p99 alone.",
        "",
    ]
    lines = [
        f"## `BACKPLANE_SERVICE_COST_PER_MINUTE={budget}`",
        "",
        "| the person | answers | p50 ms | p99 ms | other statuses |",
        "|---|---:|---:|---:|---|",
        f"| alone | {len(alone)} | {a50:.1f} | {a99:.1f} | {alone_other or '–'} |",
        f"| under the flood | {len(under)} | {u50:.1f} | {u99:.1f} | {under_other or '–'} |",
        "",
        f"**p99 under the flood / p99 alone: {ratio:.2f}×** (goal: at most {GOAL:.0f}×) — "
        f"{'met' if met else 'not met'}.",
        "",
        "| the flood | requests | answered (2xx) | 429 over budget | other | requests/s |",
        "|---|---:|---:|---:|---:|---:|",
        f"| Deep({DEEP_N}) × {FLOOD} | {flood_total} | {codes[200]} | {codes[429]} | "
        f"{codes['other']} | {rps.group(1) if rps else '?'} |",
        "",
        "The 429s are Backplane's count (`backplane_fair_use_refused_total{kind=\"service\"}`, "
        "over the flood's whole run); the rest are wrk's.",
        "",
    ]
    if ENV.get("BENCH_REPORT_MODE", "write") == "write":
        lines = header + lines
    report = "\n".join(lines)
    with open(REPORT, "a" if ENV.get("BENCH_REPORT_MODE") == "append" else "w") as f:
        f.write(report)
    with open(os.path.join(OUT, f"fairness-{budget}.json"), "w") as f:
        json.dump({"alone_ms": {"p50": a50, "p99": a99, "n": len(alone)},
                   "under_ms": {"p50": u50, "p99": u99, "n": len(under)},
                   "ratio": ratio, "flood": codes, "refused": refused}, f, indent=1)
    print(report)


if __name__ == "__main__":
    main()
